"""The websocket driver of voicewire's own protocol (`/v1/stream`, docs/protocol.md).

Parsing a frame into one typed client message and greeting with `ready` are all it adds to the
generic `SessionDriver`; every decision is the session's.
"""

from __future__ import annotations

from stream.core.protocol import InitMessage, parse_client_message
from stream.core.server_messages import OutputFormatInfo, ReadyMessage
from stream.server.session_driver import SessionDriver


class Connection(SessionDriver):
    async def _frame(self, raw: str | bytes, now: float) -> None:
        self.session.admit(now)
        await self._handle(parse_client_message(raw), now)

    async def _init(self, msg: InitMessage) -> None:
        await super()._init(msg)
        self.outbox.put(self._greeting())

    def _greeting(self) -> ReadyMessage:
        engine = self.rt.engine
        return ReadyMessage(session_id=self.id, engine=engine.name, model=engine.model,
                            output_format=OutputFormatInfo(encoding=self.output.encoding,
                                                           sample_rate=self.output.sample_rate),
                            capabilities=engine.capabilities.to_wire(),
                            limits=self.limits.to_wire() | self.rt.executor.limits().to_wire(),
                            replica=self.rt.replica)
