"""Storage: repository interfaces (keys and credits, voices, usage), the invalidation hook for caches
that must agree across processes, and the backends behind them (SQLite, PostgreSQL).

Everything above this package (accounts, voices, the server) uses only what is exported here;
SQL lives only in the backends.
"""

from stream.storage.backends import open_storage
from stream.storage.base import Storage, StorageUnavailable
from stream.storage.cache import SharedRecordCache
from stream.storage.changes import PROPAGATION_BOUND_S, Change, ChangeFeed, Topic
from stream.storage.holds import CreditHolds, Hold, SweptHold
from stream.storage.keys import ApiKey, ChargeRefused, KeyRepository, Refusal
from stream.storage.leases import LEASE_TTL_S, SessionLeases
from stream.storage.url import DatabaseUrl, DatabaseUrlError, parse_database_url
from stream.storage.usage import DailyUsage, UsageRepository
from stream.storage.voices import StoredVoice, VoiceRepository

__all__ = [
    "LEASE_TTL_S",
    "PROPAGATION_BOUND_S",
    "ApiKey",
    "Change",
    "ChangeFeed",
    "ChargeRefused",
    "CreditHolds",
    "DailyUsage",
    "DatabaseUrl",
    "DatabaseUrlError",
    "Hold",
    "KeyRepository",
    "Refusal",
    "SessionLeases",
    "SharedRecordCache",
    "Storage",
    "StorageUnavailable",
    "StoredVoice",
    "SweptHold",
    "Topic",
    "UsageRepository",
    "VoiceRepository",
    "open_storage",
    "parse_database_url",
]
