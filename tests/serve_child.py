"""A real `voicewire serve` process (piper, 127.0.0.1) for what only a process shows: SIGKILL, SIGTERM,
leases and holds left behind. Its stderr is printed when it ends, which pytest shows only when the
test fails."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import LocalUrls, free_port
from tests.wire import RawPeer


@dataclass
class ServeChild(LocalUrls):
    process: subprocess.Popen
    port: int
    log: str = ""   # its stderr, once it has ended

    async def open(self, timeout_s: float = 90, **kwargs) -> tuple[RawPeer, dict]:
        """A websocket session, once the process listens; fails if it exits or is not up in `timeout_s`."""
        started = time.monotonic()
        while True:
            try:
                return await RawPeer.open(self.ws_url, **kwargs)
            except OSError:
                assert time.monotonic() - started < timeout_s and self.process.poll() is None, "server did not start"
                await asyncio.sleep(0.3)


@contextmanager
def serve_child(workdir: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[ServeChild]:
    """`voicewire serve --engine piper` with its data and log under `workdir`, plus `args` and `env`;
    killed on the way out if still running."""
    port = free_port()
    with open(workdir / "serve.log", "w+") as log:
        process = subprocess.Popen([sys.executable, "-m", "stream.server.cli", "serve", "--engine", "piper",
                                    "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(workdir / "data"),
                                    *args], env={**os.environ, **(env or {})}, stderr=log)
        child = ServeChild(process, port)
        try:
            yield child
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.seek(0)
            child.log = log.read()
            print(child.log)  # shown by pytest only when the test fails
