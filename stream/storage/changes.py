"""The invalidation hook: how a process learns that shared records changed, so its caches can drop them.

Caches of records that several server processes share (a key's lookup, a stored voice's prepared
conditioning) subscribe to a `ChangeFeed`. Every write that can make a cached answer wrong (a key
created or revoked, a voice added or deleted) is announced as a `Change` by the storage that made it.
A backend delivers changes made through it in this process before the write returns, and changes
made by other processes within `PROPAGATION_BOUND_S`: SQLite by polling a change log, PostgreSQL
by LISTEN/NOTIFY. Balances are not announced: they are never cached, every charge is a
conditional update in the database.
"""

from __future__ import annotations

import enum
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("voicewire.storage")

PROPAGATION_BOUND_S = 1.0   # a change by another process reaches every listener within this


class Topic(str, enum.Enum):
    KEYS = "keys"
    VOICES = "voices"


@dataclass(frozen=True)
class Change:
    """`item` (a key or voice id) of `topic` changed; `item` None: anything in `topic` may have changed."""

    topic: Topic
    item: str | None = None


Listener = Callable[[Change], None]


class ChangeFeed(ABC):
    """Delivers `Change`s to listeners, on a thread of the feed's choosing (never the event loop's).

    Listeners must be quick and thread-safe: drop a cache entry, nothing that blocks.
    """

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> None:
        """Call `listener` for every change from now on; a backend starts watching at the first one."""
        with self._lock:
            self._listeners.append(listener)
        self._watch()

    def _deliver(self, change: Change) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(change)
            except Exception:  # one broken cache must not keep the others stale
                log.exception("change listener failed on %s", change)

    @abstractmethod
    def _watch(self) -> None:
        """Start watching for other processes' changes (idempotent)."""

    @abstractmethod
    def close(self) -> None:
        """Stop watching; no listener is called afterwards."""

