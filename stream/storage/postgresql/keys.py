"""`KeyRepository` and `UsageRepository` on PostgreSQL.

A charge is one conditional `UPDATE ... WHERE credits >= n RETURNING` plus the day's usage upsert
(and the session's credit hold, `stream.storage.holds`) in the same transaction. Concurrent updates of one row wait for each other, and PostgreSQL
re-checks the condition against the row as the earlier transaction left it, so charges from any
number of replicas never overdraw a key or lose an update, and usage always matches the balance.
Times are `timestamptz`, shown as ISO 8601 UTC like the SQLite backend's; usage days are UTC dates.
"""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from stream.storage.changes import Change, Topic
from stream.storage.holds import Hold
from stream.storage.keys import ApiKey, ChargeRefused, KeyRepository, Refusal, StoredKey
from stream.storage.postgresql.changes import PgChangeFeed
from stream.storage.postgresql.database import Database
from stream.storage.usage import DailyUsage, UsageRepository

KEY_MIGRATIONS = (
    """CREATE TABLE api_keys (
        id text PRIMARY KEY,
        name text,
        key_sha256 text NOT NULL UNIQUE,
        prefix text NOT NULL,
        credits bigint CHECK (credits IS NULL OR credits >= 0),
        characters_used bigint NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz,
        revoked_at timestamptz
    )""",
)
USAGE_MIGRATIONS = (
    """CREATE TABLE key_usage (
        key_id text NOT NULL,
        day date NOT NULL,
        charged bigint NOT NULL DEFAULT 0,
        refunded bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (key_id, day)
    )""",
)
_ISO = "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"


def _iso(column: str) -> str:
    return f"to_char({column} AT TIME ZONE 'UTC', {_ISO}) AS {column}"


_COLUMNS = (f"id, name, prefix, credits, characters_used, key_sha256, {_iso('created_at')}, "
            f"{_iso('last_used_at')}, {_iso('revoked_at')}")
_TODAY = "(now() AT TIME ZONE 'UTC')::date"
_USAGE = (f"INSERT INTO key_usage (key_id, day, {{column}}) VALUES (%(id)s, {_TODAY}, %(n)s) "
          "ON CONFLICT (key_id, day) DO UPDATE SET {column} = key_usage.{column} + excluded.{column}")


def give_back(conn: psycopg.Connection, key_id: str, characters: int) -> int | None:
    """Return credits to a key and count them as refunded, inside the caller's transaction; the balance."""
    params = {"n": characters, "id": key_id}
    row = conn.execute("UPDATE api_keys SET credits = credits + %(n)s, "
                       "characters_used = GREATEST(0, characters_used - %(n)s) WHERE id = %(id)s "
                       "RETURNING credits", params).fetchone()
    if row is not None and characters:
        conn.execute(_USAGE.format(column="refunded"), params)
    return row[0] if row else None


def lower_pending(conn: psycopg.Connection, session_id: str, characters: int) -> None:
    conn.execute("UPDATE credit_holds SET pending = GREATEST(0, pending - %s) WHERE session_id = %s",
                 (characters, session_id))


def _key(row: dict) -> ApiKey:
    return ApiKey(row["id"], row["name"], row["prefix"], row["credits"], row["characters_used"],
                  row["created_at"], row["last_used_at"], row["revoked_at"])


class PgKeyRepository(KeyRepository):
    def __init__(self, db: Database, changes: PgChangeFeed) -> None:
        self._db = db
        self._changes = changes

    def _one(self, query: str, params: tuple) -> dict | None:
        with self._db.transaction() as conn:
            return conn.cursor(row_factory=dict_row).execute(query, params).fetchone()

    def create(self, key_id: str, name: str | None, digest: str, prefix: str, credits: int | None) -> ApiKey:
        change = Change(Topic.KEYS, key_id)
        with self._db.transaction() as conn:
            conn.execute("INSERT INTO api_keys (id, name, key_sha256, prefix, credits) VALUES (%s, %s, %s, %s, %s)",
                         (key_id, name, digest, prefix, credits))
            row = conn.cursor(row_factory=dict_row).execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE id = %s", (key_id,)).fetchone()
            self._changes.announce(conn, change)
        self._changes.committed(change)
        return _key(row)

    def list(self) -> list[ApiKey]:
        with self._db.transaction() as conn:
            rows = conn.cursor(row_factory=dict_row).execute(
                f"SELECT {_COLUMNS} FROM api_keys ORDER BY api_keys.created_at, id").fetchall()
        return [_key(r) for r in rows]

    def get(self, key_id: str) -> ApiKey | None:
        row = self._one(f"SELECT {_COLUMNS} FROM api_keys WHERE id = %s", (key_id,))
        return _key(row) if row else None

    def find_active(self, digest: str) -> ApiKey | None:
        row = self._one(f"SELECT {_COLUMNS} FROM api_keys WHERE key_sha256 = %s AND revoked_at IS NULL", (digest,))
        return _key(row) if row else None

    def has_keys(self) -> bool:
        return self._one("SELECT 1 AS found FROM api_keys LIMIT 1", ()) is not None

    def revoke(self, key_id: str) -> bool:
        change = Change(Topic.KEYS, key_id)
        with self._db.transaction() as conn:
            revoked = conn.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL",
                                   (key_id,)).rowcount == 1
            if revoked:
                self._changes.announce(conn, change)
        if revoked:
            self._changes.committed(change)
        return revoked

    def add_credits(self, key_id: str, amount: int) -> int:
        with self._db.transaction() as conn:
            row = conn.execute("UPDATE api_keys SET credits = GREATEST(0, credits + %s) "
                               "WHERE id = %s AND credits IS NOT NULL RETURNING credits", (amount, key_id)).fetchone()
            exists = row is not None or conn.execute("SELECT 1 FROM api_keys WHERE id = %s", (key_id,)).fetchone()
        if row is None:
            if not exists:
                raise KeyError(f"no key with id {key_id!r}")
            raise ValueError(f"key {key_id} has unlimited credits; it is not metered")
        return int(row[0])

    def charge(self, key_id: str, characters: int, hold: Hold | None = None) -> int | None:
        params = {"n": characters, "id": key_id}
        with self._db.transaction() as conn:
            row = conn.execute(
                "UPDATE api_keys SET credits = credits - %(n)s, characters_used = characters_used + %(n)s, "
                "last_used_at = now() "
                "WHERE id = %(id)s AND revoked_at IS NULL AND (credits IS NULL OR credits >= %(n)s) "
                "RETURNING credits", params).fetchone()
            if row is not None:
                if characters:
                    conn.execute(_USAGE.format(column="charged"), params)
                if hold is not None:
                    conn.execute(
                        "INSERT INTO credit_holds (session_id, key_id, replica, pending, expires_at) "
                        "VALUES (%(session)s, %(id)s, %(replica)s, %(n)s, now() + make_interval(secs => %(ttl)s)) "
                        "ON CONFLICT (session_id) DO UPDATE SET pending = credit_holds.pending + excluded.pending, "
                        "replica = excluded.replica, expires_at = excluded.expires_at",
                        {**params, "session": hold.session_id, "replica": hold.replica, "ttl": hold.ttl_s})
                return row[0]
            left = conn.execute("SELECT credits, revoked_at FROM api_keys WHERE id = %s", (key_id,)).fetchone()
        if left is None or left[1] is not None:
            raise ChargeRefused(Refusal.REVOKED, None)
        raise ChargeRefused(Refusal.INSUFFICIENT, left[0])

    def refund(self, key_id: str, characters: int, session_id: str | None = None) -> int | None:
        with self._db.transaction() as conn:
            if session_id is not None:
                lower_pending(conn, session_id, characters)
            return give_back(conn, key_id, characters)

    def export(self) -> list[StoredKey]:
        with self._db.transaction() as conn:
            rows = conn.cursor(row_factory=dict_row).execute(
                f"SELECT {_COLUMNS} FROM api_keys ORDER BY api_keys.created_at, id").fetchall()
        return [StoredKey(_key(r), r["key_sha256"]) for r in rows]

    def restore(self, keys: list[StoredKey]) -> None:
        with self._db.transaction() as conn:
            for stored in keys:
                k = stored.key
                conn.execute("INSERT INTO api_keys (id, name, key_sha256, prefix, credits, characters_used, "
                             "created_at, last_used_at, revoked_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                             (k.id, k.name, stored.digest, k.prefix, k.credits, k.characters_used, k.created_at,
                              k.last_used_at, k.revoked_at))
            if keys:
                self._changes.announce(conn, Change(Topic.KEYS))
        if keys:
            self._changes.committed(Change(Topic.KEYS))


class PgUsageRepository(UsageRepository):
    def __init__(self, db: Database) -> None:
        self._db = db

    def daily(self, key_id: str, since: str | None = None) -> list[DailyUsage]:
        with self._db.transaction() as conn:
            rows = conn.execute("SELECT key_id, day::text, charged, refunded FROM key_usage "
                                "WHERE key_id = %s AND (%s::date IS NULL OR day >= %s::date) ORDER BY day",
                                (key_id, since, since)).fetchall()
        return [DailyUsage(*row) for row in rows]

    def export(self) -> list[DailyUsage]:
        with self._db.transaction() as conn:
            rows = conn.execute("SELECT key_id, day::text, charged, refunded FROM key_usage "
                                "ORDER BY key_id, day").fetchall()
        return [DailyUsage(*row) for row in rows]

    def restore(self, days: list[DailyUsage]) -> None:
        with self._db.transaction() as conn:
            for day in days:
                conn.execute("INSERT INTO key_usage (key_id, day, charged, refunded) VALUES (%s, %s, %s, %s)",
                             (day.key_id, day.day, day.charged, day.refunded))
