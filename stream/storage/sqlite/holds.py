"""`CreditHolds` on SQLite. Holds are written by `SqliteKeyRepository.charge` and `refund` in their
own transactions; the sweep runs under `BEGIN IMMEDIATE`, which takes the file's write lock before
it reads, so two processes sweeping at once return each expired hold once. Expiry is wall-clock
unix time, which every process on one machine shares.
"""

from __future__ import annotations

import time

from stream.storage.holds import CreditHolds, SweptHold
from stream.storage.leases import LEASE_TTL_S
from stream.storage.sqlite.database import DatabaseFile
from stream.storage.sqlite.keys import give_back, lower_pending

MIGRATIONS = (
    """CREATE TABLE credit_holds (
        session_id TEXT PRIMARY KEY,
        key_id TEXT NOT NULL,
        replica TEXT NOT NULL,
        pending INTEGER NOT NULL CHECK (pending >= 0),
        expires_at REAL NOT NULL
    );
    CREATE INDEX credit_holds_expiry ON credit_holds (expires_at);
    CREATE INDEX credit_holds_replica ON credit_holds (replica)""",
)


class SqliteCreditHolds(CreditHolds):
    def __init__(self, file: DatabaseFile) -> None:
        self._file = file

    def settle(self, session_id: str, characters: int) -> None:
        with self._file.existing() as conn:
            if conn is not None:
                lower_pending(conn, session_id, characters)

    def release(self, session_id: str) -> None:
        with self._file.existing() as conn:
            if conn is not None:
                conn.execute("DELETE FROM credit_holds WHERE session_id = ?", (session_id,))

    def renew(self, replica: str, ttl_s: float = LEASE_TTL_S) -> int:
        with self._file.existing() as conn:
            if conn is None:
                return 0
            return conn.execute("UPDATE credit_holds SET expires_at = ? WHERE replica = ?",
                                (time.time() + ttl_s, replica)).rowcount

    def sweep(self) -> list[SweptHold]:
        with self._file.existing() as conn:
            if conn is None:
                return []
            conn.execute("BEGIN IMMEDIATE")
            rows = conn.execute("DELETE FROM credit_holds WHERE expires_at <= ? RETURNING session_id, key_id, pending",
                                (time.time(),)).fetchall()
            for row in rows:
                if row["pending"]:
                    give_back(conn, row["key_id"], row["pending"])
        return [SweptHold(r["session_id"], r["key_id"], r["pending"]) for r in rows]

    def pending(self, session_id: str) -> int | None:
        with self._file.existing() as conn:
            row = None if conn is None else conn.execute(
                "SELECT pending FROM credit_holds WHERE session_id = ?", (session_id,)).fetchone()
        return row[0] if row else None
