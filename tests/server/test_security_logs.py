"""API keys never reach the logs of `voicewire serve`, whatever form clients send them in.

A real server process (uvicorn, access log on, as `voicewire serve` runs it) with a key created by
`voicewire keys create`; clients send that key in every form (the query on the websocket and on the
page's URL, `x-api-key`, `Authorization: Bearer`, a key inside a message), right and wrong, with
requests that fail. Then stdout, stderr, every log file and the metrics are searched for each key:
zero hits, while the redacted access lines still show method, path and status.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets

from tests.conftest import free_port

pytestmark = pytest.mark.slow
WRONG = "vw_" + "WrongKeyThatLooksReal" * 2     # a typo of a real key is as secret as the key
WRONG_PLAIN = "not-a-key-but-a-password-1"       # not shaped like a key: caught by where it was sent


@dataclass
class ServeProcess:
    process: subprocess.Popen
    port: int
    data_dir: Path
    key: str

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/stream"


def _voicewire(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stream.server.cli", *args], capture_output=True, text=True,
                          check=True, timeout=120, **kwargs)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServeProcess]:
    data_dir = tmp_path / "data"
    key = _voicewire("keys", "create", "--data-dir", str(data_dir)).stdout.strip()
    port = free_port()
    env = {**os.environ, "VOICEWIRE_LOG_LEVEL": "info"}
    with open(tmp_path / "stdout", "w") as out, open(tmp_path / "stderr", "w") as err:
        process = subprocess.Popen([sys.executable, "-m", "stream.server.cli", "serve", "--engine", "piper",
                                    "--port", str(port), "--data-dir", str(data_dir)],
                                   stdout=out, stderr=err, env=env, cwd=tmp_path)
    served = ServeProcess(process, port, data_dir, key)
    deadline = time.monotonic() + 180
    while True:
        assert process.poll() is None, (tmp_path / "stderr").read_text()
        try:
            if httpx.get(served.http + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "voicewire serve did not start"
        time.sleep(0.2)
    yield served
    if process.poll() is None:
        process.kill()
        process.wait()


async def _websocket_sessions(served: ServeProcess) -> None:
    key = served.key
    async with websockets.connect(f"{served.ws}?api_key={key}") as ws:   # the browser page's form
        assert json.loads(await ws.recv())["type"] == "ready"
        await ws.send("{not json")
        assert json.loads(await ws.recv())["code"] == "invalid_json"
        await ws.send(json.dumps({"type": "init", "api_key": key}))   # a key inside a message
        await ws.recv()
    async with websockets.connect(served.ws, additional_headers={"x-api-key": key}) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
    for headers, query in (({"authorization": f"Bearer {key}"}, ""), ({}, f"?api_key={WRONG}"),
                           ({"x-api-key": WRONG_PLAIN}, ""), ({"authorization": f"Bearer {WRONG}"}, "")):
        async with websockets.connect(served.ws + query, additional_headers=headers) as ws:
            await ws.recv()   # ready, or the unauthorized error


def _http_requests(served: ServeProcess) -> None:
    key, http = served.key, served.http
    expected = [
        (httpx.get(f"{http}/?api_key={key}"), 200),                                   # the page's URL
        (httpx.get(f"{http}/healthz?api%5Fkey={key}"), 200),                          # name percent-encoded
        (httpx.get(f"{http}/v1/voices?api_key={key}"), 200),
        (httpx.get(f"{http}/v1/voices", headers={"x-api-key": key}), 200),
        (httpx.get(f"{http}/v1/voices", headers={"authorization": f"Bearer {key}"}), 200),
        (httpx.get(f"{http}/v1/voices", headers={"authorization": f"Bearer {WRONG}"}), 401),
        (httpx.get(f"{http}/v1/voices?api_key={WRONG_PLAIN}"), 401),
        (httpx.post(f"{http}/v1/chatterbox-tts", content=b"{not json",
                    headers={"x-api-key": key, "content-type": "application/json"}), 400),
        (httpx.post(f"{http}/v1/audio/speech?api_key={key}", timeout=120,
                    json={"model": "tts-1", "input": "Hi.", "voice": "alloy", "response_format": "pcm"}), 200),
        (httpx.get(f"{http}/nothing/here?api_key={key}"), 404),
        (httpx.get(f"{http}/v1/voices?api_key={key}", headers={f"x-h{i}": "a" * 1000 for i in range(100)}), 431),
    ]
    assert [response.status_code for response, _ in expected] == [status for _, status in expected]


def test_no_key_in_any_log_line_or_metric(served: ServeProcess, tmp_path: Path):
    _http_requests(served)
    asyncio.run(_websocket_sessions(served))
    metrics = httpx.get(served.http + "/metrics").text
    served.process.send_signal(signal.SIGINT)
    served.process.wait(timeout=60)

    logs = {path.name: path.read_text() for path in (tmp_path / "stdout", tmp_path / "stderr")}
    logs |= {str(path): path.read_text(errors="replace") for path in tmp_path.rglob("*.log")}
    for secret in (served.key, WRONG, WRONG_PLAIN):
        assert [name for name, text in logs.items() if secret in text] == []
        assert secret not in metrics

    access, errors = logs["stdout"], logs["stderr"]
    for line in ('"GET /?api_key=*** HTTP/1.1" 200', '"GET /healthz?api%5Fkey=*** HTTP/1.1" 200',
                 '"GET /v1/voices?api_key=*** HTTP/1.1" 401', '"GET /v1/voices HTTP/1.1" 401',
                 '"POST /v1/chatterbox-tts HTTP/1.1" 400', '"POST /v1/audio/speech?api_key=*** HTTP/1.1" 200',
                 '"GET /nothing/here?api_key=*** HTTP/1.1" 404'):
        assert line in access, access
    assert '"WebSocket /v1/stream?api_key=***" [accepted]' in errors, errors
    assert "request refused with 431" in errors
    # Item 7 of issue 16: the start-up lines name the page and say that the created key turned auth on.
    assert f"browser page: http://127.0.0.1:{served.port}/" in errors
    assert "API keys are now required, the key database holds keys" in errors


def test_a_database_url_password_never_reaches_the_log(tmp_path: Path):
    """A URL the server refuses at start is named in its error line, with the password masked."""
    password = "Sup3r-Secret-Db-Password"
    env = {**os.environ, "VOICEWIRE_DATABASE_URL": f"postgresql://voicewire:{password}@127.0.0.1:1/voicewire"}
    run = subprocess.run([sys.executable, "-m", "stream.server.cli", "serve", "--engine", "piper", "--port", "0",
                          "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=180, env=env)
    assert run.returncode != 0 and "postgresql://" in run.stderr
    assert password not in run.stdout + run.stderr
