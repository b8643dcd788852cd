"""The usage repository: characters billed per key and UTC day, the record billing reads.

`KeyRepository.charge` and `refund` write it in the same transaction as the balance change, so a
day's usage always matches what was taken from the key.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class DailyUsage:
    key_id: str
    day: str                     # YYYY-MM-DD, UTC
    charged: int                 # characters charged that day
    refunded: int                # characters given back that day (refused, failed or cancelled text)

    @property
    def characters(self) -> int:
        """What the day bills."""
        return self.charged - self.refunded

    def to_json(self) -> dict:
        return {"key_id": self.key_id, "day": self.day, "charged": self.charged, "refunded": self.refunded,
                "characters": self.characters}


class UsageRepository(ABC):
    @abstractmethod
    def daily(self, key_id: str, since: str | None = None) -> list[DailyUsage]:
        """A key's usage per day, oldest first, from day `since` (YYYY-MM-DD) on when given."""

    @abstractmethod
    def export(self) -> list[DailyUsage]:
        """Every key's usage, by key and day."""

    @abstractmethod
    def restore(self, days: list[DailyUsage]) -> None:
        """Insert exported usage as it was, in one transaction."""
