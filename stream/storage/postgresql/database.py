"""The PostgreSQL database: a connection pool, outage errors, and versioned migrations.

Every repository call borrows a pooled connection for one transaction. A driver error that means
the database cannot be reached (refused, shut down, timed out, no pooled connection within
`CONNECT_TIMEOUT_S`) becomes `StorageUnavailable`, naming the database by its redacted URL, so a
request during an outage fails fast with an error the server can answer, never a driver exception
or a silent pass. Other errors (a constraint broken by a bug) stay what they are. After a call
waited the whole timeout for a connection, calls in the next `FAIL_FAST_S` fail at once instead of
waiting again: a request that needs the database several times fails in one timeout, not several.

Migrations are recorded per component in `schema_migrations`, as on SQLite, and run in one
transaction that first takes a transaction-level advisory lock: replicas starting at once migrate
one after the other, and each sees what the previous one applied.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from stream.storage.base import StorageUnavailable
from stream.storage.url import FIELD, POSTGRESQL_FORM, DatabaseUrl, DatabaseUrlError

log = logging.getLogger("voicewire.storage")

CONNECT_TIMEOUT_S = 3        # a request during an outage fails within about this
POOL_SIZE = 10               # connections per process; a transaction holds one for milliseconds
FAIL_FAST_S = 1.0            # after a call found no connection, others fail at once for this long
MIGRATION_LOCK = 0x766f6963  # advisory lock id of the migrations ("voic")


def connection_params(url: DatabaseUrl) -> dict[str, str]:
    """libpq parameters of `url`, with a short connect timeout unless the URL sets one;
    `DatabaseUrlError` for a URL libpq cannot parse."""
    assert url.dsn is not None
    try:
        params = conninfo_to_dict(url.dsn)
    except psycopg.ProgrammingError as exc:
        raise DatabaseUrlError(f"{FIELD}: {url.redacted!r} is malformed ({_scrub(str(exc), url)}); "
                               f"use {POSTGRESQL_FORM}") from None
    params.setdefault("connect_timeout", str(CONNECT_TIMEOUT_S))
    params.setdefault("application_name", "voicewire")
    return {k: str(v) for k, v in params.items()}


def _scrub(message: str, url: DatabaseUrl) -> str:
    """`message` on one line, without the URL's password should the driver quote it."""
    assert url.dsn is not None
    message = " ".join(message.split())
    try:
        password = conninfo_to_dict(url.dsn).get("password")
    except psycopg.ProgrammingError:
        password = None
    return message.replace(str(password), "***") if password else message


class Database:
    """One PostgreSQL database: the pool every repository borrows from."""

    def __init__(self, url: DatabaseUrl, pool_size: int = POOL_SIZE) -> None:
        self.url = url
        self.conninfo = make_conninfo("", **connection_params(url))
        # The pool retries a lost connection with a growing backoff; giving up after a few seconds
        # instead lets the next request try at once, so service resumes as soon as the database does.
        self._pool = ConnectionPool(self.conninfo, min_size=1, max_size=pool_size, timeout=CONNECT_TIMEOUT_S,
                                    reconnect_timeout=CONNECT_TIMEOUT_S, check=ConnectionPool.check_connection,
                                    name="voicewire", open=False)
        self._no_connection: tuple[float, str] | None = None   # when a call last found none, and why

    def unavailable(self, exc: BaseException) -> StorageUnavailable:
        return StorageUnavailable(f"database {self.url.redacted} is unavailable: {_scrub(str(exc), self.url)}")

    def _unusable(self, exc: BaseException) -> StorageUnavailable:
        """At start the message names the setting to fix, as `DatabaseUrlError`s do."""
        return StorageUnavailable(f"{FIELD}: cannot use {self.url.redacted}: {_scrub(str(exc), self.url)}")

    def connect(self) -> psycopg.Connection:
        """A connection of its own (migrations, the change feed's listener), outside the pool."""
        try:
            return psycopg.connect(self.conninfo, autocommit=True)
        except psycopg.OperationalError as exc:
            raise self.unavailable(exc) from None

    def open(self, schema: Mapping[str, Sequence[str]]) -> None:
        """Migrate, then open the pool; `StorageUnavailable` naming the problem when the database
        cannot be reached, refuses us, or lets us not create the schema (a missing privilege)."""
        try:
            with psycopg.connect(self.conninfo, autocommit=True) as conn:
                migrate(conn, schema)
        except psycopg.Error as exc:
            raise self._unusable(exc) from None
        self._pool.open()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        """A pooled connection inside a transaction: committed on success, rolled back on error."""
        last = self._no_connection
        if last is not None and time.monotonic() - last[0] < FAIL_FAST_S:
            raise StorageUnavailable(last[1])
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg.OperationalError as exc:
            error = self.unavailable(exc)
            if isinstance(exc, PoolTimeout):
                self._no_connection = (time.monotonic(), str(error))
            raise error from None

    def close(self) -> None:
        self._pool.close()


def migrate(conn: psycopg.Connection, schema: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Apply each component's migrations not applied yet, all in one transaction under the
    migration lock; the schema version of each component."""
    versions: dict[str, int] = {}
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (component text NOT NULL, "
                     "version integer NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), "
                     "PRIMARY KEY (component, version))")
        for component, migrations in schema.items():
            row = conn.execute("SELECT MAX(version) FROM schema_migrations WHERE component = %s",
                               (component,)).fetchone()
            current = (row[0] if row else None) or 0
            for version, statement in enumerate(migrations, start=1):
                if version > current:
                    conn.execute(statement)
                    conn.execute("INSERT INTO schema_migrations (component, version) VALUES (%s, %s)",
                                 (component, version))
                    log.info("migrated %s to version %d", component, version)
            versions[component] = len(migrations)
    return versions
