"""Async Python client for the voicewire websocket protocol.

One `VoicewireClient` is one session (socket). A background reader routes server messages to
per-context queues, so several contexts can be driven at once; `speak()` covers the common case
of one streamed turn.

Every frame is read into the typed server messages of `stream.core.server_messages` (`read_frame`),
shared with the server and the adapters; the events handed to users are dataclasses built from them
in one place (`to_event`), with the receive time added.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import websockets
from pydantic import ValidationError

from stream.audio.codecs import decode_samples
from stream.core.server_messages import (
    AudioMessage,
    CancelledMessage,
    DoneMessage,
    ErrorMessage,
    PhraseMessage,
    ReadyMessage,
    ServerMessage,
    parse_server_message,
)

DEFAULT_URL = "ws://127.0.0.1:8765/v1/stream"


@dataclass
class AudioEvent:
    context_id: str
    seq: int
    data: bytes
    start_ms: float
    duration_ms: float
    received_at: float


@dataclass
class PhraseEvent:
    context_id: str
    index: int
    text: str
    start_ms: float
    received_at: float


@dataclass
class DoneEvent:
    context_id: str
    ttfa_ms: float | None
    audio_ms: float
    characters: int
    phrases: int
    usage: dict | None
    received_at: float


@dataclass
class CancelledEvent:
    context_id: str
    audio_ms: float
    text_spoken: str
    text_remaining: str
    received_at: float


@dataclass
class ErrorEvent:
    code: str
    message: str
    context_id: str | None
    fatal: bool
    received_at: float


Event = AudioEvent | PhraseEvent | DoneEvent | CancelledEvent | ErrorEvent
EventMessage = AudioMessage | PhraseMessage | DoneMessage | CancelledMessage | ErrorMessage


class ServerError(Exception):
    def __init__(self, event: ErrorEvent) -> None:
        super().__init__(f"{event.code}: {event.message}")
        self.event = event
        self.code = event.code


class ProtocolError(ServerError):
    """The server sent a frame this client cannot read: not JSON, no `type`, or a known message with a
    missing or mistyped field. The session cannot be trusted after it (a lost `done` would hang a
    turn), so the client closes it and every waiter gets this error (code `bad_server_message`)."""

    CODE = "bad_server_message"

    def __init__(self, problem: str, frame: str | bytes | None = None) -> None:
        shown = f" in {frame[:120]!r}" if frame is not None else ""
        super().__init__(ErrorEvent(self.CODE, f"unreadable server message: {problem}{shown}", None, True,
                                    time.monotonic()))


def read_frame(frame: str | bytes) -> ServerMessage | None:
    """The typed message in one server frame, or None for a message type this client does not know.

    A newer server may add message types and fields; both are skipped (the models ignore unknown
    fields), so an older client keeps working. Anything else unreadable raises `ProtocolError`.
    """
    try:
        return parse_server_message(frame)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if all(error["type"] == "union_tag_invalid" for error in errors):
            return None
        problem = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'frame'}: {e['msg']}" for e in errors[:3])
        raise ProtocolError(problem, frame) from exc


def audio_bytes(message: AudioMessage) -> bytes:
    """The encoded samples an `audio` message carries; `ProtocolError` if they are not base64."""
    try:
        return base64.b64decode(message.audio, validate=True)
    except binascii.Error as exc:
        raise ProtocolError(f"audio (seq {message.seq}) is not base64: {exc}") from exc


def to_event(message: EventMessage, received_at: float) -> Event:
    """The user-facing event for a server message (all but `ready`, which configures the session)."""
    if isinstance(message, AudioMessage):
        return AudioEvent(message.context_id, message.seq, audio_bytes(message), message.start_ms,
                          message.duration_ms, received_at)
    if isinstance(message, PhraseMessage):
        return PhraseEvent(message.context_id, message.index, message.text, message.start_ms, received_at)
    if isinstance(message, DoneMessage):
        usage = message.usage.model_dump() if message.usage is not None else None
        return DoneEvent(message.context_id, message.ttfa_ms, message.audio_ms, message.characters,
                         message.phrases, usage, received_at)
    if isinstance(message, CancelledMessage):
        return CancelledEvent(message.context_id, message.audio_ms, message.text_spoken,
                              message.text_remaining, received_at)
    return _error_event(message, received_at)


def _error_event(message: ErrorMessage, received_at: float) -> ErrorEvent:
    return ErrorEvent(message.code, message.message, message.context_id, message.fatal, received_at)


@dataclass
class TurnResult:
    """Everything a finished (or cancelled) turn produced, with client-side timings."""

    context_id: str
    encoding: str
    sample_rate: int
    audio: bytearray = field(default_factory=bytearray)
    events: list[Event] = field(default_factory=list)
    sent_first_text_at: float | None = None
    first_audio_at: float | None = None
    final: DoneEvent | CancelledEvent | None = None

    @property
    def ttfa_ms(self) -> float | None:
        """Client-side TTFA: first text sent -> first audio frame received."""
        if self.sent_first_text_at is None or self.first_audio_at is None:
            return None
        return (self.first_audio_at - self.sent_first_text_at) * 1000

    @property
    def phrases(self) -> list[PhraseEvent]:
        return [e for e in self.events if isinstance(e, PhraseEvent)]

    def samples(self) -> np.ndarray:
        return decode_samples(bytes(self.audio), self.encoding)

    def write_wav(self, path: str) -> None:
        import soundfile

        soundfile.write(path, self.samples(), self.sample_rate, subtype="PCM_16")


class ContextStream:
    """One context (turn) on a session: send text, then iterate its events."""

    def __init__(self, client: VoicewireClient, context_id: str, voice: Any = None,
                 generation: dict | None = None) -> None:
        self.client = client
        self.id = context_id
        self._first = {k: v for k, v in (("voice", voice), ("generation", generation)) if v is not None}
        self.queue: asyncio.Queue[Event] = client._queue(context_id)
        self.sent_first_text_at: float | None = None

    async def send_text(self, text: str) -> None:
        msg = {"type": "text", "context_id": self.id, "text": text, **self._first}
        self._first = {}
        if self.sent_first_text_at is None:
            self.sent_first_text_at = time.monotonic()
        await self.client.send(msg)

    async def flush(self) -> None:
        await self.client.send({"type": "flush", "context_id": self.id})

    async def end(self) -> None:
        await self.client.send({"type": "end", "context_id": self.id})

    async def cancel(self) -> None:
        await self.client.send({"type": "cancel", "context_id": self.id})

    async def events(self) -> AsyncIterator[Event]:
        """Events until `done`/`cancelled` (inclusive); a context error ends the iteration by raising."""
        while True:
            event = await self.queue.get()
            if isinstance(event, ErrorEvent):
                if event.fatal or event.code == "internal":
                    raise ServerError(event)
                yield event
                continue
            yield event
            if isinstance(event, DoneEvent | CancelledEvent):
                return


class VoicewireClient:
    """One session. `ready_message` is the server's latest typed `ready`; `ready` and `output_format`
    are the same as plain dicts, as this client has always offered them."""

    def __init__(self, ws: Any, ready: ReadyMessage) -> None:
        self.ws = ws
        self.ready_message = ready
        self._queues: dict[str, asyncio.Queue[Event]] = {}
        self.session_errors: asyncio.Queue[ErrorEvent] = asyncio.Queue()
        self._readies: asyncio.Queue[ReadyMessage] = asyncio.Queue()
        self._ids = itertools.count()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, url: str = DEFAULT_URL, api_key: str | None = None,
                      max_size: int | None = 2**24, **kwargs: Any) -> VoicewireClient:
        headers = {"x-api-key": api_key} if api_key else None
        ws = await websockets.connect(url, additional_headers=headers, max_size=max_size, **kwargs)
        try:
            first = read_frame(await ws.recv())
            if isinstance(first, ErrorMessage):
                raise ServerError(_error_event(first, time.monotonic()))
            if not isinstance(first, ReadyMessage):
                opened_with = repr(first.type) if first is not None else "a type this client does not know"
                raise ProtocolError(f"the session opened with {opened_with}, not 'ready'")
        except BaseException:
            await ws.close()
            raise
        return cls(ws, first)

    async def __aenter__(self) -> VoicewireClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def ready(self) -> dict:
        return self.ready_message.model_dump(mode="json")

    @property
    def output_format(self) -> dict:
        return self.ready_message.output_format.model_dump(mode="json")

    @property
    def closed(self) -> bool:
        """True once the connection is gone; long-lived users (framework plugins) reconnect then."""
        return self._reader.done()

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)

    async def send(self, message: dict) -> None:
        await self.ws.send(json.dumps(message))

    async def init(self, voice: Any = None, output_format: dict | None = None,
                   generation: dict | None = None) -> dict:
        msg: dict = {"type": "init"}
        for key, value in (("voice", voice), ("output_format", output_format), ("generation", generation)):
            if value is not None:
                msg[key] = value
        await self.send(msg)
        ready_wait = asyncio.ensure_future(self._readies.get())
        error_wait = asyncio.ensure_future(self.session_errors.get())
        done, pending = await asyncio.wait({ready_wait, error_wait}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if error_wait in done:
            raise ServerError(error_wait.result())
        self.ready_message = ready_wait.result()
        return self.ready

    def context(self, context_id: str | None = None, voice: Any = None,
                generation: dict | None = None) -> ContextStream:
        return ContextStream(self, context_id or f"ctx-{next(self._ids)}-{uuid.uuid4().hex[:6]}", voice, generation)

    async def speak(self, deltas: Iterable[str] | AsyncIterable[str], voice: Any = None,
                    generation: dict | None = None, context_id: str | None = None) -> TurnResult:
        """Stream deltas as one context, end it, and collect its audio and events."""
        ctx = self.context(context_id, voice, generation)
        fmt = self.ready_message.output_format
        result = TurnResult(ctx.id, fmt.encoding, fmt.sample_rate)
        sender = asyncio.create_task(self._send_all(ctx, deltas))
        try:
            async for event in ctx.events():
                result.events.append(event)
                if isinstance(event, AudioEvent):
                    if result.first_audio_at is None:
                        result.first_audio_at = event.received_at
                    result.audio += event.data
                elif isinstance(event, DoneEvent | CancelledEvent):
                    result.final = event
                elif isinstance(event, ErrorEvent):
                    raise ServerError(event)
        finally:
            if not sender.done():
                sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        if sender.exception() is not None:
            raise sender.exception()  # type: ignore[misc]
        result.sent_first_text_at = ctx.sent_first_text_at
        return result

    @staticmethod
    async def _send_all(ctx: ContextStream, deltas: Iterable[str] | AsyncIterable[str]) -> None:
        if isinstance(deltas, AsyncIterable):
            async for delta in deltas:
                await ctx.send_text(delta)
        else:
            for delta in deltas:
                await ctx.send_text(delta)
        if ctx.sent_first_text_at is None:
            await ctx.send_text("")
        await ctx.end()

    def _queue(self, context_id: str) -> asyncio.Queue[Event]:
        return self._queues.setdefault(context_id, asyncio.Queue())

    async def _read(self) -> None:
        ended: ErrorEvent | None = None
        try:
            async for raw in self.ws:
                message = read_frame(raw)
                if message is None:
                    continue
                if isinstance(message, ReadyMessage):
                    await self._readies.put(message)
                    continue
                event = to_event(message, time.monotonic())
                context_id = getattr(event, "context_id", None)
                if context_id is not None and (context_id in self._queues or not isinstance(event, ErrorEvent)):
                    await self._queue(context_id).put(event)
                else:
                    await self.session_errors.put(event)  # type: ignore[arg-type]
                if isinstance(event, DoneEvent | CancelledEvent):
                    self._queues.pop(context_id, None)
        except websockets.ConnectionClosed:
            pass
        except ProtocolError as exc:
            ended = exc.event
            await self.ws.close(1002, ProtocolError.CODE)
        finally:
            ended = ended or ErrorEvent("connection_closed", "the server closed the connection", None, True,
                                        time.monotonic())
            for queue in self._queues.values():
                queue.put_nowait(ended)
            self.session_errors.put_nowait(ended)
