"""Liveness and readiness: what `/livez` and `/readyz` answer, for Kubernetes probes and Ray Serve.

Live: the process answers. Ready: it should get new sessions now: the engine is loaded (the port
opens only after the engine loaded and warmed up, so a server that answers has one), the database
answers a cheap query within `PROBE_TIMEOUT_S`, and the replica is not draining. Probes come often
and from several checkers, so the database answer is reused for `PROBE_CACHE_S`, and a query that
hangs is not started again while it runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from pydantic import BaseModel

from stream.storage import Storage

log = logging.getLogger("voicewire.health")
PROBE_TIMEOUT_S = 1.0
PROBE_CACHE_S = 1.0


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str        # "ok", or why not (the database's redacted URL at most, never a password)


class DatabaseProbe:
    """Whether the database answers, asked at most once per `cache_s`."""

    def __init__(self, storage: Storage, timeout_s: float = PROBE_TIMEOUT_S, cache_s: float = PROBE_CACHE_S) -> None:
        self._storage = storage
        self._timeout_s = timeout_s
        self.cache_s = cache_s
        self._last: tuple[float, ProbeResult] | None = None
        self._query: asyncio.Future | None = None

    async def check(self) -> ProbeResult:
        now = time.monotonic()
        if self._last is not None and now - self._last[0] < self.cache_s:
            return self._last[1]
        if self._query is None or self._query.done():
            self._query = asyncio.ensure_future(asyncio.to_thread(self._storage.keys.has_keys))
        try:
            await asyncio.wait_for(asyncio.shield(self._query), self._timeout_s)
            result = ProbeResult(True, "ok")
        except asyncio.TimeoutError:
            result = ProbeResult(False, f"no answer within {self._timeout_s:g} s")
        except Exception as exc:   # StorageUnavailable, or a driver error a backend did not wrap
            result = ProbeResult(False, f"unreachable: {exc}")
        if not result.ok:
            log.warning("readiness: database %s", result.detail)
        self._last = (time.monotonic(), result)
        return result


class Readiness(BaseModel):
    """The `/readyz` body: `ready`, and each check's outcome; `failed` names the checks that failed."""

    ready: bool
    replica: str
    checks: dict[str, str]
    failed: list[str]
