"""ElevenLabs' HTTP speech routes and voice list, over voicewire's one-shot speech path.

`POST .../text-to-speech/{voice_id}` answers a complete file, `.../stream` streams it as it is
synthesized; both go through `http.common.speak_request` (auth, limits, credits, the one-shot
session), so only the request and error shapes are ElevenLabs'. Over HTTP the formats are
`mp3_<rate>_<bitrate>` (the default) and `pcm_<rate>`; `ulaw_8000`/`alaw_8000` are websocket-only.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from stream.core.errors import ProtocolError
from stream.core.protocol import GenerationSettings
from stream.server.compat.elevenlabs_messages import (
    IGNORED_FIELDS,
    UnsupportedFormat,
    VoiceSettings,
    output_format,
)
from stream.server.http.common import api_route, speak_request

PREFIX = "/elevenlabs/v1"
_CONTAINERS = {"pcm_s16le": "pcm", "mp3": "mp3"}


def elevenlabs_error_body(err: ProtocolError, field: str | None) -> dict:
    """ElevenLabs' error shape: `{"detail": {"status", "message"}}`."""
    return {"detail": {"status": err.code, "message": err.message}}


router = APIRouter(prefix=PREFIX, tags=["elevenlabs"], route_class=api_route(elevenlabs_error_body))


class SpeechBody(BaseModel):
    """The request body; fields other than `text` and `voice_settings` are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    text: str = Field(min_length=1)
    model_id: str | None = None
    voice_settings: VoiceSettings | None = None


async def _speak(request: Request, voice_id: str, body: SpeechBody, streaming: bool) -> Response:
    runtime = request.app.state.runtime
    encoding, rate = output_format(request.query_params.get("output_format"))
    if encoding not in _CONTAINERS:
        raise UnsupportedFormat(f"output_format: {encoding} is served on the websockets only; use pcm_<rate> or mp3")
    endpoint = "elevenlabs/http"
    names = [*(k for k in request.query_params if k not in ("output_format", "api_key")), *(body.model_extra or {}),
             *(["model_id"] if body.model_id else [])]
    for name in names:
        runtime.metrics.compat_ignored.labels(endpoint, name if name in IGNORED_FIELDS else "other").inc()
    generation = body.voice_settings.generation() if body.voice_settings else GenerationSettings()
    return await speak_request(request, body.text, None, voice_id, generation,
                               _CONTAINERS[encoding], rate, streaming)


@router.post("/text-to-speech/{voice_id}", response_class=Response)
async def text_to_speech(voice_id: str, body: SpeechBody, request: Request) -> Response:
    """The whole text as one audio file (ElevenLabs-compatible)."""
    return await _speak(request, voice_id, body, streaming=False)


@router.post("/text-to-speech/{voice_id}/stream", response_class=Response)
async def text_to_speech_stream(voice_id: str, body: SpeechBody, request: Request) -> Response:
    """The audio streamed as it is synthesized (ElevenLabs-compatible)."""
    return await _speak(request, voice_id, body, streaming=True)


@router.get("/voices")
async def voices(request: Request) -> dict:
    """Every voice a request may name, in ElevenLabs' list shape (`voice_id` is voicewire's id)."""
    runtime = request.app.state.runtime
    builtin = [(v.id, v.name, "premade") for v in runtime.engine.builtin_voices]
    stored = [(v.id, v.name or v.id, "cloned") for v in await runtime.voices.list()]
    default = [] if any(i == "default" for i, _, _ in builtin) else [("default", "default", "premade")]
    return {"voices": [{"voice_id": i, "name": name, "category": category, "labels": {}}
                       for i, name, category in [*default, *builtin, *stored]]}
