"""The set of live websocket sessions: admission limits (server-wide and per key), drain and shutdown.

The server-wide limit is this replica's own. The per-key limit counts a key's sessions on every
replica sharing the database: each keyed session holds a lease in `storage.leases` from admission to
close, and a heartbeat renews this replica's leases every `renew_every_s`, so a replica that dies
stops counting within the lease TTL. The same heartbeat renews this replica's credit holds
(`stream.storage.holds`) and sweeps every replica's expired ones, so a dead replica's unspoken text
goes back to its keys within the TTL plus one beat. Storage calls block (a database round trip): they run on a
worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from stream.core.errors import RateLimited, ServerShuttingDown
from stream.core.limits import Limits
from stream.storage import LEASE_TTL_S, CreditHolds, Hold, SessionLeases, StorageUnavailable

log = logging.getLogger("voicewire.sessions")
DRAIN_POLL_S = 0.05    # how often a drain looks for sessions whose turns have finished


class _Caller(Protocol):
    key_id: str


class _Session(Protocol):
    id: str
    caller: _Caller | None   # the authenticated caller, None on an open server

    @property
    def busy(self) -> bool:
        """Whether a turn (an open context) is in progress."""

    async def shutdown(self) -> None: ...


class SessionRegistry:
    def __init__(self, limits: Limits, leases: SessionLeases, holds: CreditHolds, replica: str,
                 ttl_s: float = LEASE_TTL_S) -> None:
        if not ttl_s > 0:
            raise ValueError(f"lease_ttl_s: must be > 0 seconds, got {ttl_s}")
        self.limits = limits
        self.leases = leases
        self.holds = holds
        self.replica = replica
        self.ttl_s = ttl_s
        self.renew_every_s = ttl_s / 3
        self.live: set[_Session] = set()
        self.draining = False
        self._unreleased: set[str] = set()   # leases and holds whose release failed (database down): the heartbeat retries
        self._heartbeat: asyncio.Task | None = None
        self._drain: asyncio.Task | None = None

    async def admit(self, session: _Session) -> None:
        """Count `session` in, or raise: `ServerShuttingDown` while draining, `RateLimited` over a limit,
        `StorageUnavailable` when the key's lease cannot be taken."""
        if self.draining:
            raise ServerShuttingDown("server: this replica is draining; reconnect (another replica will answer)")
        if len(self.live) >= self.limits.max_sessions:
            raise RateLimited(f"server: at most {self.limits.max_sessions} sessions; try again later")
        self.live.add(session)   # before the lease's round trip, so concurrent admits see the server-wide count
        if session.caller is None:
            return
        limit = self.limits.max_sessions_per_key
        try:
            taken = await asyncio.to_thread(self.leases.acquire, session.caller.key_id, session.id,
                                            self.replica, limit, self.ttl_s)
        except BaseException:
            self.live.discard(session)
            raise
        if not taken:
            self.live.discard(session)
            raise RateLimited(f"x-api-key: at most {limit} sessions per key (counted on every replica)")
        self.start_heartbeat()

    async def release(self, session: _Session) -> None:
        if session not in self.live:
            return
        self.live.discard(session)
        if session.caller is None:
            return
        self._unreleased.add(session.id)
        try:
            await asyncio.to_thread(self._release, session.id)
        except StorageUnavailable as exc:
            log.warning("session %s: lease and credit hold not released (%s); the heartbeat retries", session.id, exc)
        else:
            self._unreleased.discard(session.id)

    def _release(self, session_id: str) -> None:
        """The session closed: its lease ends, and what its hold still counts as pending was spoken."""
        self.leases.release(session_id)
        self.holds.release(session_id)

    def hold(self, session_id: str) -> Hold:
        """What a charge for this session's text records: pending until spoken, renewed by this replica."""
        return Hold(session_id, self.replica, self.ttl_s)

    async def settle(self, session_id: str, characters: int) -> None:
        """`characters` of the session's text were spoken: they stay charged even if this replica dies."""
        try:
            await asyncio.to_thread(self.holds.settle, session_id, characters)
        except StorageUnavailable as exc:   # still pending: charged at close, returned if this replica dies first
            log.warning("session %s: %d spoken characters not settled (%s)", session_id, characters, exc)

    def active_sessions(self) -> int:
        """Open sessions on this replica (the autoscaler's per-replica load)."""
        return len(self.live)

    async def drain(self, deadline_s: float) -> None:
        """Stop admitting; close each session with `shutting_down` once its turns have finished, and
        every session still busy after `deadline_s`; sessions are told at once, not one after another,
        so one stalled client cannot hold up the rest. A second call waits for the first drain."""
        if self._drain is None:
            self.draining = True
            self._drain = asyncio.create_task(self._run_drain(deadline_s))
        await asyncio.shield(self._drain)

    async def _run_drain(self, deadline_s: float) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + max(0.0, deadline_s)
        closing: dict[_Session, asyncio.Task] = {}
        while True:
            late = loop.time() >= until
            for session in list(self.live):
                if session not in closing and (late or not session.busy):
                    closing[session] = asyncio.create_task(session.shutdown())
            if late or not self.live.difference(closing):
                break
            await asyncio.sleep(DRAIN_POLL_S)
        if busy := sum(1 for s in closing if s.busy):
            log.info("drain: %d session(s) still mid-turn after %g s; closing them", busy, deadline_s)
        await asyncio.gather(*closing.values(), return_exceptions=True)

    def start_heartbeat(self) -> None:
        """Renew leases and holds, and sweep expired holds, from now on (at start, and on the first keyed session)."""
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(self._renew_forever(), name=f"leases-{self.replica}")

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.renew_every_s)
            try:
                for session_id in list(self._unreleased):
                    await asyncio.to_thread(self._release, session_id)
                    self._unreleased.discard(session_id)
                await asyncio.to_thread(self.leases.renew, self.replica, self.ttl_s)
                await asyncio.to_thread(self.holds.renew, self.replica, self.ttl_s)
                swept = await asyncio.to_thread(self.holds.sweep)
            except Exception as exc:  # the database is down or busy: the next beat tries again
                log.warning("session leases and credit holds not renewed (%s); they expire %g s after the "
                            "last renewal", exc, self.ttl_s)
                continue
            if swept:
                log.info("credit holds: %d characters of %d expired session(s) (a replica stopped) returned "
                         "to their keys", sum(h.characters for h in swept), len(swept))

    def stop_heartbeat(self) -> None:
        """Stop renewing (at close; a test uses it to play a replica that died)."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
