"""A bounded cache of answers derived from shared records, kept right by the invalidation hook."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class SharedRecordCache(Generic[K, V]):
    """An LRU map, safe across threads, whose entries a `ChangeFeed` listener drops.

    Reading storage and caching the answer are two steps; a change can land between them. So a
    reader takes `token()` before it reads, and `put` stores the answer only if nothing was dropped
    since: a stale answer is returned once, never cached.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = max(1, capacity)
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._drops = 0
        self._lock = threading.Lock()

    def token(self) -> int:
        with self._lock:
            return self._drops

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V, token: int) -> V:
        """Cache `value` unless a drop happened after `token` was taken; returns `value` either way."""
        with self._lock:
            if token == self._drops:
                self._entries[key] = value
                self._entries.move_to_end(key)
                while len(self._entries) > self._capacity:
                    self._entries.popitem(last=False)
        return value

    def drop(self, stale: Callable[[K, V], bool]) -> None:
        """Remove every entry `stale` selects, and void answers read before now."""
        with self._lock:
            self._drops += 1
            for key in [k for k, v in self._entries.items() if stale(k, v)]:
                del self._entries[key]
