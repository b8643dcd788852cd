"""The outbound half of a websocket session: delivers the session's messages, in order, to the socket.

One writer task drains a queue, so frames leave exactly in the order the session returned them,
whichever task produced them. Credit bookkeeping rides the same queue: a `Refund` or a `Settle` is
booked after the frames queued before it, so a phrase's characters are settled only once its last
audio is on the wire, whatever the wire protocol. Each send is bounded by the stalled-client timeout: a client that
reads nothing that long is closed (1008), and its generation is stopped first.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from stream.accounts.auth import Caller
from stream.core.actions import Action, Close, Complete, Refund, SendAudio, SendMessage
from stream.core.errors import ProtocolError
from stream.core.server_messages import AudioMessage, ReadyMessage, Usage, dump_message
from stream.deadline import deadline
from stream.server.runtime import Runtime
from stream.server.storage_outage import refund_quietly
from stream.storage import StorageUnavailable

log = logging.getLogger("voicewire.session")
CLOSE_TIMEOUT_S = 2.0  # a close frame that cannot be written by then (peer not reading) is abandoned


@dataclass(frozen=True)
class Settle:
    """The session's text spoken so far grew by `characters`: they are no longer pending (`CreditHolds`)."""

    characters: int


class ClientGone(Exception):
    """The peer closed, or stopped reading for longer than the stalled-client timeout."""


class Outbox:
    def __init__(self, ws: WebSocket, runtime: Runtime, session_id: str, on_stalled: Callable[[], None]) -> None:
        self.ws, self.rt, self.session_id = ws, runtime, session_id
        self.caller: Caller | None = None
        self._on_stalled = on_stalled
        self._queue: asyncio.Queue[Action | ReadyMessage | Settle] = asyncio.Queue()

    def put(self, item: Action | ReadyMessage | Settle) -> None:
        self._queue.put_nowait(item)

    async def drained(self) -> None:
        """Wait until everything queued so far is on the wire (the speaker's backpressure)."""
        await self._queue.join()

    async def run(self) -> None:
        """Deliver queued items in order; ends when the client is gone or the session closed."""
        while True:
            item = await self._queue.get()
            try:
                if isinstance(item, Close):
                    await self._close(item.error, item.code)
                    return
                if isinstance(item, Refund | Settle):
                    await self._book(item)
                else:
                    await self._deliver(item)
            except ClientGone:
                return
            finally:
                self._queue.task_done()

    async def _deliver(self, item: Action | ReadyMessage) -> None:
        metrics = self.rt.metrics
        if isinstance(item, SendAudio):
            await self._send(AudioMessage(context_id=item.context_id, seq=item.seq,
                                          audio=base64.b64encode(item.payload).decode("ascii"),
                                          start_ms=item.start_ms, duration_ms=item.duration_ms))
            metrics.audio_seconds.inc(item.duration_ms / 1000.0)
        elif isinstance(item, SendMessage):
            message = item.message
            if message.type == "error":
                metrics.errors.labels(message.code).inc()
            elif message.type == "cancelled":
                metrics.contexts.labels("cancelled").inc()
                metrics.characters.inc(len(message.text_spoken))
            await self._send(message)
        elif isinstance(item, Complete):
            done = item.message
            try:
                usage = await self.rt.auth.usage(self.caller, done.characters)
            except StorageUnavailable as exc:   # the audio was paid and sent; only the balance is unknown
                log.warning("session %s: done without usage, database unavailable (%s)", self.session_id, exc)
                usage = None
            if usage is not None:
                done = done.model_copy(update={"usage": Usage(**usage)})
            metrics.contexts.labels("done").inc()
            metrics.characters.inc(done.characters)
            if done.ttfa_ms is not None:
                metrics.ttfa.observe(done.ttfa_ms / 1000)
            await self._send(done)
        elif isinstance(item, ReadyMessage):
            await self._send(item)

    async def _book(self, item: Refund | Settle) -> None:
        """Credits of a metered caller: unspoken text refunded, spoken text settled (see `stream.storage.holds`)."""
        if self.caller is None or not self.caller.metered:
            return
        if isinstance(item, Refund):
            await refund_quietly(self.rt.auth, self.caller, item.characters, self.session_id)
        else:
            await self.rt.sessions.settle(self.session_id, item.characters)

    async def _send(self, message: BaseModel) -> None:
        if self.ws.client_state is not WebSocketState.CONNECTED:
            raise ClientGone()
        timeout = self.rt.settings.limits.stalled_client_timeout_s
        try:
            async with deadline(timeout):
                await self.ws.send_text(dump_message(message))
        except asyncio.TimeoutError:
            log.warning("session %s: client read nothing for %g s; closing it", self.session_id, timeout)
            self._on_stalled()  # its generation stops now, before the close
            await self._close_socket(1008, f"client stopped reading for {timeout:g} s")
            raise ClientGone("client stopped reading") from None
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise ClientGone(str(exc)) from None

    async def _close(self, err: ProtocolError | None, code: int | None) -> None:
        if err is None:
            await self._close_socket(code or 1000, "")
            return
        self.rt.metrics.errors.labels(err.code).inc()
        await self._send(err.to_wire())
        await self._close_socket(code or err.close_code or 1011, err.message)

    async def _close_socket(self, code: int, reason: str) -> None:
        if self.ws.client_state is WebSocketState.CONNECTED:
            try:
                async with deadline(CLOSE_TIMEOUT_S):
                    await self.ws.close(code=code, reason=reason[:120])
            except (RuntimeError, OSError, asyncio.TimeoutError):
                pass
