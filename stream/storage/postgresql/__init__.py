"""The PostgreSQL backend: one database shared by every replica, on any number of machines.

Opening it connects once and migrates the schema, so a wrong URL, a refused password or an
unreachable server stops a server at start with `StorageUnavailable` naming the (redacted) URL.
"""

from __future__ import annotations

from stream.storage.base import Storage
from stream.storage.postgresql import changes, holds, keys, leases, voices
from stream.storage.postgresql.database import Database
from stream.storage.url import DatabaseUrl

SCHEMA = {
    "api_keys": keys.KEY_MIGRATIONS,
    "key_usage": keys.USAGE_MIGRATIONS,
    "voices": voices.MIGRATIONS,
    "session_leases": leases.MIGRATIONS,
    "credit_holds": holds.MIGRATIONS,
}


def open_postgresql(url: DatabaseUrl) -> Storage:
    """Storage on the database `url` names, migrated to the current schema."""
    db = Database(url)
    db.open(SCHEMA)
    feed = changes.PgChangeFeed(db)
    return Storage(url=url, keys=keys.PgKeyRepository(db, feed), voices=voices.PgVoiceRepository(db, feed),
                   usage=keys.PgUsageRepository(db), changes=feed, leases=leases.PgSessionLeases(db),
                   holds=holds.PgCreditHolds(db),
                   on_close=db.close)
