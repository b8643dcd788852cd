"""`--database-url`: which storage a server (and `voicewire keys`) uses, parsed once at start.

Accepted: `sqlite:///ABSOLUTE/PATH` (the file; `sqlite:////abs/path`, SQLAlchemy's spelling, means
the same), `postgresql://USER:PASSWORD@HOST:PORT/DATABASE` (also `postgres://` and
`postgresql+psycopg://`; libpq's query parameters such as `?sslmode=require` pass through), or
nothing for `<data-dir>/voicewire.sqlite3`. Every other form is refused at start with one
`DatabaseUrlError` naming the field and the rule. A URL's password is never shown: messages and
logs use `DatabaseUrl.redacted`; only the backend reads `DatabaseUrl.dsn`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

FIELD = "database_url"
SQLITE_FORM = "sqlite:///ABSOLUTE/PATH"
POSTGRESQL_FORM = "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_CREDENTIALS = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://).*@", re.DOTALL)   # to the last @: a password may hold / or @


class DatabaseUrlError(ValueError):
    """A database URL that cannot be used; the message names the field and the rule."""


def redact(url: str) -> str:
    """`url` with everything between `://` and the last `@` (user and password) replaced by `***`."""
    return _CREDENTIALS.sub(r"\1***@", url)


@dataclass(frozen=True)
class DatabaseUrl:
    """A parsed database URL: the backend (`scheme`, its base name, e.g. `sqlite`) and, for SQLite, the
    file; for a server database, `dsn`, the URL to connect with (password included, never printed)."""

    scheme: str
    redacted: str
    path: Path | None = None
    dsn: str | None = field(default=None, repr=False)

    @classmethod
    def sqlite(cls, path: Path | str) -> DatabaseUrl:
        path = Path(path)
        return cls("sqlite", f"sqlite://{path}", path)


def parse_database_url(url: str) -> DatabaseUrl:
    """The URL's backend and location, or `DatabaseUrlError` naming the rule it breaks."""
    shown = redact(url.strip())
    match = _SCHEME.match(url.strip())
    if match is None:
        raise DatabaseUrlError(f"{FIELD}: {shown!r} is not a URL; use {SQLITE_FORM} or "
                               f"{POSTGRESQL_FORM} (or leave it unset for <data-dir>/voicewire.sqlite3)")
    scheme = match.group(1).lower().split("+", 1)[0]   # postgresql+psycopg:// is PostgreSQL too
    if scheme == "sqlite":
        return _sqlite(url.strip(), shown)
    if scheme in ("postgresql", "postgres"):   # libpq takes both spellings, not the +driver suffix
        return DatabaseUrl("postgresql", shown, dsn=_SCHEME.sub("postgresql://", url.strip(), count=1))
    return DatabaseUrl(scheme, shown)


def _sqlite(url: str, shown: str) -> DatabaseUrl:
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise DatabaseUrlError(f"{FIELD}: {shown!r} is malformed ({exc}); use {SQLITE_FORM}") from None
    if parts.netloc:
        raise DatabaseUrlError(f"{FIELD}: a sqlite URL names a local file and has no host ({shown!r}); "
                               f"use {SQLITE_FORM}")
    if parts.query or parts.fragment:
        raise DatabaseUrlError(f"{FIELD}: a sqlite URL takes no query or fragment ({shown!r}); use {SQLITE_FORM}")
    path = unquote(parts.path)
    if not path.strip("/"):
        raise DatabaseUrlError(f"{FIELD}: {shown!r} names no file; use {SQLITE_FORM}")
    if path.endswith("/"):
        raise DatabaseUrlError(f"{FIELD}: {shown!r} names a directory, not a file; use {SQLITE_FORM}")
    return DatabaseUrl.sqlite("/" + path.lstrip("/"))
