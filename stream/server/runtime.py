"""The server's long-lived parts, built once at start and shared by every route and session."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from stream.accounts.auth import Authenticator
from stream.accounts.keys import KeyStore
from stream.engines.base import Engine
from stream.engines.registry import choose_engine, create_engine
from stream.inference.pool import InferencePool
from stream.server.metrics import Metrics
from stream.server.session_registry import SessionRegistry
from stream.settings import Settings
from stream.voices.library import VoiceLibrary
from stream.voices.url_fetch import ClipFetcher

log = logging.getLogger("voicewire")


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    voices: VoiceLibrary
    metrics: Metrics
    pool: InferencePool
    auth: Authenticator
    sessions: SessionRegistry
    fetcher: ClipFetcher
    engine_reason: str = ""

    def close(self) -> None:
        self.pool.shutdown()


def _default_workers(engine: Engine) -> int:
    """One GPU runs one synthesis at a time well; the CPU voice uses the cores."""
    return max(1, min(4, os.cpu_count() or 1)) if engine.name == "piper" else 1


def build_runtime(settings: Settings, engine: Engine | None = None) -> Runtime:
    """Choose and load the engine (unless one is given, as tests do) and wire the shared parts."""
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
        voices=VoiceLibrary(engine, settings),
        metrics=Metrics(),
        pool=InferencePool(settings.workers or _default_workers(engine)),
        auth=Authenticator(settings.api_keys, KeyStore(settings.database_path)),
        sessions=SessionRegistry(settings.limits),
        fetcher=ClipFetcher(settings),
        engine_reason=reason,
    )
