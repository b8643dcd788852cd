"""Opening storage from `--database-url`: one entry per backend, chosen by the URL's scheme.

Adding a backend adds its folder under `stream/storage/` and its entry here; nothing outside
`stream/storage/` changes. A backend imports its driver only when its scheme is used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from stream.storage.base import Storage
from stream.storage.url import (
    FIELD,
    POSTGRESQL_FORM,
    SQLITE_FORM,
    DatabaseUrl,
    DatabaseUrlError,
    parse_database_url,
)


def _sqlite(url: DatabaseUrl) -> Storage:
    from stream.storage.sqlite import open_sqlite

    assert url.path is not None
    return open_sqlite(url.path)


def _postgresql(url: DatabaseUrl) -> Storage:
    try:
        from stream.storage.postgresql import open_postgresql
    except ImportError as exc:
        raise DatabaseUrlError(f"{FIELD}: {url.redacted!r} needs the PostgreSQL driver ({exc}); "
                               "install voicewire[postgres]") from None
    return open_postgresql(url)


BACKENDS: dict[str, Callable[[DatabaseUrl], Storage]] = {
    "sqlite": _sqlite,
    "postgresql": _postgresql,    # postgres:// and postgresql+psycopg:// too: parse_database_url names them so
}


def open_storage(url: str | None, default_path: Path | str) -> Storage:
    """The storage `url` names, or the SQLite file at `default_path` when it is unset or empty;
    `DatabaseUrlError` (naming the field and the rule) for a URL no backend takes, and
    `StorageUnavailable` for a server database that cannot be reached."""
    if not url or not url.strip():
        return _sqlite(DatabaseUrl.sqlite(default_path))
    parsed = parse_database_url(url)
    backend = BACKENDS.get(parsed.scheme)
    if backend is None:
        raise DatabaseUrlError(f"{FIELD}: unsupported scheme {parsed.scheme!r} in {parsed.redacted!r}; "
                               f"use {SQLITE_FORM} or {POSTGRESQL_FORM}")
    return backend(parsed)
