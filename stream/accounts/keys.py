"""API keys and their credits, in the server database (the same SQLite file as the voices).

Only a SHA-256 of each key is stored: keys are 32 random bytes, so a fast hash cannot be brute
forced, and a leaked database file gives no usable key. A key's `credits` is its balance in the
billing unit, one credit per character of text accepted for synthesis; NULL means unlimited.
Every charge is one conditional UPDATE (`credits >= n`), so concurrent requests and websocket turns
of one key, in one or several server processes, can never overdraw it or lose an update.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from stream.core.errors import InsufficientCredits
from stream.storage.sqlite import Database

KEY_PREFIX = "vw_"
SHOWN_PREFIX_CHARS = 8      # of the secret, kept to recognise a key in listings ("vw_AbC12...")

MIGRATIONS = [
    """
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        name TEXT,
        key_sha256 TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        credits INTEGER CHECK (credits IS NULL OR credits >= 0),
        characters_used INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
        last_used_at TEXT,
        revoked_at TEXT
    )
    """,
]
_NOW = "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str | None
    prefix: str
    credits: int | None          # None = unlimited
    characters_used: int
    created_at: str
    last_used_at: str | None
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "prefix": self.prefix, "credits": self.credits,
                "characters_used": self.characters_used, "created_at": self.created_at,
                "last_used_at": self.last_used_at, "revoked_at": self.revoked_at}


def key_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _row(row: sqlite3.Row) -> ApiKey:
    return ApiKey(row["id"], row["name"], row["prefix"], row["credits"], row["characters_used"],
                  row["created_at"], row["last_used_at"], row["revoked_at"])


class KeyStore:
    """Keys in the database at `path`. A server opens no file until one exists (`voicewire keys create`)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db: Database | None = None
        self._lock = threading.Lock()

    def _database(self, create: bool) -> Database | None:
        with self._lock:
            if self._db is None:
                if not create and not self.path.exists():
                    return None
                db = Database(self.path)
                db.migrate("api_keys", MIGRATIONS)
                self._db = db
            return self._db

    def _existing(self) -> Database:
        db = self._database(create=False)
        if db is None:
            raise KeyError(f"no key database at {self.path}; create a key first (voicewire keys create)")
        return db

    # -- management (the `voicewire keys` command) --------------------------------------------
    def create(self, name: str | None = None, credits: int | None = None) -> tuple[ApiKey, str]:
        """A new key and its secret; the secret is shown once and never stored."""
        if credits is not None and credits < 0:
            raise ValueError("credits: must be >= 0")
        db = self._database(create=True)
        assert db is not None
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = "key_" + secrets.token_hex(6)
        with db.connect() as conn:
            conn.execute("INSERT INTO api_keys (id, name, key_sha256, prefix, credits) VALUES (?, ?, ?, ?, ?)",
                         (key_id, name, key_digest(secret), secret[:SHOWN_PREFIX_CHARS], credits))
            row = conn.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        return _row(row), secret

    def list(self) -> list[ApiKey]:
        db = self._database(create=False)
        if db is None:
            return []
        with db.connect() as conn:
            return [_row(r) for r in conn.execute("SELECT * FROM api_keys ORDER BY created_at, id")]

    def get(self, key_id: str) -> ApiKey | None:
        db = self._database(create=False)
        if db is None:
            return None
        with db.connect() as conn:
            row = conn.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        return _row(row) if row else None

    def revoke(self, key_id: str) -> bool:
        """True if an active key was revoked. Revoked keys stay listed (and keep the server closed)."""
        db = self._database(create=False)
        if db is None:
            return False
        with db.connect() as conn:
            cur = conn.execute(f"UPDATE api_keys SET revoked_at = {_NOW} WHERE id = ? AND revoked_at IS NULL",
                               (key_id,))
        return cur.rowcount == 1

    def add_credits(self, key_id: str, amount: int) -> int:
        """Add to a metered key's balance (a negative amount takes away, down to 0); the new balance."""
        with self._existing().connect() as conn:
            row = conn.execute("UPDATE api_keys SET credits = MAX(0, credits + ?) "
                               "WHERE id = ? AND credits IS NOT NULL RETURNING credits", (amount, key_id)).fetchone()
            if row is None:
                exists = conn.execute("SELECT credits FROM api_keys WHERE id = ?", (key_id,)).fetchone()
                if exists is None:
                    raise KeyError(f"no key with id {key_id!r}")
                raise ValueError(f"key {key_id} has unlimited credits; it is not metered")
        return int(row[0])

    # -- serving ------------------------------------------------------------------------------
    def has_keys(self) -> bool:
        """Whether any key was ever created: then every request needs one, even if all are revoked."""
        db = self._database(create=False)
        if db is None:
            return False
        with db.connect() as conn:
            return conn.execute("SELECT 1 FROM api_keys LIMIT 1").fetchone() is not None

    def lookup(self, secret: str) -> ApiKey | None:
        """The active key with this secret, or None."""
        db = self._database(create=False)
        if db is None or not secret.startswith(KEY_PREFIX):
            return None
        with db.connect() as conn:
            row = conn.execute("SELECT * FROM api_keys WHERE key_sha256 = ? AND revoked_at IS NULL",
                               (key_digest(secret),)).fetchone()
        return _row(row) if row else None

    def charge(self, key_id: str, characters: int, context_id: str | None = None) -> int | None:
        """Take `characters` credits atomically; the balance left (None = unlimited), or
        `InsufficientCredits` with nothing taken."""
        with self._existing().connect() as conn:
            row = conn.execute(
                f"UPDATE api_keys SET credits = CASE WHEN credits IS NULL THEN NULL ELSE credits - :n END, "
                f"characters_used = characters_used + :n, last_used_at = {_NOW} "
                "WHERE id = :id AND revoked_at IS NULL AND (credits IS NULL OR credits >= :n) RETURNING credits",
                {"n": characters, "id": key_id}).fetchone()
            if row is not None:
                return row[0]
            left = conn.execute("SELECT credits, revoked_at FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        if left is None or left["revoked_at"] is not None:
            raise InsufficientCredits("x-api-key: the key was revoked", context_id=context_id)
        raise InsufficientCredits(f"credits: this needs {characters} credits (one per character); "
                                  f"the key has {left['credits']} left", context_id=context_id)

    def refund(self, key_id: str, characters: int) -> int | None:
        """Give back credits taken for text that was never synthesized (a refused or failed request)."""
        with self._existing().connect() as conn:
            row = conn.execute(
                "UPDATE api_keys SET credits = CASE WHEN credits IS NULL THEN NULL ELSE credits + :n END, "
                "characters_used = MAX(0, characters_used - :n) WHERE id = :id RETURNING credits",
                {"n": characters, "id": key_id}).fetchone()
        return row[0] if row else None

