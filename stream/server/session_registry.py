"""The set of live websocket sessions: admission limits (server-wide and per key) and shutdown."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Protocol

from stream.core.errors import RateLimited
from stream.core.limits import Limits


class _Session(Protocol):
    caller: object | None   # the authenticated caller (hashable), None on an open server

    async def shutdown(self) -> None: ...


class SessionRegistry:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.live: set[_Session] = set()
        self._per_key: Counter[object] = Counter()

    def admit(self, session: _Session) -> None:
        if len(self.live) >= self.limits.max_sessions:
            raise RateLimited(f"server: at most {self.limits.max_sessions} sessions; try again later")
        key = session.caller
        if key is not None and self._per_key[key] >= self.limits.max_sessions_per_key:
            raise RateLimited(f"x-api-key: at most {self.limits.max_sessions_per_key} sessions per key")
        self.live.add(session)
        if key is not None:
            self._per_key[key] += 1

    def release(self, session: _Session) -> None:
        if session in self.live:
            self.live.discard(session)
            if session.caller is not None:
                self._per_key[session.caller] -= 1

    async def shutdown_all(self) -> None:
        """Final messages to every session at once, so one stalled client cannot hold up the rest."""
        await asyncio.gather(*(session.shutdown() for session in list(self.live)), return_exceptions=True)
