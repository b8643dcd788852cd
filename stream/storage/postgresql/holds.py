"""`CreditHolds` on PostgreSQL, on the database's clock. Holds are written by `PgKeyRepository.charge`
and `refund` in their own transactions. The sweep deletes one expired hold at a time with
`FOR UPDATE SKIP LOCKED` and gives its characters back in the same transaction, so sweepers on
several replicas share the work and each hold is returned exactly once.
"""

from __future__ import annotations

from stream.storage.holds import CreditHolds, SweptHold
from stream.storage.leases import LEASE_TTL_S
from stream.storage.postgresql.database import Database
from stream.storage.postgresql.keys import give_back, lower_pending

MIGRATIONS = (
    """CREATE TABLE credit_holds (
        session_id text PRIMARY KEY,
        key_id text NOT NULL,
        replica text NOT NULL,
        pending bigint NOT NULL CHECK (pending >= 0),
        expires_at timestamptz NOT NULL
    );
    CREATE INDEX credit_holds_expiry ON credit_holds (expires_at);
    CREATE INDEX credit_holds_replica ON credit_holds (replica)""",
)
_SWEEP_ONE = ("DELETE FROM credit_holds WHERE session_id = (SELECT session_id FROM credit_holds "
              "WHERE expires_at <= now() LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING session_id, key_id, pending")


class PgCreditHolds(CreditHolds):
    def __init__(self, db: Database) -> None:
        self._db = db

    def settle(self, session_id: str, characters: int) -> None:
        with self._db.transaction() as conn:
            lower_pending(conn, session_id, characters)

    def release(self, session_id: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM credit_holds WHERE session_id = %s", (session_id,))

    def renew(self, replica: str, ttl_s: float = LEASE_TTL_S) -> int:
        with self._db.transaction() as conn:
            return conn.execute("UPDATE credit_holds SET expires_at = now() + make_interval(secs => %s) "
                                "WHERE replica = %s", (ttl_s, replica)).rowcount

    def sweep(self) -> list[SweptHold]:
        swept: list[SweptHold] = []
        while True:
            with self._db.transaction() as conn:
                row = conn.execute(_SWEEP_ONE).fetchone()
                if row is None:
                    return swept
                session_id, key_id, pending = row
                if pending:
                    give_back(conn, key_id, pending)
            swept.append(SweptHold(session_id, key_id, pending))

    def pending(self, session_id: str) -> int | None:
        with self._db.transaction() as conn:
            row = conn.execute("SELECT pending FROM credit_holds WHERE session_id = %s", (session_id,)).fetchone()
        return row[0] if row else None
