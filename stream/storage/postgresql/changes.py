"""The change feed on PostgreSQL: NOTIFY in the writing transaction, LISTEN on a dedicated connection.

A write announces its change with `pg_notify` inside its own transaction, so the notification is
sent when (and only if) the write commits. Each process listens on one connection of its own, on a
thread; notifications arrive within milliseconds of the commit, well inside
`PROPAGATION_BOUND_S`. The writing process delivers its own changes before the write returns, and
skips them when they come back over LISTEN (each payload names the feed that sent it).

While the listening connection is down (the database restarted, the network dropped) notifications
are lost, so after reconnecting the feed delivers `Change(topic)` for every topic: caches drop
everything they may have missed.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid

import psycopg

from stream.storage.base import StorageUnavailable
from stream.storage.changes import Change, ChangeFeed, Topic
from stream.storage.postgresql.database import Database

log = logging.getLogger("voicewire.storage")

CHANNEL = "voicewire_changes"
WAIT_S = 0.25          # how often the listener looks up from its connection to see whether it must stop
RETRY_S = 0.5          # between reconnection attempts while the database is down


class PgChangeFeed(ChangeFeed):
    def __init__(self, db: Database) -> None:
        super().__init__()
        self._db = db
        self.origin = uuid.uuid4().hex
        self._started = False
        self._start_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None

    def announce(self, conn: psycopg.Connection, change: Change) -> None:
        """Send `change` to every process when the caller's transaction commits."""
        payload = json.dumps({"topic": change.topic.value, "item": change.item, "origin": self.origin})
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))

    def committed(self, change: Change) -> None:
        """Deliver this process's own change (the writer calls it after its commit)."""
        if self._started:
            self._deliver(change)

    def _watch(self) -> None:
        with self._start_lock:
            if self._started or self._stop.is_set():
                return
            self._started = True
            try:   # listening before subscribe returns: no change from now on is missed
                self._conn = self._listen()
            except StorageUnavailable as exc:
                log.warning("change feed: %s; retrying", exc)
            self._thread = threading.Thread(target=self._run, name="voicewire-changes", daemon=True)
            self._thread.start()

    def _listen(self) -> psycopg.Connection:
        conn = self._db.connect()
        conn.execute(f"LISTEN {CHANNEL}")
        return conn

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._conn is None:
                try:
                    self._conn = self._listen()
                except StorageUnavailable:
                    self._stop.wait(RETRY_S)
                    continue
                log.info("change feed: listening again; dropping every cached record")
                for topic in Topic:
                    self._deliver(Change(topic))
            try:
                for notify in self._conn.notifies(timeout=WAIT_S):
                    self._receive(notify.payload)
            except psycopg.Error as exc:
                if self._stop.is_set():
                    return
                log.warning("change feed: lost the database connection (%s); reconnecting",
                            self._db.unavailable(exc))
                self._conn.close()
                self._conn = None

    def _receive(self, payload: str) -> None:
        try:
            message = json.loads(payload)
            change = Change(Topic(message["topic"]), message["item"])
        except (ValueError, KeyError, TypeError):
            log.warning("change feed: ignoring a malformed notification on %s", CHANNEL)
            return
        if message.get("origin") != self.origin:
            self._deliver(change)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
