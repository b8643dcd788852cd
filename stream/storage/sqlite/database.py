"""The SQLite file: connections, and each component's ordered migrations.

Each component (voices, API keys, ...) registers its own ordered list of migrations under a name;
`migrate` applies the ones not yet recorded in `schema_migrations`, each in its own transaction.
Connections are opened per operation: SQLite connections are cheap, cannot be shared across
threads safely, and WAL mode plus a busy timeout lets several server processes use one file.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

BUSY_TIMEOUT_MS = 5_000


class Database:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate_lock = threading.Lock()
        with self.connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                         "component TEXT NOT NULL, version INTEGER NOT NULL, "
                         "applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (component, version))")

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection inside a transaction: committed on success, rolled back on error, then closed."""
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    def migrate(self, component: str, migrations: Sequence[str]) -> int:
        """Apply `component`'s migrations that are not applied yet; returns the schema version."""
        with self._migrate_lock, self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")  # two processes starting at once migrate one after the other
            row = conn.execute("SELECT MAX(version) FROM schema_migrations WHERE component = ?",
                               (component,)).fetchone()
            current = row[0] or 0
            for version, statement in enumerate(migrations, start=1):
                if version <= current:
                    continue
                for part in statement.split(";"):
                    if part.strip():
                        conn.execute(part)
                conn.execute("INSERT INTO schema_migrations (component, version) VALUES (?, ?)", (component, version))
            return len(migrations)


class DatabaseFile:
    """The file all repositories of one storage share, opened and migrated on first use.

    Reads of a file that does not exist yet see an empty database and create nothing, so a server
    that never stores a key or a voice leaves no file behind; the first write creates it.
    """

    def __init__(self, path: Path, schema: Mapping[str, Sequence[str]]) -> None:
        self.path = path
        self._schema = schema
        self._db: Database | None = None
        self._lock = threading.Lock()

    def open(self, create: bool) -> Database | None:
        with self._lock:
            if self._db is None:
                if not create and not self.path.exists():
                    return None
                db = Database(self.path)
                for component, migrations in self._schema.items():
                    db.migrate(component, migrations)
                self._db = db
            return self._db

    @contextlib.contextmanager
    def existing(self) -> Iterator[sqlite3.Connection | None]:
        """A transaction on the file, or None when there is no file yet (nothing stored, nothing to change)."""
        db = self.open(create=False)
        if db is None:
            yield None
            return
        with db.connect() as conn:
            yield conn

    def connect(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A transaction on the file, created (and migrated) if needed."""
        db = self.open(create=True)
        assert db is not None
        return db.connect()
