"""The server's SQLite database: one file under the data directory, shared by every component.

Each component (voices, API keys, ...) registers its own ordered list of migrations under a name;
`migrate` applies the ones not yet recorded in `schema_migrations`, each in its own transaction.
Connections are opened per operation: SQLite connections are cheap, cannot be shared across
threads safely, and WAL mode plus a busy timeout lets several server processes use one file.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
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
