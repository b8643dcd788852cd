"""The SQLite backend: the file, migrations, the voice repository and the change log (no model needed)."""

from __future__ import annotations

import sqlite3

import pytest

from stream.storage import Change, StoredVoice, Topic, open_storage
from stream.storage.sqlite import SCHEMA
from stream.storage.sqlite import changes as sqlite_changes
from stream.storage.sqlite.changes import SqliteChangeFeed
from stream.storage.sqlite.database import Database, DatabaseFile


def voice(voice_id: str, name: str, created_at: float) -> StoredVoice:
    return StoredVoice(voice_id, name, "WAV", 24000, 2.0, "h-" + voice_id, created_at)


def test_database_uses_wal_and_migrates_each_component_once(tmp_path):
    db = Database(tmp_path / "data" / "voicewire.sqlite3")
    with db.connect() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    steps = ["CREATE TABLE keys (id TEXT PRIMARY KEY)", "ALTER TABLE keys ADD COLUMN owner TEXT"]
    assert db.migrate("keys", steps[:1]) == 1
    assert db.migrate("keys", steps) == 2            # only the new step runs
    assert db.migrate("keys", steps) == 2            # and nothing twice
    with db.connect() as conn:
        conn.execute("INSERT INTO keys (id, owner) VALUES ('k', 'o')")
        versions = conn.execute("SELECT component, version FROM schema_migrations ORDER BY version").fetchall()
    assert [tuple(v) for v in versions] == [("keys", 1), ("keys", 2)]


def test_failed_transaction_rolls_back(tmp_path):
    db = Database(tmp_path / "db.sqlite3")
    db.migrate("t", ["CREATE TABLE t (x INTEGER UNIQUE)"])
    with pytest.raises(sqlite3.IntegrityError), db.connect() as conn:
        conn.execute("INSERT INTO t VALUES (1)")
        conn.execute("INSERT INTO t VALUES (1)")
    with db.connect() as conn:
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0


def test_a_database_from_before_the_storage_seam_keeps_its_data(tmp_path):
    """A file written by the previous release (keys and voices only) opens with its rows and gains
    the new tables."""
    path = tmp_path / "voicewire.sqlite3"
    old = Database(path)
    old.migrate("api_keys", SCHEMA["api_keys"])
    old.migrate("voices", SCHEMA["voices"])
    with old.connect() as conn:
        conn.execute("INSERT INTO api_keys (id, key_sha256, prefix, credits) VALUES ('key_old', 'd', 'vw_abcde', 7)")
    storage = open_storage(None, path)
    assert [k.id for k in storage.keys.list()] == ["key_old"] and storage.keys.charge("key_old", 7) == 0
    assert storage.usage.daily("key_old")[0].charged == 7


def test_voice_repository_round_trip_and_reopen(tmp_path):
    path = tmp_path / "db.sqlite3"
    voices = open_storage(None, path).voices
    assert voices.list() == [] and voices.get("alice") is None and not voices.delete("v_x")
    assert not path.exists()                         # reads and misses create no file
    a, b = voice("v_a", "alice", 1.0), voice("v_b", "v_b", 2.0)
    voices.add(a, b"RIFFa")
    voices.add(b, b"RIFFb")
    reopened = open_storage(f"sqlite://{path}", path).voices       # a restart sees the same voices
    assert [v.id for v in reopened.list()] == [a.id, b.id]
    assert reopened.get("alice") == a and reopened.get(a.id) == a
    reopened.add(voice("v_c", "alice", 3.0), b"RIFFc")
    assert reopened.get("alice").id == "v_c"          # a name means its newest voice
    assert reopened.audio(a.id) == b"RIFFa" and reopened.audio("v_x") is None
    assert reopened.delete(a.id) and not reopened.delete(a.id)
    assert reopened.get(a.id) is None


def test_a_feed_that_fell_behind_the_log_retention_drops_everything(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_changes, "RETENTION_S", 0.0)   # every write prunes the log before it
    path = tmp_path / "db.sqlite3"
    writer = open_storage(None, path)
    writer.voices.add(voice("v_a", "a", 1.0), b"x")
    feed = SqliteChangeFeed(DatabaseFile(path, SCHEMA), interval_s=3600)   # reads only when asked: behind
    seen: list[Change] = []
    feed.subscribe(seen.append)
    writer.voices.add(voice("v_b", "b", 2.0), b"x")
    writer.voices.add(voice("v_c", "c", 3.0), b"x")  # prunes v_b's change before the feed read it
    feed.catch_up()
    assert seen == [Change(Topic.KEYS), Change(Topic.VOICES), Change(Topic.VOICES, "v_c")]
    feed.close()
