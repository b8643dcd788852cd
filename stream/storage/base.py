"""`Storage`: the repositories and the change feed of one database, as a backend opens them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stream.storage.changes import ChangeFeed
from stream.storage.holds import CreditHolds
from stream.storage.keys import KeyRepository
from stream.storage.leases import SessionLeases
from stream.storage.url import DatabaseUrl
from stream.storage.usage import UsageRepository
from stream.storage.voices import VoiceRepository


@dataclass(frozen=True)
class Storage:
    url: DatabaseUrl
    keys: KeyRepository
    voices: VoiceRepository
    usage: UsageRepository
    changes: ChangeFeed
    leases: SessionLeases
    holds: CreditHolds
    on_close: Callable[[], None] | None = None   # the backend's own cleanup (PostgreSQL: its connection pool)

    def close(self) -> None:
        """Stop watching for changes, then let the backend release what it holds."""
        self.changes.close()
        if self.on_close is not None:
            self.on_close()


class StorageUnavailable(RuntimeError):
    """The database cannot be reached (down, refused, timed out). Backends raise it from any
    repository call instead of their driver's own errors, so the server can answer 503-style and
    stay up; the message names the database by its redacted URL, never its password."""
