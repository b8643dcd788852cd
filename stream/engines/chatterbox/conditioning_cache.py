"""Prepared voice conditioning, cached in memory (LRU) and on disk, keyed by content and model.

A key is the content hash of the decoded reference audio plus the engine/model identity, so the
same clip uploaded twice (or under two names) is prepared once, a restart reads the prepared
tensors back instead of recomputing them, and new weights never reuse stale conditioning. Values
are engine objects; the engine supplies how they become bytes and back.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

log = logging.getLogger("voicewire.conditioning")

T = TypeVar("T")


class ConditioningCache(Generic[T]):
    """Memory LRU in front of a folder of serialized entries; `get_or_prepare` does the lookup."""

    def __init__(self, directory: Path | None, capacity: int, identity: str,
                 dump: Callable[[T], bytes], load: Callable[[bytes], T]) -> None:
        self.directory = directory
        self.capacity = max(1, capacity)
        self.identity = identity
        self._dump, self._load = dump, load
        self._memory: OrderedDict[str, T] = OrderedDict()
        self._lock = threading.Lock()
        # Per-key preparation locks with their holder/waiter counts; an entry lives only while
        # some caller is preparing or waiting for that key, so the dict never outgrows the callers.
        self._key_locks: dict[str, tuple[threading.Lock, int]] = {}
        self.stats = {"memory": 0, "disk": 0, "prepared": 0}
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def key(self, content_digest: str) -> str:
        return hashlib.sha256(f"{self.identity}:{content_digest}".encode()).hexdigest()[:32]

    def _path(self, key: str) -> Path | None:
        return None if self.directory is None else self.directory / f"{key}.bin"

    def _remember(self, key: str, value: T) -> None:
        with self._lock:
            self._memory[key] = value
            self._memory.move_to_end(key)
            while len(self._memory) > self.capacity:
                self._memory.popitem(last=False)

    def _from_memory(self, key: str) -> T | None:
        with self._lock:
            value = self._memory.get(key)
            if value is not None:
                self._memory.move_to_end(key)
            return value

    def get_or_prepare(self, content_digest: str, prepare: Callable[[], T]) -> tuple[T, str]:
        """The cached value for this content, preparing it at most once; also says where it came from."""
        key = self.key(content_digest)
        if (value := self._from_memory(key)) is not None:
            self.stats["memory"] += 1
            return value, "memory"
        with self._lock:
            key_lock, users = self._key_locks.get(key, (threading.Lock(), 0))
            self._key_locks[key] = (key_lock, users + 1)
        try:
            return self._prepare_once(key, key_lock, prepare)
        finally:
            with self._lock:
                key_lock, users = self._key_locks[key]
                if users == 1:
                    del self._key_locks[key]
                else:
                    self._key_locks[key] = (key_lock, users - 1)

    def _prepare_once(self, key: str, key_lock: threading.Lock, prepare: Callable[[], T]) -> tuple[T, str]:
        with key_lock:  # a second request for the same voice waits for the first preparation
            if (value := self._from_memory(key)) is not None:
                self.stats["memory"] += 1
                return value, "memory"
            path = self._path(key)
            if path is not None and path.is_file():
                try:
                    value = self._load(path.read_bytes())
                except Exception as exc:  # a torn or foreign file is recomputed, not fatal
                    log.warning("conditioning cache: unreadable %s (%s); preparing again", path, exc)
                else:
                    self._remember(key, value)
                    self.stats["disk"] += 1
                    return value, "disk"
            value = prepare()
            self._remember(key, value)
            self.stats["prepared"] += 1
            if path is not None:
                self._write(path, self._dump(value))
            return value, "prepared"

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".bin")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
