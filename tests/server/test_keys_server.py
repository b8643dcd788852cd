"""Keys and credits on a running server: the `voicewire keys` CLI (a revocation from another process
takes effect within 1 s), `--database-url`, HTTP 401/402, concurrent requests, and websocket turns
(`insufficient_credits` before inference, remaining credits in `done.usage`)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import httpx
import pytest
import websockets

from stream.accounts.keys import create_key
from stream.storage import PROPAGATION_BOUND_S
from tests.wire import RawPeer

VOICEWIRE = [sys.executable, "-m", "stream.server.cli"]


def keys_cli(data_dir, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*VOICEWIRE, "keys", *args, "--data-dir", str(data_dir)], capture_output=True,
                          text=True, timeout=60)


def refused_within_bound(attempt) -> float:
    """Seconds until `attempt()` (a request with a just-revoked key) is refused; fails past the bound."""
    started = time.monotonic()
    while not attempt():
        assert time.monotonic() - started < PROPAGATION_BOUND_S, "the revoked key was still accepted after 1 s"
        time.sleep(0.02)
    return time.monotonic() - started


def inference_jobs(srv) -> float:
    """Phrases the engine has started on (the engine first-chunk histogram's count)."""
    return sum(s.value for m in srv.runtime.metrics.engine_first_chunk.collect() for s in m.samples
               if s.name.endswith("_count"))


def test_cli_key_lifecycle_against_a_running_server(make_server, tmp_path):
    srv = make_server()
    data_dir = srv.runtime.settings.data_dir
    url = srv.http_url + "/v1/chatterbox-tts"
    assert httpx.post(url, json={"text": "Open server."}, timeout=60).status_code == 200
    assert "no keys" in keys_cli(data_dir, "list").stderr

    created = keys_cli(data_dir, "create", "--name", "ci", "--credits", "40")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    key_id = created.stderr.split()[1]
    assert secret.startswith("vw_") and key_id.startswith("key_") and "shown only now" in created.stderr

    # the running server picked the new key up: it is closed now
    assert httpx.post(url, json={"text": "No key."}).status_code == 401
    ok = httpx.post(url, json={"text": "Twelve chars"}, headers={"x-api-key": secret}, timeout=60)
    assert ok.status_code == 200 and ok.headers["x-remaining-credits"] == "28"

    listed = json.loads(keys_cli(data_dir, "list", "--json").stdout)
    assert listed == [{**listed[0], "id": key_id, "name": "ci", "credits": 28, "characters_used": 12,
                       "revoked_at": None}]
    assert secret not in keys_cli(data_dir, "list").stdout

    added = keys_cli(data_dir, "add-credits", key_id, "100")
    assert added.returncode == 0 and "128 credits" in added.stdout
    assert keys_cli(data_dir, "revoke", key_id).returncode == 0     # another process; the server cached the key
    refused_within_bound(lambda: httpx.post(url, json={"text": "x"}, headers={"x-api-key": secret}).status_code == 401)
    refused = httpx.post(url, json={"text": "Revoked."}, headers={"x-api-key": secret})
    assert refused.status_code == 401 and refused.json()["message"] == "x-api-key: invalid or revoked API key"
    again = keys_cli(data_dir, "revoke", key_id)
    assert again.returncode == 1 and "already revoked" in again.stderr
    assert keys_cli(data_dir, "add-credits", "key_nope", "1").returncode == 1
    unlimited = keys_cli(data_dir, "create", "--json")
    record = json.loads(unlimited.stdout)
    assert record["credits"] is None and record["key"].startswith("vw_")
    assert "unlimited" in keys_cli(data_dir, "add-credits", record["id"], "5").stderr


def test_exhausted_key_gets_402_before_any_inference(make_server):
    srv = make_server()
    store = srv.runtime.storage.keys
    _, secret = create_key(store, credits=5)
    before = inference_jobs(srv)
    for path, body in (("/v1/chatterbox-tts", {"text": "Too long for five."}),
                       ("/v1/audio/speech", {"model": "tts-1", "voice": "alloy", "input": "Too long for five."})):
        r = httpx.post(srv.http_url + path, json=body, headers={"x-api-key": secret})
        assert r.status_code == 402
    assert inference_jobs(srv) == before
    assert store.list()[0].credits == 5


async def test_concurrent_http_requests_never_overdraw(make_server):
    srv = make_server()
    store = srv.runtime.storage.keys
    key, secret = create_key(store, credits=4 * len("Four words right here."))
    async with httpx.AsyncClient(timeout=120, headers={"authorization": f"Bearer {secret}"}) as client:
        replies = await asyncio.gather(*(
            client.post(srv.http_url + "/v1/audio/speech",
                        json={"model": "tts-1", "voice": "alloy", "input": "Four words right here.",
                              "response_format": "pcm"})
            for _ in range(10)))
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200] * 4 + [402] * 6
    remaining = sorted(int(r.headers["x-remaining-credits"]) for r in replies if r.status_code == 200)
    assert remaining == [0, 22, 44, 66]
    assert store.get(key.id).credits == 0 and store.get(key.id).characters_used == 88


async def test_websocket_turns_are_metered(make_server):
    srv = make_server()
    store = srv.runtime.storage.keys
    key, secret = create_key(store, credits=30)
    before = inference_jobs(srv)
    peer, ready = await RawPeer.open(srv.ws_url, additional_headers={"x-api-key": secret})
    assert ready["type"] == "ready"
    await peer.send({"type": "text", "context_id": "big", "text": "x" * 31})
    err = await peer.error()
    assert (err["code"], err["context_id"], err["fatal"]) == ("insufficient_credits", "big", False)
    assert "needs 31 credits" in err["message"] and inference_jobs(srv) == before

    await peer.send({"type": "text", "context_id": "a", "text": "Hello there. "})
    await peer.send({"type": "text", "context_id": "a", "text": "General Kenobi."})
    await peer.send({"type": "end", "context_id": "a"})
    done, _ = await peer.until("done", "a")
    assert done["usage"] == {"characters": 28, "remaining_credits": 2}
    await peer.send({"type": "text", "context_id": "b", "text": "No."})
    err = await peer.error()
    assert err["code"] == "insufficient_credits" and err["context_id"] == "b"
    await peer.close()
    assert store.get(key.id).credits == 2

    store.add_credits(key.id, 200)
    peer, _ = await RawPeer.open(srv.ws_url + f"?api_key={secret}")
    await peer.send({"type": "text", "context_id": "c", "text": "This turn is cut short by a barge-in. " * 3})
    await peer.until("audio", "c")
    await peer.send({"type": "cancel", "context_id": "c"})
    cancelled, _ = await peer.until("cancelled", "c")
    await peer.close()
    # text that was never spoken is given back: the turn costs what was spoken
    assert cancelled["text_remaining"] and store.get(key.id).credits == 202 - len(cancelled["text_spoken"])

    store.revoke(key.id)
    peer, err = await RawPeer.open(srv.ws_url, additional_headers={"x-api-key": secret})
    assert err["code"] == "unauthorized"
    with pytest.raises(websockets.ConnectionClosed):
        await peer.recv()


def test_a_caller_who_hangs_up_before_the_answer_is_not_billed(make_server):
    srv = make_server()
    store = srv.runtime.storage.keys
    key, secret = create_key(store, credits=10_000)
    long_text = "This is a long narration that takes a while to synthesize completely. " * 30
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(srv.http_url + "/v1/chatterbox-tts", json={"text": long_text}, headers={"x-api-key": secret},
                   timeout=httpx.Timeout(60, read=0.5))
    deadline = time.monotonic() + 20
    while 'status="499"' not in httpx.get(srv.http_url + "/metrics").text:
        assert time.monotonic() < deadline, "the server did not notice the hang-up"
        time.sleep(0.1)
    assert store.get(key.id).credits == 10_000


def test_serve_and_keys_honour_the_database_url(make_server, tmp_path):
    path = tmp_path / "elsewhere" / "accounts.sqlite3"
    srv = make_server(database_url=f"sqlite://{path}")
    url = srv.http_url + "/v1/chatterbox-tts"
    created = subprocess.run([*VOICEWIRE, "keys", "create", "--database-url", f"sqlite://{path}"],
                             capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    assert httpx.post(url, json={"text": "No key."}).status_code == 401
    assert httpx.post(url, json={"text": "Key."}, headers={"x-api-key": created.stdout.strip()},
                      timeout=60).status_code == 200
    assert path.exists() and not srv.runtime.settings.database_path.exists()
    env_listed = subprocess.run([*VOICEWIRE, "keys", "list", "--json"], capture_output=True, text=True, timeout=60,
                                env={**os.environ, "VOICEWIRE_DATABASE_URL": f"sqlite://{path}"})
    assert len(json.loads(env_listed.stdout)) == 1


@pytest.mark.parametrize("command", [["serve", "--engine", "piper", "--port", "1"], ["keys", "list"]])
def test_a_bad_database_url_stops_the_command_naming_the_rule_not_the_password(command):
    for args, env in ((["--database-url=postgresql://app:hunter2@127.0.0.1:1/vw"], {}),
                      ([], {"VOICEWIRE_DATABASE_URL": "mysql://app:hunter2@db/vw"})):
        result = subprocess.run([*VOICEWIRE, *command, *args], capture_output=True, text=True, timeout=60,
                                env={**os.environ, **env})
        assert result.returncode == 2
        assert "database_url: " in result.stderr and "hunter2" not in result.stderr + result.stdout
        assert ("cannot use postgresql://***@127.0.0.1:1/vw" if args else "unsupported scheme 'mysql'") in result.stderr


def test_usage_command_reports_characters_per_day(make_server):
    srv = make_server()
    data_dir = srv.runtime.settings.data_dir
    key, secret = create_key(srv.runtime.storage.keys, credits=100)
    assert httpx.post(srv.http_url + "/v1/chatterbox-tts", json={"text": "Twelve chars"},
                      headers={"x-api-key": secret}, timeout=60).status_code == 200
    [day] = json.loads(keys_cli(data_dir, "usage", key.id, "--json").stdout)
    assert (day["charged"], day["refunded"], day["characters"]) == (12, 0, 12)
    assert "12 characters" in keys_cli(data_dir, "usage", key.id).stdout
    assert keys_cli(data_dir, "usage", "key_nope").returncode == 1
    assert keys_cli(data_dir, "usage", key.id, "--since", "yesterday").returncode == 2
