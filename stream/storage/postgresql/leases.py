"""`SessionLeases` on PostgreSQL: one lease table for every replica, on the database's clock.

`acquire` takes a transaction-level advisory lock on the key before it counts, so two replicas
admitting sessions of one key at once count one after the other, while other keys never wait.
Expiry uses the server's `now()`, so replicas' clocks need not agree.
"""

from __future__ import annotations

from stream.storage.leases import LEASE_TTL_S, SessionLeases
from stream.storage.postgresql.database import Database

MIGRATIONS = (
    """CREATE TABLE session_leases (
        session_id text PRIMARY KEY,
        key_id text NOT NULL,
        replica text NOT NULL,
        expires_at timestamptz NOT NULL
    );
    CREATE INDEX session_leases_key ON session_leases (key_id, expires_at);
    CREATE INDEX session_leases_replica ON session_leases (replica)""",
)
LEASE_LOCKS = 0x6c656173   # first half of the advisory lock id of a key's leases ("leas")
_EXPIRY = "now() + make_interval(secs => %(ttl)s)"


class PgSessionLeases(SessionLeases):
    def __init__(self, db: Database) -> None:
        self._db = db

    def acquire(self, key_id: str, session_id: str, replica: str, limit: int, ttl_s: float = LEASE_TTL_S) -> bool:
        params = {"key": key_id, "session": session_id, "replica": replica, "ttl": ttl_s, "lock": LEASE_LOCKS}
        with self._db.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%(lock)s, hashtext(%(key)s))", params)
            conn.execute("DELETE FROM session_leases WHERE key_id = %(key)s AND expires_at <= now()", params)
            (held,) = conn.execute("SELECT COUNT(*) FROM session_leases WHERE key_id = %(key)s", params).fetchone()
            if held >= limit:
                return False
            conn.execute(f"INSERT INTO session_leases (session_id, key_id, replica, expires_at) "
                         f"VALUES (%(session)s, %(key)s, %(replica)s, {_EXPIRY}) ON CONFLICT (session_id) DO UPDATE "
                         "SET key_id = excluded.key_id, replica = excluded.replica, expires_at = excluded.expires_at",
                         params)
            return True

    def renew(self, replica: str, ttl_s: float = LEASE_TTL_S) -> int:
        with self._db.transaction() as conn:
            return conn.execute(f"UPDATE session_leases SET expires_at = {_EXPIRY} WHERE replica = %(replica)s",
                                {"replica": replica, "ttl": ttl_s}).rowcount

    def release(self, session_id: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM session_leases WHERE session_id = %s", (session_id,))

    def count(self, key_id: str) -> int:
        with self._db.transaction() as conn:
            (held,) = conn.execute("SELECT COUNT(*) FROM session_leases WHERE key_id = %s AND expires_at > now()",
                                   (key_id,)).fetchone()
        return held
