"""The SQLite database and the voice store (no model needed)."""

from __future__ import annotations

import sqlite3

import pytest

from stream.storage.sqlite import Database
from stream.voices.store import VoiceStore


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


def test_voice_store_round_trip_and_reopen(tmp_path):
    path = tmp_path / "db.sqlite3"
    store = VoiceStore(Database(path))
    a = store.add(name="alice", audio=b"RIFFa", format="WAV", sample_rate=24000, seconds=2.0, content_sha256="h1")
    b = store.add(name=None, audio=b"RIFFb", format="FLAC", sample_rate=16000, seconds=3.0, content_sha256="h2")
    assert b.name == b.id and a.id.startswith("v_")
    reopened = VoiceStore(Database(path))                # a restart sees the same voices
    assert [v.id for v in reopened.list()] == [a.id, b.id]
    assert reopened.get("alice") == a and reopened.get(a.id) == a
    assert reopened.audio(a.id) == b"RIFFa"
    assert reopened.delete(a.id) and not reopened.delete(a.id)
    assert reopened.get("alice") is None
