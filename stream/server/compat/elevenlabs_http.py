"""ElevenLabs' HTTP speech routes and voice list, over voicewire's one-shot speech path.

`POST .../text-to-speech/{voice_id}` answers a complete file, `.../stream` streams it as it is
synthesized; both go through `http.common.speak_request` (auth, limits, credits, the one-shot
session), so only the request and error shapes are ElevenLabs'. The `with-timestamps` variants
take the same steps through `one_shot.speak_timed` and add character timing (`compat.alignment`),
base64 audio in JSON (newline-delimited when streamed). Over HTTP the formats are
`mp3_<rate>_<bitrate>` (the default) and `pcm_<rate>`; `ulaw_8000`/`alaw_8000` are websocket-only.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import aclosing

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from stream.audio.containers import FORMATS, FileEncoder, output_rate
from stream.core.actions import SendAudio
from stream.core.errors import ProtocolError, Unsupported
from stream.core.protocol import GenerationSettings
from stream.core.server_messages import PhraseMessage
from stream.server.compat.alignment import Pace, PhraseAligner
from stream.server.compat.elevenlabs_messages import (
    IGNORED_FIELDS,
    VoiceSettings,
    output_format,
)
from stream.server.http.common import admit, api_route, resolve_voice, speak_request
from stream.server.one_shot import speak_timed
from stream.server.storage_outage import refund_quietly

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


def _container(request: Request, body: SpeechBody) -> tuple[str, int]:
    """The response's (container, rate), after counting the ignored parameters and fields."""
    runtime = request.app.state.runtime
    encoding, rate = output_format(request.query_params.get("output_format"))
    if encoding not in _CONTAINERS:
        raise Unsupported(f"output_format: {encoding} is served on the websockets only; use pcm_<rate> or mp3")
    names = [*(k for k in request.query_params if k not in ("output_format", "api_key")), *(body.model_extra or {}),
             *(["model_id"] if body.model_id else [])]
    for name in names:
        runtime.metrics.compat_ignored.labels("elevenlabs/http", name if name in IGNORED_FIELDS else "other").inc()
    return _CONTAINERS[encoding], rate


def _generation(body: SpeechBody) -> GenerationSettings:
    return body.voice_settings.generation() if body.voice_settings else GenerationSettings()


async def _speak(request: Request, voice_id: str, body: SpeechBody, streaming: bool) -> Response:
    container, rate = _container(request, body)
    return await speak_request(request, body.text, None, voice_id, _generation(body), container, rate, streaming)


class TimedAlignment(BaseModel):
    characters: list[str]
    character_start_times_seconds: list[float]
    character_end_times_seconds: list[float]


class TimedAudio(BaseModel):
    """One line of `/stream/with-timestamps` (or the whole `/with-timestamps` answer): times in seconds
    from the start of the response's audio, spread over each phrase as on the websocket."""

    audio_base64: str
    alignment: TimedAlignment
    normalized_alignment: TimedAlignment


async def _timed(request: Request, voice_id: str, body: SpeechBody, streaming: bool) -> Response:
    container, rate = _container(request, body)
    job = await admit(request, body.text)
    try:
        voice = await resolve_voice(job, None, voice_id)
        fmt = FORMATS[container]
        encoder = FileEncoder(fmt, job.runtime.engine.sample_rate, output_rate(fmt, rate))
        pieces = _timed_pieces(speak_timed(job.runtime, body.text, voice, _generation(body)), encoder)
        if not streaming:
            whole = [piece async for piece in pieces]
            return Response(_merge(whole).model_dump_json(), media_type="application/json")
        first = await anext(pieces)
    except BaseException:
        await refund_quietly(job.runtime.auth, job.caller, len(body.text))
        raise

    async def lines() -> AsyncIterator[str]:
        try:
            yield first.model_dump_json() + "\n"
            async for piece in pieces:
                yield piece.model_dump_json() + "\n"
        except ProtocolError:
            await refund_quietly(job.runtime.auth, job.caller, len(body.text))
            raise
        finally:
            await pieces.aclose()

    return StreamingResponse(lines(), media_type="application/json")


async def _timed_pieces(events: AsyncIterator[SendAudio | PhraseMessage], encoder: FileEncoder) -> AsyncIterator[TimedAudio]:
    """Encoded audio with the characters it carries; audio the codec holds back carries its characters on."""
    aligner = PhraseAligner(Pace())
    data, chars, starts, ends, end_ms = b"", [], [], [], 0.0
    async with aclosing(events):
        async for event in events:
            if isinstance(event, PhraseMessage):
                aligner.phrase(event.text, event.start_ms)
                continue
            data += encoder.write(event.payload)
            end_ms = event.start_ms + event.duration_ms
            got, got_starts, got_durations = aligner.take(event.start_ms, event.duration_ms, False, pad=False)
            chars += got
            starts += [(event.start_ms + s) / 1000 for s in got_starts]
            ends += [(event.start_ms + s + d) / 1000 for s, d in zip(got_starts, got_durations, strict=True)]
            if data:
                yield _piece(data, chars, starts, ends)
                data, chars, starts, ends = b"", [], [], []
    rest = aligner.take(end_ms, 0.0, True, pad=False)[0]
    yield _piece(data + encoder.close(), chars + rest, starts + [end_ms / 1000] * len(rest),
                 ends + [end_ms / 1000] * len(rest))


def _piece(data: bytes, chars: list[str], starts: list[float], ends: list[float]) -> TimedAudio:
    alignment = TimedAlignment(characters=chars, character_start_times_seconds=[round(t, 3) for t in starts],
                               character_end_times_seconds=[round(t, 3) for t in ends])
    return TimedAudio(audio_base64=base64.b64encode(data).decode("ascii"), alignment=alignment,
                      normalized_alignment=alignment)


def _merge(pieces: list[TimedAudio]) -> TimedAudio:
    audio = b"".join(base64.b64decode(p.audio_base64) for p in pieces)
    return _piece(audio, [c for p in pieces for c in p.alignment.characters],
                  [t for p in pieces for t in p.alignment.character_start_times_seconds],
                  [t for p in pieces for t in p.alignment.character_end_times_seconds])


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


@router.post("/text-to-speech/{voice_id}/with-timestamps")
async def text_to_speech_with_timestamps(voice_id: str, body: SpeechBody, request: Request) -> Response:
    """The whole audio (base64) with character timing, as one JSON object (ElevenLabs-compatible)."""
    return await _timed(request, voice_id, body, streaming=False)


@router.post("/text-to-speech/{voice_id}/stream/with-timestamps")
async def text_to_speech_stream_with_timestamps(voice_id: str, body: SpeechBody, request: Request) -> Response:
    """Newline-delimited JSON, one audio piece with its character timing per line (ElevenLabs-compatible)."""
    return await _timed(request, voice_id, body, streaming=True)
