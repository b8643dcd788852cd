"""`voicewire serve --ray`: starts a Ray cluster on this machine, deploys, stops on SIGTERM.

This module sorts first in tests/cluster, so the command's own Ray cluster runs before the test
session's shared one starts (both would work at once, but two clusters on two cores are slow)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import httpx
import pytest

from tests.conftest import free_port

pytest.importorskip("ray.serve", reason="the cluster extra (ray[serve]) is not installed")
pytestmark = pytest.mark.slow


def test_voicewire_serve_ray_starts_a_cluster_deploys_replicas_and_stops_on_sigterm(tmp_path):
    """`voicewire serve --ray --replicas 2`, as an operator runs it."""
    port = free_port()
    log = (tmp_path / "serve.log").open("w+")
    server = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "serve", "--ray", "--replicas", "2", "--engine", "piper",
         "--workers", "1", "--port", str(port), "--data-dir", str(tmp_path),
         "--database-url", f"sqlite:///{tmp_path / 'voicewire.sqlite3'}"],
        stdout=log, stderr=subprocess.STDOUT, env=os.environ | {"RAY_USAGE_STATS_ENABLED": "0"})
    try:
        names = asyncio.run(_replica_names(f"http://127.0.0.1:{port}", server, want=2))
        assert len(names) == 2
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=120) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    log.seek(0)
    assert "websocket: ws://127.0.0.1:" in log.read()


async def _replica_names(url: str, server: subprocess.Popen, want: int) -> set[str]:
    """The replica names /healthz reports through the proxy, once `want` distinct ones answered."""
    names: set[str] = set()
    async with httpx.AsyncClient(base_url=url, timeout=10) as client, asyncio.timeout(240):
        while len(names) < want:
            assert server.poll() is None, "voicewire serve --ray exited"
            try:
                answer = await client.get("/healthz")
                if answer.status_code == 200:
                    names.add(answer.json()["replica"])
                    continue
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.5)
    return names
