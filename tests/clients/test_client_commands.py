"""`voicewire say` and `chat` as a user runs them: finding the server from what the user has at hand,
and one clear line (never a traceback) for every way of not reaching it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import free_port

VOICEWIRE = [sys.executable, "-m", "stream.cli"]


def voicewire(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("VOICEWIRE_URL", "VOICEWIRE_API_KEY")}
    return subprocess.run([*VOICEWIRE, *args], capture_output=True, text=True, timeout=60,
                          env={**environ, **(env or {})})


def one_line(done: subprocess.CompletedProcess) -> str:
    """The failure as the user sees it: exit status 1 and exactly one line on stderr."""
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    return done.stderr


def test_say_finds_the_stream_from_a_base_url_host_and_port_or_the_environment(server, tmp_path):
    for args, env in [(["--url", f"{server.http_url}/"], None),
                      (["--host", "127.0.0.1", "--port", str(server.port)], None),
                      ([], {"VOICEWIRE_URL": server.http_url})]:
        done = voicewire("say", "Hi.", *args, "-o", str(tmp_path / "hi.wav"), env=env)
        assert done.returncode == 0, (args, env, done.stderr)
        assert "client TTFA" in done.stderr


def test_say_help_lists_every_generation_flag_with_its_range_and_default():
    out = voicewire("say", "--help").stdout
    for flag, rule in [("--exaggeration", "0-2 (default 0.5)"), ("--temperature", "0-2 (default 0.8)"),
                       ("--cfg-weight", "0-2 (default 0.5)"), ("--min-p", "0-1 (default 0.05)"),
                       ("--top-p", "0-1 (default 1)"), ("--repetition-penalty", "1-2 (default 1.2)"),
                       ("--seed", "(default random)"), ("--speed", "0.25-4 (default 1)"),
                       ("--language", "(default the engine's)")]:
        assert flag in out and rule in " ".join(out.split()), flag


def test_a_wrong_path_names_the_stream_path(server):
    line = one_line(voicewire("say", "hi", "--url", f"ws://127.0.0.1:{server.port}/v2/stream"))
    assert "HTTP 403: no voicewire stream at /v2/stream; the stream is at /v1/stream" in line


def test_a_refused_connection_asks_whether_the_server_runs():
    port = free_port()
    for command in (["say", "hi"], ["chat", "--no-play"]):
        line = one_line(voicewire(*command, "--port", str(port)))
        assert f"connection refused; is `voicewire serve` running on 127.0.0.1:{port}?" in line


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_a_keyed_server_without_the_right_key_says_how_to_pass_one(make_server, key):
    srv = make_server(api_keys=("right-key",))
    args = ["--api-key", key] if key else []
    line = one_line(voicewire("say", "hi", "--url", srv.ws_url, *args))
    assert "--api-key KEY or VOICEWIRE_API_KEY" in line and "right-key" not in line


def test_the_key_from_the_environment_is_used(make_server, tmp_path):
    srv = make_server(api_keys=("right-key",))
    done = voicewire("say", "Hi.", "--url", srv.ws_url, "-o", str(tmp_path / "hi.wav"),
                     env={"VOICEWIRE_API_KEY": "right-key"})
    assert done.returncode == 0, done.stderr


def test_conflicting_server_flags_are_one_line():
    line = one_line(voicewire("say", "hi", "--url", "ws://h:1", "--port", "2"))
    assert "either --url or --host/--port" in line
