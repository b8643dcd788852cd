"""What every websocket driver of a session does, whatever its wire protocol: feed the I/O-free
`Session` and carry out its actions.

Four tasks per connection: `_receive` (client frames -> session), `_speak` (engine events of the
job the session reads -> session; it reads the next chunk once the last audio is on the wire,
which is the backpressure), `_clock` (sleeps until the session's next deadline, then ticks it) and
the `Outbox` writer (delivers outbound actions in the order the session returned them). Job
actions run at once, inside `_execute`, so a stop takes effect before anything else can happen.

A protocol is a subclass that parses its frames into client messages (`_frame` -> `_handle`) and
translates outbound actions to its own frames (`_post`, an `Outbox` of its own): voicewire's own
protocol (`stream.server.websocket`) and the compatible ones (`stream.server.compat`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from abc import ABC, abstractmethod

from starlette.websockets import WebSocket

from stream.accounts.auth import Caller
from stream.audio.phrase_audio import EncodedPhraseAudio
from stream.core.actions import Action, Close, SendMessage
from stream.core.errors import MessageTooLarge, ProtocolError, RateLimited
from stream.core.protocol import (
    CancelMessage,
    ClientMessage,
    EndMessage,
    FlushMessage,
    InitMessage,
    OutputFormat,
    TextMessage,
)
from stream.core.server_messages import ReadyMessage
from stream.core.session import Session
from stream.deadline import deadline
from stream.server.credentials import authenticate, request_key
from stream.server.outbox import Outbox, Settle
from stream.server.runtime import Runtime
from stream.server.storage_outage import outage_error, refund_quietly
from stream.server.synthesis_jobs import SynthesisJobs
from stream.storage import StorageUnavailable


class SessionDriver(ABC):
    def __init__(self, ws: WebSocket, runtime: Runtime) -> None:
        self.ws, self.rt, self.limits = ws, runtime, runtime.settings.limits
        self.id = uuid.uuid4().hex[:16]
        self.output = OutputFormat(sample_rate=runtime.engine.sample_rate)
        self.session = Session(self.limits, runtime.engine.policy, self._phrase_audio, time.monotonic())
        self.jobs = SynthesisJobs(runtime, self.session, self._execute)
        self.outbox = Outbox(ws, runtime, self.id, on_stalled=lambda: self._execute(self.session.disconnect()))
        self._wake_speaker, self._wake_clock, self._closed = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self._open_contexts = 0
        self._settled = 0   # of `session.spoken_characters`, queued to be settled

    @property
    def caller(self) -> Caller | None:
        """Who authenticated (never the secret): the session registry counts sessions per caller."""
        return self.outbox.caller

    @property
    def busy(self) -> bool:
        """A turn is in progress (an open context): a drain lets it finish before closing the session."""
        return bool(self.session.contexts)

    async def run(self) -> None:
        await self.ws.accept()
        try:
            try:
                self.outbox.caller = await self._authenticate()
                await self.rt.sessions.admit(self)
            except StorageUnavailable as exc:
                raise outage_error(exc, "the session cannot be authorized") from None
        except ProtocolError as err:   # unauthorized, over a limit, draining, database down, or a compat refusal
            err.fatal = True  # refused at the door: nothing to keep open
            self.outbox.put(Close(err, code=err.close_code or (1013 if isinstance(err, RateLimited) else 1008)))
            await self.outbox.run()
            return
        self.rt.metrics.active_sessions.inc()
        if (greeting := self._greeting()) is not None:
            self.outbox.put(greeting)
        tasks = [asyncio.create_task(coro) for coro in (self._receive(), self.outbox.run(), self._speak(), self._clock())]
        receive, write = tasks[:2]
        try:
            done, _ = await asyncio.wait({receive, write}, return_when=asyncio.FIRST_COMPLETED)
            if receive in done and receive.result():  # a fatal error is queued: let it and the close go out
                await asyncio.wait({write})
        finally:
            self._execute(self.session.disconnect())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.rt.metrics.active_contexts.dec(self._open_contexts)
            self.rt.metrics.active_sessions.dec()
            self._closed.set()
            await self.rt.sessions.release(self)

    async def shutdown(self) -> None:
        """Server stop: each open context's final `cancelled`, then `shutting_down` and close 1001."""
        self._execute(self.session.shutdown(time.monotonic()))
        await self._closed.wait()

    # -- inputs -------------------------------------------------------------------------------
    async def _receive(self) -> bool:
        """Feed client frames to the session until the client leaves (False) or a fatal error (True)."""
        while True:
            frame = await self._next_frame()
            if frame["type"] == "websocket.disconnect":
                return False
            raw = frame.get("text") if frame.get("text") is not None else frame.get("bytes", b"")
            try:
                if len(raw) > self.limits.max_frame_bytes:
                    raise MessageTooLarge(f"message: frame of {len(raw)} bytes exceeds max_frame_bytes "
                                          f"{self.limits.max_frame_bytes}")
                try:
                    await self._frame(raw, time.monotonic())
                except StorageUnavailable as exc:   # no charge, no voice: the client retries, here or elsewhere
                    raise outage_error(exc, "this text cannot be charged or its voice found") from None
            except ProtocolError as err:
                self._execute([Close(err) if err.fatal else SendMessage(err.to_wire())])
                if err.fatal:
                    return True

    async def _authenticate(self) -> Caller | None:
        """Who is calling; a compat driver overrides this to read its protocol's key forms."""
        return await asyncio.to_thread(  # a key lookup reads the database: off the loop
            authenticate, self.rt.auth, request_key(self.ws.headers, self.ws.query_params))

    async def _next_frame(self) -> dict:
        return await self.ws.receive()

    @abstractmethod
    async def _frame(self, raw: str | bytes, now: float) -> None:
        """One client frame (size already checked): parse it and hand the messages to `_handle`."""

    async def _handle(self, msg: ClientMessage, now: float) -> None:
        if isinstance(msg, TextMessage):
            opens, spec = self.session.opens(msg), self.session.check_text(msg)
            # Credits are taken before the text can reach the engine (or a voice is prepared for it),
            # pending against this session until spoken: a replica killed mid-turn charges none of the rest.
            await self.rt.auth.charge(self.caller, len(msg.text), msg.context_id, self.rt.sessions.hold(self.id))
            try:
                voice = await self.rt.voices.resolve(spec, msg.context_id) if opens else None
                self._execute(self.session.text(msg, now, voice, self._output()))
            except (ProtocolError, StorageUnavailable):
                await refund_quietly(self.rt.auth, self.caller, len(msg.text), self.id)
                raise
        elif isinstance(msg, FlushMessage):
            self._execute(self.session.flush(msg.context_id, now))
        elif isinstance(msg, EndMessage):
            self._execute(self.session.end(msg.context_id, now))
        elif isinstance(msg, CancelMessage):
            self._execute(self.session.cancel(msg.context_id, now))
        elif isinstance(msg, InitMessage):
            await self._init(msg)

    async def _init(self, msg: InitMessage) -> None:
        """Session defaults for the contexts opened from now on."""
        if msg.voice is not None:
            await self.rt.voices.resolve(msg.voice)
            self.session.default_voice = msg.voice
        if msg.generation is not None:
            self.session.default_generation = msg.generation
        if msg.output_format is not None:
            self.output = OutputFormat(encoding=msg.output_format.encoding,
                                       sample_rate=msg.output_format.sample_rate or self.rt.engine.sample_rate)

    async def _speak(self) -> None:
        while True:
            actions = await self.jobs.step()
            if actions is None:
                await _wait(self._wake_speaker, None)
                continue
            self._execute(actions)
            await self.outbox.drained()

    async def _clock(self) -> None:
        while True:
            self._wake_clock.clear()
            due = self.session.next_deadline()
            timeout = None if due is None else max(0.001, due - time.monotonic())
            if not await _wait(self._wake_clock, timeout):
                self._execute(self.session.tick(time.monotonic()))

    # -- outputs ------------------------------------------------------------------------------
    def _execute(self, actions: list[Action]) -> None:
        self._post(self.jobs.run(actions))
        if (spoken := self.session.spoken_characters) > self._settled:   # after the phrase's last audio
            self.outbox.put(Settle(spoken - self._settled))
            self._settled = spoken
        opened, self._open_contexts = len(self.session.contexts) - self._open_contexts, len(self.session.contexts)
        self.rt.metrics.active_contexts.inc(opened)
        self._wake_speaker.set()
        self._wake_clock.set()

    def _post(self, actions: list[Action]) -> None:
        """Queue the session's outbound actions; a compat driver translates them to its wire first."""
        for action in actions:
            self.outbox.put(action)

    def _phrase_audio(self, encoding: str, output_rate: int) -> EncodedPhraseAudio:
        return EncodedPhraseAudio(self.rt.engine.sample_rate, output_rate, encoding)

    def _output(self) -> tuple[str, int]:
        """(encoding, sample rate) of the contexts opened from now on."""
        return self.output.encoding, self.output.sample_rate

    def _greeting(self) -> ReadyMessage | None:
        """The first message on a new session, if the protocol has one."""
        return None


async def _wait(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait for `event` (then clear it) up to `timeout` seconds; False when the time ran out."""
    try:
        async with deadline(timeout):
            await event.wait()
    except asyncio.TimeoutError:
        return False
    event.clear()
    return True
