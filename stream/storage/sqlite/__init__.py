"""The SQLite backend: one file (default `<data-dir>/voicewire.sqlite3`) shared by every server process
on a machine, in WAL mode with a busy timeout."""

from __future__ import annotations

from pathlib import Path

from stream.storage.base import Storage
from stream.storage.sqlite import changes, holds, keys, leases, voices
from stream.storage.sqlite.database import DatabaseFile
from stream.storage.url import DatabaseUrl

SCHEMA = {
    "api_keys": keys.KEY_MIGRATIONS,
    "key_usage": keys.USAGE_MIGRATIONS,
    "voices": voices.MIGRATIONS,
    "changes": changes.MIGRATIONS,
    "session_leases": leases.MIGRATIONS,
    "credit_holds": holds.MIGRATIONS,
}


def open_sqlite(path: Path) -> Storage:
    """Storage on the file at `path`; nothing is created until something is stored."""
    file = DatabaseFile(path, SCHEMA)
    feed = changes.SqliteChangeFeed(file)
    return Storage(url=DatabaseUrl.sqlite(path), keys=keys.SqliteKeyRepository(file, feed),
                   voices=voices.SqliteVoiceRepository(file, feed), usage=keys.SqliteUsageRepository(file),
                   changes=feed, leases=leases.SqliteSessionLeases(file),
                   holds=holds.SqliteCreditHolds(file))
