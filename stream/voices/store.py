"""Stored voices: the reference clip and its metadata, in the server database.

The original file bytes are kept (not the prepared conditioning), so a voice survives a model
upgrade: new weights re-prepare it from the clip, while the conditioning cache makes that a
one-time cost per clip and model.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from stream.storage.sqlite import Database

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


@dataclass(frozen=True)
class StoredVoice:
    id: str
    name: str
    format: str
    sample_rate: int
    seconds: float
    content_sha256: str
    created_at: float

    def to_wire(self) -> dict:
        return {"id": self.id, "name": self.name, "format": self.format, "sample_rate": self.sample_rate,
                "seconds": round(self.seconds, 3), "created_at": self.created_at}


_COLUMNS = "id, name, format, sample_rate, seconds, content_sha256, created_at"


def _row(row) -> StoredVoice:
    return StoredVoice(row["id"], row["name"], row["format"], row["sample_rate"], row["seconds"],
                       row["content_sha256"], row["created_at"])


class VoiceStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.migrate("voices", MIGRATIONS)

    def add(self, *, name: str | None, audio: bytes, format: str, sample_rate: int, seconds: float,
            content_sha256: str) -> StoredVoice:
        voice_id = "v_" + secrets.token_hex(8)
        voice = StoredVoice(voice_id, name or voice_id, format, sample_rate, seconds, content_sha256, time.time())
        with self.db.connect() as conn:
            conn.execute(f"INSERT INTO voices ({_COLUMNS}, audio) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (voice.id, voice.name, voice.format, voice.sample_rate, voice.seconds,
                          voice.content_sha256, voice.created_at, audio))
        return voice

    def get(self, key: str) -> StoredVoice | None:
        """A voice by id, else by name (the newest with that name)."""
        with self.db.connect() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM voices WHERE id = ?", (key,)).fetchone()
            if row is None:
                row = conn.execute(f"SELECT {_COLUMNS} FROM voices WHERE name = ? ORDER BY created_at DESC LIMIT 1",
                                   (key,)).fetchone()
        return None if row is None else _row(row)

    def audio(self, voice_id: str) -> bytes | None:
        with self.db.connect() as conn:
            row = conn.execute("SELECT audio FROM voices WHERE id = ?", (voice_id,)).fetchone()
        return None if row is None else bytes(row["audio"])

    def list(self) -> list[StoredVoice]:
        with self.db.connect() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM voices ORDER BY created_at").fetchall()
        return [_row(r) for r in rows]

    def delete(self, voice_id: str) -> bool:
        with self.db.connect() as conn:
            return conn.execute("DELETE FROM voices WHERE id = ?", (voice_id,)).rowcount > 0
