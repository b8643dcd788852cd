"""API-key secrets: made here, shown once, and only ever stored as a SHA-256.

Keys are 32 random bytes, so a fast hash cannot be brute forced, and a leaked database gives no
usable key. The key records themselves (balances, revocation) are the storage's `KeyRepository`.
"""

from __future__ import annotations

import hashlib
import secrets

from stream.storage import ApiKey, KeyRepository

KEY_PREFIX = "vw_"
SHOWN_PREFIX_CHARS = 8      # of the secret, kept to recognise a key in listings ("vw_AbC12...")


def key_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_key(keys: KeyRepository, name: str | None = None, credits: int | None = None) -> tuple[ApiKey, str]:
    """A new key and its secret; the secret is shown once and never stored."""
    if credits is not None and credits < 0:
        raise ValueError("credits: must be >= 0")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = keys.create("key_" + secrets.token_hex(6), name, key_digest(secret), secret[:SHOWN_PREFIX_CHARS], credits)
    return key, secret


def find_key(keys: KeyRepository, secret: str) -> ApiKey | None:
    """The active key with this secret, or None."""
    return keys.find_active(key_digest(secret)) if secret.startswith(KEY_PREFIX) else None
