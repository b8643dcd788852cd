"""`KeyRepository` and `UsageRepository` on SQLite.

A charge is one conditional UPDATE (`credits >= n`) plus the day's usage upsert (and the session's
credit hold, `stream.storage.holds`) in the same transaction, so concurrent charges in any number of threads and processes never overdraw a key or
lose an update, and usage always matches the balance.
"""

from __future__ import annotations

import sqlite3
import time

from stream.storage.changes import Change, Topic
from stream.storage.holds import Hold
from stream.storage.keys import ApiKey, ChargeRefused, KeyRepository, Refusal, StoredKey
from stream.storage.sqlite.changes import SqliteChangeFeed, announce
from stream.storage.sqlite.database import DatabaseFile
from stream.storage.usage import DailyUsage, UsageRepository

KEY_MIGRATIONS = (
    """
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        name TEXT,
        key_sha256 TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        credits INTEGER CHECK (credits IS NULL OR credits >= 0),
        characters_used INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
        last_used_at TEXT,
        revoked_at TEXT
    )
    """,
)
USAGE_MIGRATIONS = (
    """CREATE TABLE key_usage (
        key_id TEXT NOT NULL,
        day TEXT NOT NULL,
        charged INTEGER NOT NULL DEFAULT 0,
        refunded INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (key_id, day)
    )""",
)
_NOW = "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"
_USAGE = ("INSERT INTO key_usage (key_id, day, {column}) VALUES (:id, date('now'), :n) "
          "ON CONFLICT (key_id, day) DO UPDATE SET {column} = {column} + excluded.{column}")


def give_back(conn: sqlite3.Connection, key_id: str, characters: int) -> int | None:
    """Return credits to a key and count them as refunded, inside the caller's transaction; the balance."""
    row = conn.execute(
        "UPDATE api_keys SET credits = CASE WHEN credits IS NULL THEN NULL ELSE credits + :n END, "
        "characters_used = MAX(0, characters_used - :n) WHERE id = :id RETURNING credits",
        {"n": characters, "id": key_id}).fetchone()
    if row is not None and characters:
        conn.execute(_USAGE.format(column="refunded"), {"n": characters, "id": key_id})
    return row[0] if row else None


def lower_pending(conn: sqlite3.Connection, session_id: str, characters: int) -> None:
    conn.execute("UPDATE credit_holds SET pending = MAX(0, pending - ?) WHERE session_id = ?",
                 (characters, session_id))


def _key(row: sqlite3.Row) -> ApiKey:
    return ApiKey(row["id"], row["name"], row["prefix"], row["credits"], row["characters_used"],
                  row["created_at"], row["last_used_at"], row["revoked_at"])


class SqliteKeyRepository(KeyRepository):
    def __init__(self, file: DatabaseFile, changes: SqliteChangeFeed) -> None:
        self._file = file
        self._changes = changes

    def create(self, key_id: str, name: str | None, digest: str, prefix: str, credits: int | None) -> ApiKey:
        with self._file.connect() as conn:
            conn.execute("INSERT INTO api_keys (id, name, key_sha256, prefix, credits) VALUES (?, ?, ?, ?, ?)",
                         (key_id, name, digest, prefix, credits))
            row = conn.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
            announce(conn, Change(Topic.KEYS, key_id))
        self._changes.catch_up()
        return _key(row)

    def list(self) -> list[ApiKey]:
        with self._file.existing() as conn:
            return [] if conn is None else [_key(r) for r in conn.execute("SELECT * FROM api_keys ORDER BY created_at, id")]

    def get(self, key_id: str) -> ApiKey | None:
        with self._file.existing() as conn:
            row = None if conn is None else conn.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        return _key(row) if row else None

    def find_active(self, digest: str) -> ApiKey | None:
        with self._file.existing() as conn:
            row = None if conn is None else conn.execute(
                "SELECT * FROM api_keys WHERE key_sha256 = ? AND revoked_at IS NULL", (digest,)).fetchone()
        return _key(row) if row else None

    def has_keys(self) -> bool:
        with self._file.existing() as conn:
            return conn is not None and conn.execute("SELECT 1 FROM api_keys LIMIT 1").fetchone() is not None

    def revoke(self, key_id: str) -> bool:
        with self._file.existing() as conn:
            if conn is None:
                return False
            revoked = conn.execute(f"UPDATE api_keys SET revoked_at = {_NOW} WHERE id = ? AND revoked_at IS NULL",
                                   (key_id,)).rowcount == 1
            if revoked:
                announce(conn, Change(Topic.KEYS, key_id))
        self._changes.catch_up()
        return revoked

    def add_credits(self, key_id: str, amount: int) -> int:
        with self._file.existing() as conn:
            row = None if conn is None else conn.execute(
                "UPDATE api_keys SET credits = MAX(0, credits + ?) WHERE id = ? AND credits IS NOT NULL "
                "RETURNING credits", (amount, key_id)).fetchone()
            if row is None:
                exists = None if conn is None else conn.execute("SELECT 1 FROM api_keys WHERE id = ?",
                                                                (key_id,)).fetchone()
                if exists is None:
                    raise KeyError(f"no key with id {key_id!r}")
                raise ValueError(f"key {key_id} has unlimited credits; it is not metered")
        return int(row[0])

    def charge(self, key_id: str, characters: int, hold: Hold | None = None) -> int | None:
        with self._file.existing() as conn:
            if conn is None:
                raise ChargeRefused(Refusal.REVOKED, None)
            row = conn.execute(
                f"UPDATE api_keys SET credits = CASE WHEN credits IS NULL THEN NULL ELSE credits - :n END, "
                f"characters_used = characters_used + :n, last_used_at = {_NOW} "
                "WHERE id = :id AND revoked_at IS NULL AND (credits IS NULL OR credits >= :n) RETURNING credits",
                {"n": characters, "id": key_id}).fetchone()
            if row is not None:
                if characters:
                    conn.execute(_USAGE.format(column="charged"), {"n": characters, "id": key_id})
                if hold is not None:
                    conn.execute(
                        "INSERT INTO credit_holds (session_id, key_id, replica, pending, expires_at) "
                        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET "
                        "pending = pending + excluded.pending, replica = excluded.replica, "
                        "expires_at = excluded.expires_at",
                        (hold.session_id, key_id, hold.replica, characters, time.time() + hold.ttl_s))
                return row[0]
            left = conn.execute("SELECT credits, revoked_at FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        if left is None or left["revoked_at"] is not None:
            raise ChargeRefused(Refusal.REVOKED, None)
        raise ChargeRefused(Refusal.INSUFFICIENT, left["credits"])

    def refund(self, key_id: str, characters: int, session_id: str | None = None) -> int | None:
        with self._file.existing() as conn:
            if conn is None:
                return None
            if session_id is not None:
                lower_pending(conn, session_id, characters)
            return give_back(conn, key_id, characters)

    def export(self) -> list[StoredKey]:
        with self._file.existing() as conn:
            rows = [] if conn is None else conn.execute("SELECT * FROM api_keys ORDER BY created_at, id").fetchall()
        return [StoredKey(_key(r), r["key_sha256"]) for r in rows]

    def restore(self, keys: list[StoredKey]) -> None:
        with self._file.connect() as conn:
            for stored in keys:
                k = stored.key
                conn.execute("INSERT INTO api_keys (id, name, key_sha256, prefix, credits, characters_used, "
                             "created_at, last_used_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (k.id, k.name, stored.digest, k.prefix, k.credits, k.characters_used, k.created_at,
                              k.last_used_at, k.revoked_at))
            if keys:
                announce(conn, Change(Topic.KEYS))
        self._changes.catch_up()


class SqliteUsageRepository(UsageRepository):
    def __init__(self, file: DatabaseFile) -> None:
        self._file = file

    def daily(self, key_id: str, since: str | None = None) -> list[DailyUsage]:
        with self._file.existing() as conn:
            rows = [] if conn is None else conn.execute(
                "SELECT key_id, day, charged, refunded FROM key_usage WHERE key_id = ? AND day >= ? ORDER BY day",
                (key_id, since or "")).fetchall()
        return [DailyUsage(r["key_id"], r["day"], r["charged"], r["refunded"]) for r in rows]

    def export(self) -> list[DailyUsage]:
        with self._file.existing() as conn:
            rows = [] if conn is None else conn.execute(
                "SELECT key_id, day, charged, refunded FROM key_usage ORDER BY key_id, day").fetchall()
        return [DailyUsage(r["key_id"], r["day"], r["charged"], r["refunded"]) for r in rows]

    def restore(self, days: list[DailyUsage]) -> None:
        with self._file.connect() as conn:
            conn.executemany("INSERT INTO key_usage (key_id, day, charged, refunded) VALUES (?, ?, ?, ?)",
                             [(d.key_id, d.day, d.charged, d.refunded) for d in days])
