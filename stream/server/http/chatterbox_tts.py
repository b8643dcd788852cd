"""`POST /v1/chatterbox-tts`: the hosted Chatterbox API's request, answered by this server.

Same JSON fields, ranges and defaults as the hosted API (`text`, `reference_audio`, `exaggeration`,
`temperature`, `seed`, `cfg_weight`, `min_p`, `top_p`, `repetition_penalty`), the same `x-api-key`
header and `x-remaining-credits` answer, so existing client code only changes its URL. The answer
is a complete audio file (WAV unless `output_format` or `Accept` asks for another); `stream: true`
sends it chunked as it is synthesized instead.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field

from stream.audio.containers import FORMATS, MEDIA_TYPES
from stream.core.errors import InvalidMessage, NotAcceptable
from stream.core.protocol import GenerationSettings
from stream.server.http.common import (
    api_route,
    default_error_body,
    describe_generation_fields,
    generation_of,
    speak_request,
)

FormatName = Literal["wav", "flac", "mp3", "opus", "pcm"]
DEFAULT_FORMAT = "wav"
_ANY = {"*/*", "audio/*", "application/octet-stream"}

router = APIRouter(tags=["speech"], route_class=api_route(default_error_body))


class ChatterboxTTSRequest(GenerationSettings):
    """The hosted API's request; fields after `repetition_penalty` are voicewire extensions."""

    model_config = {"json_schema_extra": describe_generation_fields, "strict": True}  # "seed": true is no seed

    text: str = Field(min_length=1, description="The text to speak (at most max_text_chars_per_context characters).")
    reference_audio: str | None = Field(
        None, min_length=1,
        description="A voice to clone: an http(s) URL of a clip, base64 audio, or a data: URI "
                    "(WAV, FLAC, OGG or MP3, 1-60 s). Omitted: the default voice.")
    voice: str | None = Field(None, min_length=1, max_length=128,
                              description="A stored voice id or name (POST /v1/voices), instead of reference_audio.")
    output_format: FormatName | None = Field(
        None, description="Audio format of the answer; overrides Accept. Default wav.")
    sample_rate: Literal[8000, 16000, 22050, 24000, 44100, 48000] | None = Field(
        None, description="Output sample rate; default the engine's own. mp3/opus use the nearest rate they support.")
    stream: bool = Field(False, description="Send the audio chunked as it is synthesized instead of as one file.")


def negotiate(accept: str | None) -> str:
    """The format an `Accept` header asks for (highest q first; anything audio-ish → WAV), or 406."""
    if not accept:
        return DEFAULT_FORMAT
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and media:
            ranked.append((-q, index, media.lower()))
    for _, _, media in sorted(ranked):
        if media in MEDIA_TYPES:
            return MEDIA_TYPES[media]
        if media in _ANY:
            return DEFAULT_FORMAT
    raise NotAcceptable(f"accept: none of {accept!r} can be produced; use one of "
                        f"{', '.join(sorted(set(MEDIA_TYPES)))} or */* (or the output_format field)")


@router.post(
    "/v1/chatterbox-tts",
    response_class=Response,
    responses={200: {"description": "The audio; header x-remaining-credits when the key is metered.",
                     "content": {FORMATS[f].media_type: {} for f in ("wav", "flac", "mp3", "opus", "pcm")}}},
)
async def chatterbox_tts(body: ChatterboxTTSRequest, request: Request) -> Response:
    """Synthesize `text` as the hosted Chatterbox API does (header `x-api-key`)."""
    if body.reference_audio is not None and body.voice is not None:
        raise InvalidMessage("voice: give either reference_audio or voice, not both")
    format_name = body.output_format or negotiate(request.headers.get("accept"))
    return await speak_request(request, body.text, body.reference_audio, body.voice, generation_of(body),
                               format_name, body.sample_rate, streaming=body.stream)
