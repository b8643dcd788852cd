"""`SessionLeases` on SQLite: the server processes of one machine share the file's lease table.

`acquire` runs under `BEGIN IMMEDIATE`, which takes the file's write lock before counting, so two
processes admitting at once count one after the other. Expiry is wall-clock unix time, which every
process on one machine shares.
"""

from __future__ import annotations

import time

from stream.storage.leases import LEASE_TTL_S, SessionLeases
from stream.storage.sqlite.database import DatabaseFile

MIGRATIONS = (
    """CREATE TABLE session_leases (
        session_id TEXT PRIMARY KEY,
        key_id TEXT NOT NULL,
        replica TEXT NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE INDEX session_leases_key ON session_leases (key_id, expires_at);
    CREATE INDEX session_leases_replica ON session_leases (replica)""",
)


class SqliteSessionLeases(SessionLeases):
    def __init__(self, file: DatabaseFile) -> None:
        self._file = file

    def acquire(self, key_id: str, session_id: str, replica: str, limit: int, ttl_s: float = LEASE_TTL_S) -> bool:
        now = time.time()
        with self._file.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM session_leases WHERE expires_at <= ?", (now,))
            (held,) = conn.execute("SELECT COUNT(*) FROM session_leases WHERE key_id = ?", (key_id,)).fetchone()
            if held >= limit:
                return False
            conn.execute("INSERT OR REPLACE INTO session_leases (session_id, key_id, replica, expires_at) "
                         "VALUES (?, ?, ?, ?)", (session_id, key_id, replica, now + ttl_s))
            return True

    def renew(self, replica: str, ttl_s: float = LEASE_TTL_S) -> int:
        with self._file.existing() as conn:
            if conn is None:
                return 0
            return conn.execute("UPDATE session_leases SET expires_at = ? WHERE replica = ?",
                                (time.time() + ttl_s, replica)).rowcount

    def release(self, session_id: str) -> None:
        with self._file.existing() as conn:
            if conn is not None:
                conn.execute("DELETE FROM session_leases WHERE session_id = ?", (session_id,))

    def count(self, key_id: str) -> int:
        with self._file.existing() as conn:
            if conn is None:
                return 0
            (held,) = conn.execute("SELECT COUNT(*) FROM session_leases WHERE key_id = ? AND expires_at > ?",
                                   (key_id, time.time())).fetchone()
            return held
