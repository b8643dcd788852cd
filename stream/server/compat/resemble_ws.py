"""Resemble AI's streaming websocket (as pipecat's `ResembleAITTSService` speaks it), as a session driver.

Each request (`voice_uuid`, `data`, a numeric `request_id`) is one complete text: it becomes a
voicewire context that is opened, filled and ended at once, so requests queue and speak in
order like contexts on `/v1/stream`. The session's audio goes out as `audio` frames with
`audio_timestamps` (character times in seconds from the request's start, spread over the audio
as for ElevenLabs' alignment: `compat.alignment`), and each request ends with `audio_end`.
"""

from __future__ import annotations

import base64
import json
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.websockets import WebSocket

from stream.core.actions import Action, Complete, SendAudio, SendMessage
from stream.core.errors import InvalidJson, ProtocolError, Unsupported
from stream.core.protocol import EndMessage, TextMessage, describe_validation_error
from stream.core.server_messages import CancelledMessage, ErrorMessage, PhraseMessage
from stream.server.compat.alignment import Pace, PhraseAligner
from stream.server.outbox import Outbox
from stream.server.runtime import Runtime
from stream.server.session_driver import SessionDriver

ENDPOINT = "resemble/stream"
IGNORED_FIELDS = frozenset({"output_format", "no_audio_header", "project_uuid", "model"})
PRECISIONS = {"PCM_16": "pcm_s16le", "MULAW": "mulaw"}
_STATUS = {"unauthorized": 401, "insufficient_credits": 402, "voice_not_found": 404, "text_too_long": 413,
           "rate_limited": 429, "internal": 500}


class SynthesisRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    voice_uuid: str = Field(min_length=1, max_length=128)
    data: str = Field(min_length=1)
    request_id: int = Field(ge=0, le=2**53)
    binary_response: bool = False
    sample_rate: int | None = Field(None, ge=8000, le=48000)
    precision: Literal["PCM_16", "PCM_24", "PCM_32", "MULAW"] = "PCM_16"
    output_format: str | None = None


class _Out(BaseModel):
    absent_when_none: ClassVar[tuple[str, ...]] = ()


class Timestamps(BaseModel):
    graph_chars: list[str]
    graph_times: list[list[float]]


class AudioOut(_Out):
    type: Literal["audio"] = "audio"
    request_id: int
    audio_content: str
    audio_timestamps: Timestamps
    sample_rate: int


class AudioEndOut(_Out):
    type: Literal["audio_end"] = "audio_end"
    request_id: int


class ErrorOut(_Out):
    type: Literal["error"] = "error"
    error_name: str
    message: str
    status_code: int
    request_id: int | None = None
    absent_when_none: ClassVar[tuple[str, ...]] = ("request_id",)


class ResembleOutbox(Outbox):
    """Sends prepared Resemble frames (refunds and settlements are booked by the base outbox)."""

    async def _deliver(self, item: object) -> None:
        await self._send(item)  # type: ignore[arg-type]

    async def _close(self, err: ProtocolError, code: int | None) -> None:
        self.rt.metrics.errors.labels(err.code).inc()
        await self._send(ErrorOut(error_name=err.code, message=err.message, status_code=err.http_status))
        await self._close_socket(code or err.close_code or 1008, err.message)


class ResembleConnection(SessionDriver):
    def __init__(self, ws: WebSocket, runtime: Runtime) -> None:
        super().__init__(ws, runtime)
        self.outbox = ResembleOutbox(ws, runtime, self.id, on_stalled=lambda: self._execute(self.session.disconnect()))
        self._format = ("pcm_s16le", runtime.engine.sample_rate)
        self._pace = Pace()
        self._aligners: dict[str, PhraseAligner] = {}
        self._rates: dict[str, int] = {}

    async def _frame(self, raw: str | bytes, now: float) -> None:
        try:
            request = SynthesisRequest.model_validate(json.loads(raw))
        except ValidationError as exc:
            raise describe_validation_error(exc, None) from None
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
            raise InvalidJson(f"message: not valid JSON ({reason})") from None
        self.session.admit(now)
        for name in [*(request.model_extra or {}), *(["output_format"] if request.output_format else [])]:
            self.rt.metrics.compat_ignored.labels(ENDPOINT, name if name in IGNORED_FIELDS else "other").inc()
        cid = str(request.request_id)
        if request.binary_response:
            raise Unsupported("binary_response: only JSON frames are served; send false", context_id=cid)
        if request.precision not in PRECISIONS:
            raise Unsupported(f"precision: {request.precision} is not served; use PCM_16 or MULAW", context_id=cid)
        self._format = (PRECISIONS[request.precision], request.sample_rate or self.rt.engine.sample_rate)
        self._rates[cid] = self._format[1]
        await self._handle(TextMessage(type="text", context_id=cid, text=request.data, voice=request.voice_uuid), now)
        await self._handle(EndMessage(type="end", context_id=cid), now)

    def _output(self) -> tuple[str, int]:
        return self._format

    def _post(self, actions: list[Action]) -> None:
        for i, action in enumerate(actions):
            if isinstance(action, SendAudio):
                ends = any(isinstance(a, Complete | SendMessage) and _context(a) == action.context_id
                           for a in actions[i + 1:])
                self.outbox.put(self._audio(action, ends))
                self.rt.metrics.audio_seconds.inc(action.duration_ms / 1000.0)
            elif isinstance(action, SendMessage):
                self._message(action.message)
            elif isinstance(action, Complete):
                self.rt.metrics.contexts.labels("done").inc()
                self.rt.metrics.characters.inc(action.message.characters)
                self._end(action.message.context_id)
            else:
                self.outbox.put(action)

    def _message(self, message: PhraseMessage | CancelledMessage | ErrorMessage) -> None:
        if isinstance(message, PhraseMessage):
            self._aligners.setdefault(message.context_id, PhraseAligner(self._pace)).phrase(message.text, message.start_ms)
        elif isinstance(message, CancelledMessage):
            self._end(message.context_id)
        else:
            self.rt.metrics.errors.labels(message.code).inc()
            rid = int(message.context_id) if message.context_id and message.context_id.isdigit() else None
            self.outbox.put(ErrorOut(error_name=message.code, message=message.message,
                                     status_code=_status(message.code), request_id=rid))

    def _audio(self, action: SendAudio, ends_phrase: bool) -> AudioOut:
        aligner = self._aligners.setdefault(action.context_id, PhraseAligner(self._pace))
        chars, starts, durations = aligner.take(action.start_ms, action.duration_ms, ends_phrase)
        times = [[round((action.start_ms + s) / 1000, 3), round((action.start_ms + s + d) / 1000, 3)]
                 for s, d in zip(starts, durations, strict=True)]
        return AudioOut(request_id=int(action.context_id), audio_content=base64.b64encode(action.payload).decode("ascii"),
                        audio_timestamps=Timestamps(graph_chars=chars, graph_times=times),
                        sample_rate=self._rates.get(action.context_id, self._format[1]))

    def _end(self, context_id: str) -> None:
        self._aligners.pop(context_id, None)
        self._rates.pop(context_id, None)
        self.outbox.put(AudioEndOut(request_id=int(context_id)))


def _context(action: Complete | SendMessage) -> str | None:
    if isinstance(action, Complete):
        return action.message.context_id
    return action.message.context_id if isinstance(action.message, PhraseMessage | CancelledMessage) else None


def _status(code: str) -> int:
    """The HTTP-like `status_code` of Resemble's error frame for a voicewire error code."""
    return _STATUS.get(code, 400)
