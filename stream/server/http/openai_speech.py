"""`POST /v1/audio/speech`: OpenAI's speech endpoint, so the `openai` SDK works with `base_url` here.

The body streams (chunked) as the audio is synthesized, so its first bytes arrive at about the
websocket's TTFA. OpenAI's voice names (alloy, nova, ...) speak with the engine's default voice;
any other name or `{"id": ...}` is a stored voice. The Chatterbox generation fields and a
`reference_audio` clone may be added (the SDK's `extra_body`). Errors have OpenAI's shape,
`{"error": {"message", "type", "param", "code"}}`, which the SDK turns into its exceptions.
"""

from __future__ import annotations

import re
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from stream.audio.containers import FORMATS
from stream.core.errors import ProtocolError, Unsupported
from stream.core.protocol import GenerationSettings
from stream.server.http.common import api_route, describe_generation_fields, generation_of, speak_request

OPENAI_VOICES = frozenset({"alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage",
                           "shimmer", "verse", "marin", "cedar"})
OPENAI_SAMPLE_RATE = 24_000     # what OpenAI clients assume for `pcm`
_FIELD_PREFIX = re.compile(r"^([A-Za-z_][\w.]*): ")


def openai_error_body(err: ProtocolError, field: str | None) -> dict:
    """OpenAI's error shape; `param` is the field the message names."""
    if field is None and (match := _FIELD_PREFIX.match(err.message)):
        field = match.group(1)
    kind = {401: "authentication_error", 402: "insufficient_quota", 429: "rate_limit_exceeded"}.get(
        err.http_status, "server_error" if err.http_status >= 500 else "invalid_request_error")
    return {"error": {"message": err.message, "type": kind, "param": field, "code": err.code}}


router = APIRouter(tags=["speech"], route_class=api_route(openai_error_body))


class VoiceId(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=128)


class SpeechRequest(GenerationSettings):
    """OpenAI's speech request, plus the Chatterbox generation fields and `reference_audio`."""

    model_config = {"json_schema_extra": describe_generation_fields, "strict": True}  # "seed": true is no seed

    model: str = Field(min_length=1, max_length=128,
                       description="Accepted for compatibility (tts-1, gpt-4o-mini-tts, ...); the loaded engine speaks.")
    input: str = Field(min_length=1, description="The text to speak (at most max_text_chars_per_context characters).")
    voice: str | VoiceId = Field(
        description="An OpenAI voice name (alloy, ash, ballad, coral, echo, fable, onyx, nova, sage, shimmer, "
                    "verse, marin, cedar: the engine's default voice), or a stored voice id or name, "
                    "as a string or {\"id\": ...}.")
    instructions: str | None = Field(None, max_length=4096,
                                     description="Accepted for compatibility; no engine follows prompts.")
    response_format: Literal["mp3", "opus", "flac", "wav", "pcm"] = Field(
        "mp3", description="mp3, opus (Ogg), wav and pcm (16-bit little-endian mono) stream; flac arrives complete.")
    stream_format: Literal["audio"] = Field("audio", description="Only raw audio streaming ('audio') is supported.")
    reference_audio: str | None = Field(
        None, min_length=1,
        description="voicewire extension: a voice to clone, as an http(s) URL, base64 audio or a data: URI.")
    sample_rate: Literal[8000, 16000, 22050, 24000, 44100, 48000] = Field(
        OPENAI_SAMPLE_RATE, description="voicewire extension: output sample rate (default 24000, as OpenAI's).")


@router.post(
    "/v1/audio/speech",
    response_class=Response,
    responses={200: {"description": "The audio, streamed as it is synthesized.",
                     "content": {FORMATS[f].media_type: {} for f in ("mp3", "opus", "flac", "wav", "pcm")}}},
)
async def create_speech(body: SpeechRequest, request: Request) -> Response:
    """Generate audio from `input` (OpenAI-compatible; `Authorization: Bearer KEY` or `x-api-key`)."""
    runtime = request.app.state.runtime
    if body.speed != 1.0 and "speed" not in runtime.engine.capabilities.generation_fields:
        raise Unsupported(f"speed: the {runtime.engine.name} engine cannot change the speaking rate")
    name = body.voice.id if isinstance(body.voice, VoiceId) else body.voice
    voice = None if name.lower() in OPENAI_VOICES or body.reference_audio is not None else name
    return await speak_request(request, body.input, body.reference_audio, voice, generation_of(body),
                               body.response_format, body.sample_rate, streaming=True)
