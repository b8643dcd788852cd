"""`voicewire db copy`: a real SQLite install copied into a real PostgreSQL, every field kept, and a
target that already holds records refused."""

from __future__ import annotations

import subprocess
import sys

from stream.accounts.keys import create_key, find_key
from stream.storage import StoredVoice, open_storage

VOICEWIRE = [sys.executable, "-m", "stream.server.cli"]


def db_copy(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*VOICEWIRE, "db", "copy", *args], capture_output=True, text=True, timeout=120)


def test_copy_moves_keys_usage_and_voices_from_sqlite_to_postgresql(tmp_path, postgres_server, postgres_url):
    path = tmp_path / "voicewire.sqlite3"
    source = open_storage(None, path)
    metered, metered_secret = create_key(source.keys, name="agent", credits=100)
    revoked, _ = create_key(source.keys, credits=None)
    source.keys.charge(metered.id, 30)
    source.keys.refund(metered.id, 5)
    source.keys.revoke(revoked.id)
    clip = bytes(range(256)) * 40
    source.voices.add(StoredVoice("v_a", "alice", "WAV", 24000, 1.5, "sha-a", 1700000000.25), clip)
    source.voices.add(StoredVoice("v_b", "bob", "FLAC", 16000, 3.0, "sha-b", 1700000001.0), b"fLaC")
    source.close()

    url = postgres_server.url(postgres_url.rsplit("/", 1)[1], password="hunter2")   # trust auth takes any password
    done = db_copy("--from", f"sqlite://{path}", "--to", url)
    assert done.returncode == 0, done.stderr
    assert "copied 2 key(s), 1 day(s) of usage, 2 voice(s)" in done.stdout
    assert "hunter2" not in done.stdout + done.stderr and "postgresql://***@" in done.stdout

    source, target = open_storage(None, path), open_storage(url, tmp_path / "unused")
    assert target.keys.export() == source.keys.export()          # digests, balances, times, revoked state
    assert target.usage.export() == source.usage.export()
    assert target.voices.list() == source.voices.list()
    assert target.voices.audio("v_a") == clip and target.voices.get("bob").id == "v_b"
    assert find_key(target.keys, metered_secret).credits == 75  # an existing secret works on the new database
    assert target.keys.charge(metered.id, 5) == 70

    again = db_copy("--from", f"sqlite://{path}", "--to", url)   # never merged into a database in use
    assert again.returncode == 1 and "already holds 2 key(s)" in again.stderr
    assert {k.id: k.credits for k in target.keys.list()} == {metered.id: 70, revoked.id: None}
    source.close()
    target.close()


def test_copy_refuses_a_missing_source_and_an_unreachable_target_naming_them(tmp_path):
    missing = db_copy("--from", f"sqlite://{tmp_path}/none.sqlite3", "--to", f"sqlite://{tmp_path}/new.sqlite3")
    assert missing.returncode == 2 and f"--from: there is no database file at {tmp_path}/none.sqlite3" in missing.stderr

    open_storage(None, tmp_path / "old.sqlite3").keys.create("key_a", None, "d", "vw_aaaaa", None)
    down = db_copy("--from", f"sqlite://{tmp_path}/old.sqlite3", "--to", "postgresql://app:hunter2@127.0.0.1:1/vw")
    assert down.returncode == 2 and "cannot use postgresql://***@127.0.0.1:1/vw" in down.stderr
    assert "hunter2" not in down.stderr and "Traceback" not in down.stderr

    bad = db_copy("--from", "mysql://db/vw", "--to", f"sqlite://{tmp_path}/new.sqlite3")
    assert bad.returncode == 2 and "unsupported scheme 'mysql'" in bad.stderr
