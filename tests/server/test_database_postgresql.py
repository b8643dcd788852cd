"""A server on a real PostgreSQL: `serve` and `keys` both honour `VOICEWIRE_DATABASE_URL`, a key
created or revoked by the command reaches the server, and stopping the database answers requests
with `storage_unavailable` (503) while the server stays up, until the database returns."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from stream.settings import from_env
from tests.postgres_server import wait_until

VOICEWIRE = [sys.executable, "-m", "stream.server.cli"]
SPEECH = "/v1/audio/speech"
SPEECH_BODY = {"model": "tts-1", "voice": "alloy", "response_format": "wav", "input": "Hello there."}


def keys(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*VOICEWIRE, "keys", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "VOICEWIRE_DATABASE_URL": url})


def test_serve_and_keys_share_a_postgresql_database_and_survive_its_outage(make_server, postgres_server,
                                                                           postgres_url):
    settings = from_env({"VOICEWIRE_DATABASE_URL": postgres_url})     # what `voicewire serve` reads
    srv = make_server(database_url=settings.database_url)
    assert srv.runtime.storage.url.scheme == "postgresql"
    created = keys(postgres_url, "create", "--credits", "1000")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    headers = {"x-api-key": secret}
    with httpx.Client(base_url=srv.http_url, timeout=60) as http:
        assert http.post(SPEECH, json=SPEECH_BODY).status_code == 401     # the new key turned auth on
        assert http.post(SPEECH, json=SPEECH_BODY, headers=headers).status_code == 200

        postgres_server.stop()
        refused = http.post(SPEECH, json=SPEECH_BODY, headers=headers)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "storage_unavailable"
        assert http.get("/livez").status_code == 200
        listed = keys(postgres_url, "list")
        assert listed.returncode == 2 and "postgresql://***@127.0.0.1" in listed.stderr

        postgres_server.start()
        wait_until(lambda: http.post(SPEECH, json=SPEECH_BODY, headers=headers).status_code == 200, 15,
                   "service after the database returned")
        [key] = srv.runtime.storage.keys.list()
        assert key.credits == 1000 - 2 * len(SPEECH_BODY["input"])   # the refused request took nothing
        assert keys(postgres_url, "revoke", key.id).returncode == 0
        wait_until(lambda: http.post(SPEECH, json=SPEECH_BODY, headers=headers).status_code == 401, 1.0,
                   "a revocation through the command")
