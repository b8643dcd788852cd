"""`VoiceRepository` on SQLite: metadata and the clip bytes in one table."""

from __future__ import annotations

import sqlite3

from stream.storage.changes import Change, Topic
from stream.storage.sqlite.changes import SqliteChangeFeed, announce
from stream.storage.sqlite.database import DatabaseFile
from stream.storage.voices import StoredVoice, VoiceRepository

MIGRATIONS = (
    """CREATE TABLE voices (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        audio BLOB NOT NULL,
        format TEXT NOT NULL,
        sample_rate INTEGER NOT NULL,
        seconds REAL NOT NULL,
        content_sha256 TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX voices_name ON voices (name)""",
)
_COLUMNS = "id, name, format, sample_rate, seconds, content_sha256, created_at"


def _voice(row: sqlite3.Row) -> StoredVoice:
    return StoredVoice(row["id"], row["name"], row["format"], row["sample_rate"], row["seconds"],
                       row["content_sha256"], row["created_at"])


class SqliteVoiceRepository(VoiceRepository):
    def __init__(self, file: DatabaseFile, changes: SqliteChangeFeed) -> None:
        self._file = file
        self._changes = changes

    def add(self, voice: StoredVoice, audio: bytes) -> None:
        with self._file.connect() as conn:
            conn.execute(f"INSERT INTO voices ({_COLUMNS}, audio) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (voice.id, voice.name, voice.format, voice.sample_rate, voice.seconds,
                          voice.content_sha256, voice.created_at, audio))
            announce(conn, Change(Topic.VOICES, voice.id))   # a new voice can take over a name
        self._changes.catch_up()

    def get(self, id_or_name: str) -> StoredVoice | None:
        with self._file.existing() as conn:
            if conn is None:
                return None
            row = conn.execute(f"SELECT {_COLUMNS} FROM voices WHERE id = ?", (id_or_name,)).fetchone()
            if row is None:
                row = conn.execute(f"SELECT {_COLUMNS} FROM voices WHERE name = ? ORDER BY created_at DESC LIMIT 1",
                                   (id_or_name,)).fetchone()
        return None if row is None else _voice(row)

    def audio(self, voice_id: str) -> bytes | None:
        with self._file.existing() as conn:
            row = None if conn is None else conn.execute("SELECT audio FROM voices WHERE id = ?",
                                                         (voice_id,)).fetchone()
        return None if row is None else bytes(row["audio"])

    def list(self) -> list[StoredVoice]:
        with self._file.existing() as conn:
            rows = [] if conn is None else conn.execute(f"SELECT {_COLUMNS} FROM voices ORDER BY created_at").fetchall()
        return [_voice(r) for r in rows]

    def delete(self, voice_id: str) -> bool:
        with self._file.existing() as conn:
            deleted = conn is not None and conn.execute("DELETE FROM voices WHERE id = ?", (voice_id,)).rowcount > 0
            if deleted:
                announce(conn, Change(Topic.VOICES, voice_id))
        self._changes.catch_up()
        return deleted
