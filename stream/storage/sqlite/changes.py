"""The change feed on SQLite: a change log table, watched by a light poller.

Writers append to `changes` in the transaction of the write they announce. A thread per server
process checks `PRAGMA data_version` every `POLL_INTERVAL_S` (it moves only when another connection
committed, so an idle check reads no table) and, when it moved, reads the log past the last row
seen. A process's own writes call `catch_up` after committing, so its caches agree before the write
returns. Rows older than `RETENTION_S` are pruned by writers; a poller that fell further behind than
that (a suspended process) cannot know what it missed and drops everything of every topic.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

from stream.storage.changes import Change, ChangeFeed, Topic
from stream.storage.sqlite.database import BUSY_TIMEOUT_MS, DatabaseFile

log = logging.getLogger("voicewire.storage")

POLL_INTERVAL_S = 0.2
RETENTION_S = 3600.0

MIGRATIONS = (
    """CREATE TABLE changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        topic TEXT NOT NULL,
        item TEXT,
        at REAL NOT NULL
    )""",
)


def announce(conn: sqlite3.Connection, change: Change) -> None:
    """Log `change` inside the caller's write transaction (it commits or rolls back with it)."""
    now = time.time()
    conn.execute("INSERT INTO changes (topic, item, at) VALUES (?, ?, ?)", (change.topic.value, change.item, now))
    conn.execute("DELETE FROM changes WHERE at < ?", (now - RETENTION_S,))


class SqliteChangeFeed(ChangeFeed):
    def __init__(self, file: DatabaseFile, interval_s: float = POLL_INTERVAL_S) -> None:
        super().__init__()
        self._file = file
        self._interval_s = interval_s
        self._conn: sqlite3.Connection | None = None
        self._version: int | None = None
        self._last_seq = 0
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _watch(self) -> None:
        with self._poll_lock:
            if self._thread is not None or self._stop.is_set():
                return
            # Only changes from now on matter: nothing was cached before the first listener.
            self._read(deliver=False)
            self._thread = threading.Thread(target=self._run, name="voicewire-changes", daemon=True)
            self._thread.start()

    def catch_up(self) -> None:
        """Deliver every change committed so far (writers call it after their commit)."""
        with self._poll_lock:
            if self._thread is None or self._stop.is_set():
                return
            try:
                self._read(deliver=True)
            except sqlite3.Error:  # a locked or briefly unreadable file: the next tick tries again
                log.warning("change feed: cannot read %s", self._file.path, exc_info=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.catch_up()

    def _read(self, deliver: bool) -> None:
        if self._conn is None:
            if self._file.open(create=False) is None:
                return  # no file yet: nothing stored, nothing cached
            self._conn = sqlite3.connect(self._file.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False,
                                         isolation_level=None)
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        if version == self._version:
            return
        self._version = version
        rows = self._conn.execute("SELECT seq, topic, item FROM changes WHERE seq > ? ORDER BY seq",
                                  (self._last_seq,)).fetchall()
        oldest = self._conn.execute("SELECT MIN(seq) FROM changes").fetchone()[0]
        missed = self._last_seq > 0 and oldest is not None and oldest > self._last_seq + 1
        if rows:
            self._last_seq = rows[-1][0]
        if not deliver:
            return
        if missed:
            log.warning("change feed fell behind the log's %g s retention; dropping every cached record", RETENTION_S)
            for topic in Topic:
                self._deliver(Change(topic))
        for _, topic, item in rows:
            self._deliver(Change(Topic(topic), item))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._poll_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
