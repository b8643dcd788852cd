"""The server's long-lived parts, built once at start and shared by every route and session."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from stream.accounts.auth import Authenticator
from stream.engines.base import Engine
from stream.engines.registry import choose_engine, create_engine
from stream.inference.executor import Executor
from stream.server.metrics import Metrics
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
    engine_reason: str = ""

    def close(self) -> None:
        self.executor.shutdown()
        self.storage.close()


def build_runtime(settings: Settings, engine: Engine | None = None) -> Runtime:
    """Choose and load the engine (unless one is given, as tests do) and wire the shared parts."""
    storage = open_storage(settings.database_url, settings.database_path)  # a bad URL fails before the model loads
    log.info("storage: %s", storage.url.redacted)
    reason = "given by the caller"
    if engine is None:
        name, reason = choose_engine(settings)
        log.info("engine: %s (%s)", name, reason)
        engine = create_engine(name, settings)
        engine.load()
        engine.warmup()
    return Runtime(
        settings=settings,
        engine=engine,
        voices=VoiceLibrary(engine, settings, storage),
        metrics=Metrics(),
        executor=engine.create_executor(settings.workers or engine.default_workers),
        auth=Authenticator(settings.api_keys, storage),
        sessions=SessionRegistry(settings.limits),
        fetcher=ClipFetcher(settings),
        storage=storage,
        engine_reason=reason,
    )
