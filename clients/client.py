"""Async Python client for the voicewire websocket protocol.

One `VoicewireClient` is one session (socket). A background reader routes server messages to
per-context queues, so several contexts can be driven at once; `speak()` covers the common case
of one streamed turn.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import websockets

from stream.audio.codecs import decode_samples

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


class ServerError(Exception):
    def __init__(self, event: ErrorEvent) -> None:
        super().__init__(f"{event.code}: {event.message}")
        self.event = event
        self.code = event.code


def _event(msg: dict, now: float) -> Event | None:
    kind = msg.get("type")
    if kind == "audio":
        return AudioEvent(msg["context_id"], msg["seq"], base64.b64decode(msg["audio"]), msg["start_ms"],
                          msg["duration_ms"], now)
    if kind == "phrase":
        return PhraseEvent(msg["context_id"], msg["index"], msg["text"], msg["start_ms"], now)
    if kind == "done":
        return DoneEvent(msg["context_id"], msg.get("ttfa_ms"), msg["audio_ms"], msg["characters"],
                         msg["phrases"], msg.get("usage"), now)
    if kind == "cancelled":
        return CancelledEvent(msg["context_id"], msg["audio_ms"], msg["text_spoken"], msg["text_remaining"], now)
    if kind == "error":
        return ErrorEvent(msg["code"], msg["message"], msg.get("context_id"), msg["fatal"], now)
    return None


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
    def __init__(self, ws: Any, ready: dict) -> None:
        self.ws = ws
        self.ready = ready
        self._queues: dict[str, asyncio.Queue[Event]] = {}
        self.session_errors: asyncio.Queue[ErrorEvent] = asyncio.Queue()
        self._readies: asyncio.Queue[dict] = asyncio.Queue()
        self._ids = itertools.count()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, url: str = DEFAULT_URL, api_key: str | None = None,
                      max_size: int | None = 2**24, **kwargs: Any) -> VoicewireClient:
        headers = {"x-api-key": api_key} if api_key else None
        ws = await websockets.connect(url, additional_headers=headers, max_size=max_size, **kwargs)
        first = json.loads(await ws.recv())
        if first.get("type") == "error":
            await ws.close()
            raise ServerError(_event(first, time.monotonic()))  # type: ignore[arg-type]
        return cls(ws, first)

    async def __aenter__(self) -> VoicewireClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def output_format(self) -> dict:
        return self.ready["output_format"]

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
        self.ready = ready_wait.result()
        return self.ready

    def context(self, context_id: str | None = None, voice: Any = None,
                generation: dict | None = None) -> ContextStream:
        return ContextStream(self, context_id or f"ctx-{next(self._ids)}-{uuid.uuid4().hex[:6]}", voice, generation)

    async def speak(self, deltas: Iterable[str] | AsyncIterable[str], voice: Any = None,
                    generation: dict | None = None, context_id: str | None = None) -> TurnResult:
        """Stream deltas as one context, end it, and collect its audio and events."""
        ctx = self.context(context_id, voice, generation)
        fmt = self.output_format
        result = TurnResult(ctx.id, fmt["encoding"], fmt["sample_rate"])
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
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                if msg.get("type") == "ready":
                    await self._readies.put(msg)
                    continue
                event = _event(msg, time.monotonic())
                if event is None:
                    continue
                context_id = getattr(event, "context_id", None)
                if context_id is not None and (context_id in self._queues or not isinstance(event, ErrorEvent)):
                    await self._queue(context_id).put(event)
                else:
                    await self.session_errors.put(event)  # type: ignore[arg-type]
                if isinstance(event, DoneEvent | CancelledEvent):
                    self._queues.pop(context_id, None)
        except websockets.ConnectionClosed:
            pass
        finally:
            closed = ErrorEvent("connection_closed", "the server closed the connection", None, True,
                                time.monotonic())
            for queue in self._queues.values():
                queue.put_nowait(closed)
            self.session_errors.put_nowait(closed)
