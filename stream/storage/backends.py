"""Opening storage from `--database-url`: one entry per backend, chosen by the URL's scheme.

Adding a backend (PostgreSQL is next) adds its folder under `stream/storage/` and replaces its
entry here; nothing outside `stream/storage/` changes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from stream.storage.base import Storage
from stream.storage.url import FIELD, SQLITE_FORM, DatabaseUrl, DatabaseUrlError, parse_database_url


def _sqlite(url: DatabaseUrl) -> Storage:
    from stream.storage.sqlite import open_sqlite

    assert url.path is not None
    return open_sqlite(url.path)


def _postgresql(url: DatabaseUrl) -> Storage:
    raise DatabaseUrlError(f"{FIELD}: PostgreSQL support is not built yet (a later issue adds it); got "
                           f"{url.redacted!r}. Use {SQLITE_FORM}, or leave it unset for <data-dir>/voicewire.sqlite3")


BACKENDS: dict[str, Callable[[DatabaseUrl], Storage]] = {
    "sqlite": _sqlite,
    "postgresql": _postgresql,
    "postgres": _postgresql,
}


def open_storage(url: str | None, default_path: Path | str) -> Storage:
    """The storage `url` names, or the SQLite file at `default_path` when it is unset or empty;
    `DatabaseUrlError` (naming the field and the rule) for a URL no backend takes."""
    if not url or not url.strip():
        return _sqlite(DatabaseUrl.sqlite(default_path))
    parsed = parse_database_url(url)
    backend = BACKENDS.get(parsed.scheme)
    if backend is None:
        raise DatabaseUrlError(f"{FIELD}: unsupported scheme {parsed.scheme!r} in {parsed.redacted!r}; "
                               f"use {SQLITE_FORM} (PostgreSQL is not built yet)")
    return backend(parsed)
