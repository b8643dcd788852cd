"""The server's long-lived parts, built once at start and shared by every route and session."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from stream.accounts.auth import Authenticator
from stream.engines.base import Engine
from stream.engines.registry import choose_engine, create_engine
from stream.inference.executor import Executor
from stream.server.health import DatabaseProbe, Readiness
from stream.server.metrics import Metrics
from stream.server.replica import replica_name
from stream.server.session_registry import SessionRegistry
from stream.settings import Settings
from stream.storage import Storage, open_storage
from stream.voices.library import VoiceLibrary
from stream.voices.url_fetch import ClipFetcher

log = logging.getLogger("voicewire")


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    voices: VoiceLibrary
    metrics: Metrics
    executor: Executor          # the engine's: `open_stream(runtime.executor, request, ...)` runs a phrase
    auth: Authenticator
    sessions: SessionRegistry
    fetcher: ClipFetcher
    storage: Storage            # keys, voices, usage; `--database-url`
    replica: str                # this process's name (`--replica-name`)
    database: DatabaseProbe     # readiness's database check
    engine_reason: str = ""

    def active_sessions(self) -> int:
        """Open websocket sessions on this replica, read in-process (Ray Serve's autoscaling metric)."""
        return self.sessions.active_sessions()

    @property
    def draining(self) -> bool:
        return self.sessions.draining

    async def drain(self, deadline_s: float | None = None) -> None:
        """Stop taking sessions and HTTP requests (readiness fails at once), let open turns finish up to
        `deadline_s` (default `--drain-timeout`), then close every session with `shutting_down`.
        SIGTERM and the app's shutdown call it; a host (the Ray deployment) may call it first."""
        self.metrics.draining.set(1)
        await self.sessions.drain(self.settings.drain_timeout_s if deadline_s is None else deadline_s)

    async def readiness(self) -> Readiness:
        """What `/readyz` answers: ready only with the engine loaded, the database answering and no drain."""
        database = await self.database.check()
        checks = {"engine": f"ok: {self.engine.name}", "database": database.detail,
                  "draining": "yes" if self.draining else "no"}
        failed = [name for name, bad in (("database", not database.ok), ("draining", self.draining)) if bad]
        return Readiness(ready=not failed, replica=self.replica, checks=checks, failed=failed)

    def close(self) -> None:
        self.sessions.stop_heartbeat()
        self.executor.shutdown()
        self.storage.close()


def build_runtime(settings: Settings, engine: Engine | None = None) -> Runtime:
    """Choose and load the engine (unless one is given, as tests do) and wire the shared parts."""
    storage = open_storage(settings.database_url, settings.database_path)  # a bad URL fails before the model loads
    log.info("storage: %s", storage.url.redacted)
    replica = replica_name(settings)
    reason = "given by the caller"
    if engine is None:
        name, reason = choose_engine(settings)
        log.info("engine: %s (%s)", name, reason)
        engine = create_engine(name, settings)
        engine.load()
        engine.warmup()
    metrics = Metrics()
    metrics.replica_info.labels(replica=replica).set(1)
    executor = engine.create_executor(settings.workers or engine.default_workers)
    executor.observe(metrics.engine_observer())
    return Runtime(
        settings=settings,
        engine=engine,
        voices=VoiceLibrary(engine, settings, storage),
        metrics=metrics,
        executor=executor,
        auth=Authenticator(settings.api_keys, storage),
        sessions=SessionRegistry(settings.limits, storage.leases, storage.holds, replica, settings.lease_ttl_s),
        fetcher=ClipFetcher(settings),
        storage=storage,
        replica=replica,
        database=DatabaseProbe(storage),
        engine_reason=reason,
    )
