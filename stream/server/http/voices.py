"""`/v1/voices`: add (multipart file or JSON base64), list and delete stored voices.

The list starts with the running engine's built-in voices (`"builtin": true`), which are never
stored and cannot be deleted, so a client sees every voice a turn may name.

Adding a voice prepares its conditioning before answering, so an unusable clip is refused with
`bad_audio` at upload time and the first turn with the new voice pays no preparation. The routes
share the speech endpoints' route class: a key when the server has keys (401), the body cap (413),
and errors in the same shape.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stream.audio.reference import decode_base64
from stream.core.errors import BadAudio, InvalidJson, InvalidMessage, Unsupported
from stream.core.protocol import describe_validation_error
from stream.server.http.common import api_route, default_error_body, parse_json

router = APIRouter(prefix="/v1/voices", tags=["voices"], route_class=api_route(default_error_body))


class VoiceUpload(BaseModel):
    """JSON body of `POST /v1/voices`: the clip as base64 (or a data: URI) and an optional name."""

    model_config = ConfigDict(extra="forbid")
    audio: str = Field(min_length=1)
    name: str | None = Field(None, min_length=1, max_length=128)


async def _read_upload(request: Request) -> tuple[bytes, str | None]:
    limits = request.app.state.runtime.settings.limits
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=4, max_part_size=limits.max_reference_bytes + 1)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidMessage("file: multipart field 'file' with the audio is required")
        data = await upload.read(limits.max_reference_bytes + 1)
        name = form.get("name")
        return data, name if isinstance(name, str) and name else None
    if content_type.startswith("application/json"):
        try:
            body = VoiceUpload.model_validate(parse_json(await request.body()))
        except json.JSONDecodeError as exc:
            raise InvalidJson(f"body: invalid JSON ({exc.msg})") from None
        except ValidationError as exc:
            raise describe_validation_error(exc, None) from None
        return decode_base64(body.audio, "audio"), body.name
    raise BadAudio("content-type: send multipart/form-data with a 'file' field, or JSON {\"audio\": base64}")


@router.post("", status_code=201)
async def add_voice(request: Request) -> JSONResponse:
    """Store a voice from a reference clip (WAV, FLAC, OGG or MP3) and return its id."""
    data, name = await _read_upload(request)
    voice = await request.app.state.runtime.voices.add(data, name)
    return JSONResponse(voice.to_wire(), status_code=201)


@router.get("")
async def list_voices(request: Request) -> dict:
    """The engine's built-in voices, then stored voices (metadata only), oldest first."""
    runtime = request.app.state.runtime
    stored = await runtime.voices.list()
    return {"voices": [v.to_wire() for v in runtime.engine.builtin_voices]
            + [{**v.to_wire(), "builtin": False} for v in stored]}


@router.delete("/{voice_id}", status_code=204)
async def delete_voice(voice_id: str, request: Request) -> Response:
    engine = request.app.state.runtime.engine
    if any(v.id == voice_id for v in engine.builtin_voices):
        raise Unsupported(f"voice: {voice_id!r} is built into the {engine.name} engine and cannot be deleted")
    await request.app.state.runtime.voices.delete(voice_id)
    return Response(status_code=204)
