"""The asyncio shell of one websocket session: moves frames between the socket, the I/O-free
`Session`, the voice library and the inference pool. No protocol rules live here.

Two tasks per connection: the receive loop (client messages -> session) and the speaker
(session phrases -> engine jobs -> audio frames), which speaks contexts strictly in open order.
The next phrase's synthesis starts as soon as the current phrase's synthesis finishes, so it
overlaps the sending of the current one.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import time
import uuid

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from stream.accounts.auth import Caller
from stream.audio.codecs import OutputEncoder, PhraseShaper, pause_after
from stream.core.errors import (
    IdleTimeout,
    InternalError,
    MessageTooLarge,
    ProtocolError,
    RateLimited,
    ServerShuttingDown,
    Unauthorized,
)
from stream.core.protocol import (
    PROTOCOL_VERSION,
    CancelMessage,
    EndMessage,
    FlushMessage,
    InitMessage,
    KeepaliveMessage,
    OutputFormat,
    TextMessage,
    dumps,
    parse_client_message,
)
from stream.core.session import Context, ContextState, Phrase, Session
from stream.deadline import deadline
from stream.engines.base import SynthesisRequest
from stream.inference.pool import ChunkStream
from stream.server.runtime import Runtime

log = logging.getLogger("voicewire.session")
TICK_S = 0.05
CLOSE_TIMEOUT_S = 2.0  # a close frame that cannot be written by then (peer not reading) is abandoned


class ClientGone(Exception):
    """The peer closed, or stopped reading for longer than the stalled-client timeout."""


class Connection:
    def __init__(self, ws: WebSocket, runtime: Runtime) -> None:
        self.ws = ws
        self.rt = runtime
        self.limits = runtime.settings.limits
        self.id = uuid.uuid4().hex[:16]
        self.session = Session(self.limits, runtime.engine.name, time.monotonic())
        self.output = OutputFormat(sample_rate=runtime.engine.sample_rate)
        self.changed = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._jobs: dict[int, ChunkStream] = {}  # phrase identity -> job (current and prefetched)
        self._last_seen = time.monotonic()
        self.api_key: Caller | None = None
        self._speaker_task: asyncio.Task | None = None
        self._stalled = False
        self._shutting_down = False
        self._shut_down = asyncio.Event()

    # -- sending ----------------------------------------------------------------------------
    async def send(self, message: dict) -> None:
        if self.ws.client_state is not WebSocketState.CONNECTED:
            raise ClientGone()
        async with self._send_lock:
            try:
                async with deadline(self.limits.stalled_client_timeout_s):
                    await self.ws.send_text(dumps(message))
            except asyncio.TimeoutError:
                self._stalled = True
                raise ClientGone("client stopped reading") from None
            except (WebSocketDisconnect, RuntimeError, OSError) as exc:
                raise ClientGone(str(exc)) from None

    async def send_error(self, err: ProtocolError) -> None:
        self.rt.metrics.errors.labels(err.code).inc()
        await self.send(err.to_message())

    async def close(self, code: int, reason: str = "") -> None:
        if self.ws.client_state is WebSocketState.CONNECTED:
            try:
                async with deadline(CLOSE_TIMEOUT_S):
                    await self.ws.close(code=code, reason=reason[:120])
            except (RuntimeError, OSError, asyncio.TimeoutError):
                pass

    def ready_message(self) -> dict:
        engine = self.rt.engine
        return {
            "type": "ready",
            "protocol": PROTOCOL_VERSION,
            "session_id": self.id,
            "engine": engine.name,
            "model": engine.model,
            "output_format": {"encoding": self.output.encoding, "sample_rate": self.output.sample_rate,
                              "channels": 1},
            "capabilities": engine.capabilities.to_wire(),
            "limits": self.limits.to_wire(),
        }

    # -- life cycle -------------------------------------------------------------------------
    async def run(self) -> None:
        await self.ws.accept()
        try:
            self.api_key = await asyncio.to_thread(  # a key lookup reads the database: off the loop
                self.rt.auth.authenticate, self.ws.headers.get("x-api-key") or self.ws.query_params.get("api_key"))
            self.rt.sessions.admit(self)
        except (Unauthorized, RateLimited) as err:
            err.fatal = True  # refused at the door: nothing to keep open
            await self.fatal(err, code=err.close_code or 1013)
            return
        except ClientGone:
            return
        self.rt.metrics.active_sessions.inc()
        speaker = self._speaker_task = asyncio.create_task(self._speaker(), name=f"speaker-{self.id}")
        ticker = asyncio.create_task(self._ticker(), name=f"ticker-{self.id}")
        try:
            await self.send(self.ready_message())
            await self._receive_loop(speaker)
        except ClientGone:
            pass
        finally:
            if self._shutting_down:  # the speaker was stopped for it: let the final messages go out
                await self._shut_down.wait()
            if self._stalled:
                # Whatever it reads next ends with this close frame; its generation stopped already.
                timeout = self.limits.stalled_client_timeout_s
                log.warning("session %s: client read nothing for %g s; closing it", self.id, timeout)
                await self.close(1008, f"client stopped reading for {timeout:g} s")
            for task in (speaker, ticker):
                task.cancel()
            self._stop_jobs()
            await asyncio.gather(speaker, ticker, return_exceptions=True)
            self.rt.metrics.active_contexts.dec(len(self.session.contexts))
            self.rt.metrics.active_sessions.dec()
            self.rt.sessions.release(self)

    async def fatal(self, err: ProtocolError, code: int | None = None) -> None:
        try:
            await self.send_error(err)
        except ClientGone:
            return
        await self.close(code or err.close_code or 1011, err.message)

    async def shutdown(self) -> None:
        """Server stop: each open context gets its final `cancelled` (what was and was not spoken),
        then `shutting_down` and close 1001."""
        self._shutting_down = True
        try:
            await self._final_messages()
        finally:
            self._shut_down.set()

    async def _final_messages(self) -> None:
        if self._speaker_task is not None:
            self._speaker_task.cancel()
            await asyncio.gather(self._speaker_task, return_exceptions=True)
        self._stop_jobs()
        try:
            while (ctx := self.session.head()) is not None:
                if ctx.state is not ContextState.CANCELLED:
                    self.session.cancel(ctx.id)
                await self._finish(ctx)
        except ClientGone:
            return
        await self.fatal(ServerShuttingDown("server: shutting down"))

    async def _receive_loop(self, speaker: asyncio.Task) -> None:
        while True:
            idle_left = self.limits.idle_timeout_s - (time.monotonic() - self._last_seen)
            receive = asyncio.ensure_future(self.ws.receive())
            done, _ = await asyncio.wait({receive, speaker}, timeout=max(0.0, idle_left),
                                         return_when=asyncio.FIRST_COMPLETED)
            if speaker in done:  # the speaker only ends when the client is gone
                receive.cancel()
                return
            if not done:
                receive.cancel()
                if self.session.contexts:  # still speaking to a listening client: not idle
                    self._last_seen = time.monotonic()
                if time.monotonic() - self._last_seen < self.limits.idle_timeout_s:
                    continue  # or a context finished meanwhile (see _finish)
                await self.fatal(IdleTimeout(f"session: no message for {self.limits.idle_timeout_s:g} s"))
                return
            frame = receive.result()
            if frame["type"] == "websocket.disconnect":
                return
            self._last_seen = time.monotonic()
            raw = frame.get("text") if frame.get("text") is not None else frame.get("bytes", b"")
            if len(raw) > self.limits.max_frame_bytes:
                await self.fatal(MessageTooLarge(
                    f"message: frame of {len(raw)} bytes exceeds max_frame_bytes {self.limits.max_frame_bytes}"))
                return
            try:
                self.session.admit(self._last_seen)
                await self.handle(parse_client_message(raw))
            except ProtocolError as err:
                if err.fatal:
                    await self.fatal(err)
                    return
                await self.send_error(err)

    async def handle(self, msg) -> None:
        now = time.monotonic()
        if isinstance(msg, TextMessage):
            opens = msg.context_id not in self.session.contexts
            spec = self.session.check_text(msg)
            # Credits are taken before the text can reach the engine (or a voice is prepared for it).
            await self.rt.auth.charge(self.api_key, len(msg.text), msg.context_id)
            try:
                voice = await self.rt.voices.resolve(spec, msg.context_id) if opens else None
            except ProtocolError:
                await self.rt.auth.refund(self.api_key, len(msg.text))
                raise
            ctx, _, opened = self.session.text(
                msg, now, voice, (self.output.encoding, self.output.sample_rate or self.rt.engine.sample_rate))
            if opened:
                self.rt.metrics.active_contexts.inc()
        elif isinstance(msg, FlushMessage):
            self.session.flush(msg.context_id)
        elif isinstance(msg, EndMessage):
            self.session.end(msg.context_id)
        elif isinstance(msg, CancelMessage):
            await self._cancel(msg.context_id)
        elif isinstance(msg, InitMessage):
            await self._init(msg)
            return
        elif isinstance(msg, KeepaliveMessage):
            return
        self.changed.set()

    async def _init(self, msg: InitMessage) -> None:
        if msg.voice is not None:
            await self.rt.voices.resolve(msg.voice)
            self.session.default_voice = msg.voice
        if msg.generation is not None:
            self.session.default_generation = msg.generation
        if msg.output_format is not None:
            self.output = OutputFormat(
                encoding=msg.output_format.encoding,
                sample_rate=msg.output_format.sample_rate or self.rt.engine.sample_rate,
            )
        await self.send(self.ready_message())

    async def _cancel(self, context_id: str) -> None:
        ctx = self.session.cancel(context_id)
        if ctx is self.session.head():
            self._stop_jobs()
            self.changed.set()  # the speaker reports it
        else:
            await self._finish(ctx)

    async def _finish(self, ctx: Context) -> None:
        message = self.session.close(ctx)
        self._last_seen = time.monotonic()  # the client now hears that audio out: idle counts from here
        self.rt.metrics.active_contexts.dec()
        self.rt.metrics.contexts.labels(message["type"]).inc()
        if message["type"] == "done":
            if message["ttfa_ms"] is not None:
                self.rt.metrics.ttfa.observe(message["ttfa_ms"] / 1000)
            if (usage := await self.rt.auth.usage(self.api_key, ctx.characters)) is not None:
                message["usage"] = usage
        else:  # text that was never spoken is not billed
            await self.rt.auth.refund(self.api_key, len(message["text_remaining"]))
        await self.send(message)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            if self.session.tick(time.monotonic()):
                self.changed.set()

    # -- speaking ---------------------------------------------------------------------------
    async def _wait_change(self) -> None:
        await self.changed.wait()
        self.changed.clear()

    async def _speaker(self) -> None:
        while True:
            ctx = self.session.head()
            if ctx is None:
                await self._wait_change()
                continue
            try:
                await self._speak_context(ctx)
            except ProtocolError as err:  # the engine failed: this context ends, the others go on
                self._stop_jobs()
                self.session.close(ctx)
                self.rt.metrics.active_contexts.dec()
                self.rt.metrics.contexts.labels("error").inc()
                await self.send_error(err)
                continue
            self._stop_jobs()  # a cancelled context leaves its prefetched phrase's job behind
            await self._finish(ctx)

    def _stop_jobs(self) -> None:
        """Stop and forget every synthesis job: they all belong to the head context, which is ending."""
        for job in self._jobs.values():
            job.stop()
        self._jobs.clear()

    def _start_job(self, ctx: Context, phrase: Phrase) -> ChunkStream:
        request = SynthesisRequest(text=phrase.speak, voice=ctx.engine_voice, generation=ctx.generation,
                                   first_in_context=phrase.index == 0)
        engine = self.rt.engine
        started = time.monotonic()
        job = self.rt.pool.stream(lambda cancel: engine.synthesize(request, cancel), threading.Event(),
                                  lookahead=self.limits.send_buffer_chunks,
                                  stall_timeout_s=self.limits.engine_stall_timeout_s,
                                  priority=0 if phrase.index == 0 else 1)
        job.started = started
        self._jobs[id(phrase)] = job

        def prefetch(_: object) -> None:
            # Synthesis of the next phrase overlaps sending of this one.
            if ctx.state is not ContextState.CANCELLED and ctx.phrases:
                nxt = ctx.phrases[0]
                if nxt.speak and id(nxt) not in self._jobs:
                    self._start_job(ctx, nxt)

        job.done.add_done_callback(prefetch)
        return job

    async def _speak_context(self, ctx: Context) -> None:
        shaper = PhraseShaper(self.rt.engine.sample_rate)
        encoder = OutputEncoder(self.rt.engine.sample_rate, ctx.output_rate, ctx.encoding)
        seq = 0
        while ctx.state is not ContextState.CANCELLED:
            if not ctx.phrases:
                if ctx.finished_input:
                    break
                await self._wait_change()
                continue
            phrase = ctx.phrases.popleft()
            ctx.in_flight = phrase
            await self.send({"type": "phrase", "context_id": ctx.id, "index": phrase.index,
                             "text": phrase.text, "start_ms": round(ctx.audio_ms(), 2)})
            if ctx.state is ContextState.CANCELLED:  # cancelled while that was sent: start no synthesis
                break
            if phrase.speak:
                job = self._jobs.get(id(phrase)) or self._start_job(ctx, phrase)
                first = True
                try:
                    async for chunk in job:
                        if first:
                            self.rt.metrics.engine_first_chunk.observe(time.monotonic() - job.started)
                            first = False
                        seq = await self._send_audio(ctx, encoder, shaper.push(chunk), seq)
                        if ctx.state is ContextState.CANCELLED:
                            break
                except (ProtocolError, ClientGone):  # ClientGone comes from sending, not from the engine
                    raise
                except Exception as exc:
                    log.exception("synthesis failed in context %s", ctx.id)
                    raise InternalError(f"synthesis failed: {type(exc).__name__}: {exc}",
                                        context_id=ctx.id) from exc
                finally:
                    self._jobs.pop(id(phrase), None)
                    job.stop()  # no-op once it finished; else (client gone mid-phrase) it must not stay parked
                if ctx.state is ContextState.CANCELLED:
                    break
                last = ctx.finished_input and not ctx.phrases
                tail = shaper.finish(0.0 if last else pause_after(phrase.text))
                seq = await self._send_audio(ctx, encoder, tail, seq, flush=last)
            self.rt.metrics.characters.inc(len(phrase.text))
            ctx.spoken.append(phrase.text)
            ctx.in_flight = None

    async def _send_audio(self, ctx: Context, encoder: OutputEncoder, samples, seq: int,
                          flush: bool = False) -> int:
        data, count = encoder.encode(samples, last=flush)
        if count == 0:
            return seq
        start_ms = ctx.audio_ms()
        self.session.audio_sent(ctx, count, time.monotonic())
        await self.send({
            "type": "audio", "context_id": ctx.id, "seq": seq,
            "audio": base64.b64encode(data).decode("ascii"),
            "start_ms": round(start_ms, 3), "duration_ms": round(count * 1000.0 / ctx.output_rate, 3),
        })
        self.rt.metrics.audio_seconds.inc(count / ctx.output_rate)
        return seq + 1

