"""`Storage`: the repositories and the change feed of one database, as a backend opens them."""

from __future__ import annotations

from dataclasses import dataclass

from stream.storage.changes import ChangeFeed
from stream.storage.keys import KeyRepository
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

    def close(self) -> None:
        """Stop watching for changes. Repositories hold no connection between operations."""
        self.changes.close()
