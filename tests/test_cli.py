"""The `voicewire` command as a user runs it: `serve` in a real process, `say` against it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import soundfile

from tests.conftest import free_port
from tests.hostile_corpus import upgrade_request

VOICEWIRE = [sys.executable, "-m", "stream.cli"]


@pytest.fixture
def served(tmp_path):
    port = free_port()
    log = open(tmp_path / "serve.log", "w+")
    proc = subprocess.Popen([*VOICEWIRE, "serve", "--engine", "auto", "--port", str(port),
                             "--data-dir", str(tmp_path / "data")], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            pytest.fail(f"server did not start:\n{log.read()}")
        time.sleep(0.2)
    yield port, proc, Path(log.name)
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_serve_auto_picks_piper_and_says_why_and_say_writes_a_wav(served, tmp_path):
    port, proc, log = served
    assert "engine: piper (auto:" in log.read_text()
    out = tmp_path / "reply.wav"
    done = subprocess.run(
        [*VOICEWIRE, "say", "Hello from the command line. This reply streams at thirty tokens a second.",
         "--url", f"ws://127.0.0.1:{port}/v1/stream", "--tokens-per-second", "30", "-o", str(out)],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "client TTFA" in done.stderr and "server TTFA" in done.stderr
    audio, rate = soundfile.read(out)
    assert rate == 22050 and 2.0 < audio.size / rate < 12.0
    proc.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status reports it
    assert proc.wait(timeout=15) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in log.read_text()


def test_serve_refuses_an_upgrade_request_with_a_100k_header_line(served):
    port, _, _ = served  # `serve` runs uvicorn with stream.server.ws_protocol, which answers what the parser refuses
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(upgrade_request(extra="X-Big: " + "a" * 100_000 + "\r\n"))
        assert sock.recv(64).startswith(b"HTTP/1.1 431")


def test_say_reports_an_unreachable_server(tmp_path):
    done = subprocess.run([*VOICEWIRE, "say", "hi", "--url", f"ws://127.0.0.1:{free_port()}/v1/stream"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "cannot reach" in done.stderr


def test_serve_refuses_an_unknown_engine():
    done = subprocess.run([*VOICEWIRE, "serve", "--engine", "nonsense"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_help_lists_every_command_and_only_the_chosen_client_command_is_imported():
    done = subprocess.run([*VOICEWIRE, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and all(name in done.stdout for name in ("serve", "keys", "say", "chat"))
    probe = ("import sys; from stream.cli import build_parser; build_parser({!r}).parse_known_args({!r}); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('clients', 'agent_adapters')))")
    serve = subprocess.run([sys.executable, "-c", probe.format("serve", ["serve"])], capture_output=True,
                           text=True, timeout=60)
    assert serve.stdout.strip() == "[]", serve.stderr  # the server never loads client code
    say = subprocess.run([sys.executable, "-c", probe.format("say", ["say", "hi"])], capture_output=True,
                         text=True, timeout=60)
    assert "'clients.say'" in say.stdout and "'agent_adapters.chat'" not in say.stdout, say.stderr


def test_version_is_the_installed_distributions():
    from importlib.metadata import version

    done = subprocess.run([*VOICEWIRE, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"voicewire {version('voicewire')}"


def test_serve_help_names_the_environment_variable_of_every_flag():
    import argparse
    import re
    from dataclasses import fields

    from stream.cli import build_parser
    from stream.server.cli import RAY_FLAGS
    from stream.settings import Settings

    done = subprocess.run([*VOICEWIRE, "serve", "--help"], capture_output=True, text=True, timeout=60)
    shown = " ".join(done.stdout.split())  # argparse wraps help lines
    assert "(env VOICEWIRE_PORT)" in shown and "(env VOICEWIRE_API_KEYS, comma-separated)" in shown
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    variables = {f"VOICEWIRE_{f.name.upper()}" for f in fields(Settings)}
    for action in sub.choices["serve"]._actions:
        if action.dest not in ("help", *RAY_FLAGS):
            named = re.search(r"\(env (VOICEWIRE_[A-Z_]+)", action.help or "")
            assert named and named.group(1) in variables, action.option_strings  # a variable from_env reads
