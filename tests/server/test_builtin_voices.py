"""Built-in voices end to end on a real Piper server: `GET /v1/voices` lists `joe` (built in, not
deletable), `voicewire voices` prints it from the running server, and `--voice joe` speaks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import soundfile as sf

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def voicewire(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stream.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)


def test_the_voice_list_starts_with_the_engines_builtin_voice(server):
    voices = httpx.get(f"{server.http_url}/v1/voices").json()["voices"]
    assert voices == [{"id": "joe", "name": "en_US-joe-medium", "builtin": True,
                       "description": server.runtime.engine.builtin_voices[0].description}]
    r = httpx.delete(f"{server.http_url}/v1/voices/joe")
    assert r.status_code == 422 and r.json()["code"] == "unsupported" and "built into the piper engine" in r.text
    assert httpx.get(f"{server.http_url}/v1/voices").json()["voices"] == voices


def test_voices_command_lists_the_running_servers_voices(server):
    listed = voicewire("voices", "--url", server.http_url)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("joe\ten_US-joe-medium\tbuilt-in\tUS English")
    as_json = voicewire("voices", "--port", str(server.port), "--json")
    assert as_json.returncode == 0 and '"builtin":true' in as_json.stdout.replace(" ", "")


def test_voices_command_with_keys_and_without_a_server(make_server):
    keyed = make_server(api_keys=("k-voices",))
    refused = voicewire("voices", "--url", keyed.http_url)
    assert refused.returncode == 1 and "HTTP 401" in refused.stderr and "--api-key" in refused.stderr
    assert voicewire("voices", "--url", keyed.http_url, "--api-key", "k-voices").stdout.startswith("joe\t")
    nobody = voicewire("voices", "--port", str(free_port()))
    assert nobody.returncode == 1 and "cannot reach" in nobody.stderr and len(nobody.stderr.splitlines()) == 1


def test_say_speaks_with_the_builtin_voice(server, tmp_path):
    out = tmp_path / "joe.wav"
    said = voicewire("say", "Hello from Joe.", "--voice", "joe", "--url", server.ws_url, "-o", str(out))
    assert said.returncode == 0, said.stderr
    audio, rate = sf.read(out)
    assert rate == server.runtime.engine.sample_rate and len(audio) > 0.5 * rate
