"""Fixtures: real engines, a real server on a free loopback port, a real websocket client."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import uvicorn

from stream.engines.base import Engine
from stream.server.app import create_app
from stream.server.runtime import Runtime, build_runtime
from stream.server.serving import uvicorn_config
from stream.settings import Limits, Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalUrls:
    """The websocket and HTTP URLs of a server listening on 127.0.0.1:`port`."""

    port: int

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/stream"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class ServerHandle(LocalUrls):
    runtime: Runtime
    port: int
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def start_server(engine: Engine, settings: Settings) -> ServerHandle:
    """Run the real app under uvicorn, with the protocols `voicewire serve` uses, on its own thread and loop."""
    settings.port = settings.port or free_port()
    runtime = build_runtime(settings, engine=engine)
    config = uvicorn_config(create_app(runtime), settings, host="127.0.0.1", log_level="warning",
                            lifespan="on", timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    return ServerHandle(runtime, settings.port, server, thread)


@pytest.fixture(scope="session")
def piper_engine() -> Engine:
    from stream.engines.piper.engine import PiperEngine

    engine = PiperEngine()
    engine.load()
    return engine


@pytest.fixture
def make_server(piper_engine, tmp_path) -> Iterator[Callable[..., ServerHandle]]:
    """Start a server on the piper engine; keyword arguments override Settings or Limits fields."""
    handles: list[ServerHandle] = []

    def make(engine: Engine | None = None, **overrides) -> ServerHandle:
        limits = Limits(**{k: v for k, v in overrides.items() if hasattr(Limits, k)})
        rest = {k: v for k, v in overrides.items() if not hasattr(Limits, k)}
        settings = Settings(port=0, data_dir=str(tmp_path / "data"), limits=limits, **rest)
        handle = start_server(engine or piper_engine, settings)
        handles.append(handle)
        return handle

    yield make
    for handle in handles:
        handle.stop()


@pytest.fixture
def server(make_server) -> ServerHandle:
    return make_server()


@pytest.fixture(scope="session")
def postgres_server():
    """One real PostgreSQL server for the test session (tests/postgres_server.py); skipped, saying
    why, only where the package is not installed."""
    from tests.postgres_server import PostgresServer, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    server = PostgresServer()
    yield server
    server.close()


@pytest.fixture
def postgres_url(postgres_server) -> Iterator[str]:
    """The URL of an empty database of this test's own on the session's server."""
    if not postgres_server.running:   # a fault test that failed midway left it stopped
        postgres_server.start()
    url = postgres_server.fresh_database()
    yield url
    if not postgres_server.running:
        postgres_server.start()
    postgres_server.drop_database(url)
