"""`VoiceRepository` on PostgreSQL: metadata and the clip bytes (`bytea`) in one table, as on SQLite."""

from __future__ import annotations

from psycopg.rows import class_row

from stream.storage.changes import Change, Topic
from stream.storage.postgresql.changes import PgChangeFeed
from stream.storage.postgresql.database import Database
from stream.storage.voices import StoredVoice, VoiceRepository

MIGRATIONS = (
    """CREATE TABLE voices (
        id text PRIMARY KEY,
        name text NOT NULL,
        audio bytea NOT NULL,
        format text NOT NULL,
        sample_rate integer NOT NULL,
        seconds double precision NOT NULL,
        content_sha256 text NOT NULL,
        created_at double precision NOT NULL
    );
    CREATE INDEX voices_name ON voices (name, created_at)""",
)
_COLUMNS = "id, name, format, sample_rate, seconds, content_sha256, created_at"


class PgVoiceRepository(VoiceRepository):
    def __init__(self, db: Database, changes: PgChangeFeed) -> None:
        self._db = db
        self._changes = changes

    def add(self, voice: StoredVoice, audio: bytes) -> None:
        change = Change(Topic.VOICES, voice.id)   # a new voice can take over a name
        with self._db.transaction() as conn:
            conn.execute(f"INSERT INTO voices ({_COLUMNS}, audio) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                         (voice.id, voice.name, voice.format, voice.sample_rate, voice.seconds,
                          voice.content_sha256, voice.created_at, audio))
            self._changes.announce(conn, change)
        self._changes.committed(change)

    def get(self, id_or_name: str) -> StoredVoice | None:
        with self._db.transaction() as conn:
            cur = conn.cursor(row_factory=class_row(StoredVoice))
            voice = cur.execute(f"SELECT {_COLUMNS} FROM voices WHERE id = %s", (id_or_name,)).fetchone()
            if voice is None:
                voice = cur.execute(f"SELECT {_COLUMNS} FROM voices WHERE name = %s ORDER BY created_at DESC LIMIT 1",
                                    (id_or_name,)).fetchone()
        return voice

    def audio(self, voice_id: str) -> bytes | None:
        with self._db.transaction() as conn:
            row = conn.execute("SELECT audio FROM voices WHERE id = %s", (voice_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def list(self) -> list[StoredVoice]:
        with self._db.transaction() as conn:
            return conn.cursor(row_factory=class_row(StoredVoice)).execute(
                f"SELECT {_COLUMNS} FROM voices ORDER BY created_at").fetchall()

    def delete(self, voice_id: str) -> bool:
        change = Change(Topic.VOICES, voice_id)
        with self._db.transaction() as conn:
            deleted = conn.execute("DELETE FROM voices WHERE id = %s", (voice_id,)).rowcount > 0
            if deleted:
                self._changes.announce(conn, change)
        if deleted:
            self._changes.committed(change)
        return deleted
