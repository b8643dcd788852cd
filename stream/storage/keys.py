"""The key repository: API keys and their credit balances, as stored.

Storage never sees a key's secret: only its SHA-256 (`digest`) and the first characters shown in
listings (`prefix`). Balances are in credits, one per character of accepted text; `credits` None
means unlimited. Every balance change is one atomic operation in the database, so concurrent
requests of one key, in one or many server processes, can never overdraw it or lose an update.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass

from stream.storage.holds import Hold


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str | None
    prefix: str
    credits: int | None          # None = unlimited
    characters_used: int
    created_at: str              # ISO 8601, UTC
    last_used_at: str | None
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "prefix": self.prefix, "credits": self.credits,
                "characters_used": self.characters_used, "created_at": self.created_at,
                "last_used_at": self.last_used_at, "revoked_at": self.revoked_at}


@dataclass(frozen=True)
class StoredKey:
    """A key as a backend holds it, secret digest included: what `voicewire db copy` moves."""

    key: ApiKey
    digest: str


class Refusal(str, enum.Enum):
    REVOKED = "revoked"                  # or no such key
    INSUFFICIENT = "insufficient"


class ChargeRefused(Exception):
    """A charge that took nothing: the key is revoked (or unknown), or its balance is short."""

    def __init__(self, reason: Refusal, credits: int | None) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.credits = credits


class KeyRepository(ABC):
    """Keys by id and by digest. Creating or revoking a key is announced on the storage's change feed."""

    @abstractmethod
    def create(self, key_id: str, name: str | None, digest: str, prefix: str, credits: int | None) -> ApiKey:
        """Store a new active key (`credits` >= 0 or None) and return it."""

    @abstractmethod
    def list(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""

    @abstractmethod
    def get(self, key_id: str) -> ApiKey | None:
        ...

    @abstractmethod
    def find_active(self, digest: str) -> ApiKey | None:
        """The active key whose secret has this SHA-256, or None."""

    @abstractmethod
    def has_keys(self) -> bool:
        """Whether any key was ever created (revoked ones count): then the server needs a key on every request."""

    @abstractmethod
    def revoke(self, key_id: str) -> bool:
        """Revoke an active key; False when there is no such active key. A revoked key stays listed."""

    @abstractmethod
    def add_credits(self, key_id: str, amount: int) -> int:
        """Add to a metered key's balance (a negative amount takes away, down to 0); the new balance.
        `KeyError` for an unknown key, `ValueError` for an unlimited one."""

    @abstractmethod
    def charge(self, key_id: str, characters: int, hold: Hold | None = None) -> int | None:
        """Take `characters` credits from an active key and count them as used (`UsageRepository`),
        atomically: the balance left (None = unlimited), or `ChargeRefused` with nothing taken. With a
        `hold`, the characters are also pending against that session, in the same transaction
        (`stream.storage.holds`)."""

    @abstractmethod
    def refund(self, key_id: str, characters: int, session_id: str | None = None) -> int | None:
        """Give back credits taken for text that was never synthesized (and lower `session_id`'s pending
        characters, in the same transaction); the balance, None if unlimited or unknown."""

    @abstractmethod
    def export(self) -> list[StoredKey]:
        """Every key with its digest, balance, usage count and times, oldest first."""

    @abstractmethod
    def restore(self, keys: list[StoredKey]) -> None:
        """Insert exported keys as they were (ids, digests, balances, times), in one transaction."""
