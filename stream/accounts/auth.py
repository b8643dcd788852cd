"""API-key checks for HTTP and websocket requests, and charging a caller's credits.

Keys come from two places: static keys given at start (`--api-key`, unmetered) and the key
database (`voicewire keys`, optionally metered). With neither, the server is open (and warns at
start when bound beyond loopback). Once any key was ever created in the database, every request
needs a key, even after all are revoked: revoking the last key must not open the server.

Database keys that were found once are remembered, so most requests touch no database; the cache
drops a key when the storage's change feed says it changed (revoked here or in another process,
within `PROPAGATION_BOUND_S`). Balances are never cached: each charge is decided by the database.
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass

from stream.accounts.keys import KEY_PREFIX, key_digest
from stream.core.errors import InsufficientCredits, Unauthorized
from stream.storage import Change, ChargeRefused, Hold, Refusal, SharedRecordCache, Storage, Topic

KEY_CACHE_SIZE = 4096


@dataclass(frozen=True)
class Caller:
    """An authenticated caller. `key_id` never holds a secret; only database keys are metered."""

    key_id: str
    metered: bool


class Authenticator:
    def __init__(self, static_keys: tuple[str, ...], storage: Storage | None = None) -> None:
        self._static = tuple(static_keys)
        self._keys = storage.keys if storage is not None else None
        self._known: SharedRecordCache[str, str] = SharedRecordCache(KEY_CACHE_SIZE)   # digest -> key id
        self._closed = False
        if storage is not None:
            storage.changes.subscribe(self._on_change)

    def _on_change(self, change: Change) -> None:
        if change.topic is Topic.KEYS:
            self._known.drop(lambda _, key_id: change.item is None or key_id == change.item)

    @property
    def required(self) -> bool:
        """Whether requests need a key. Reads the database until a key exists; keys are never deleted."""
        if not (self._static or self._closed):
            self._closed = self._keys is not None and self._keys.has_keys()
        return bool(self._static) or self._closed

    def authenticate(self, key: str | None, sent_as: str = "x-api-key") -> Caller | None:
        """The caller (None when the server is open), or `Unauthorized` naming `sent_as`, the form the
        client sent the key in (`stream.server.credentials`). May read the database: call it off the
        event loop."""
        if not self.required:
            return None
        if key is None:
            raise Unauthorized("API key: missing (send the x-api-key header, Authorization: Bearer or the "
                               "api_key query parameter)")
        if not key:
            raise Unauthorized(f"{sent_as}: empty API key")
        for known in self._static:
            if hmac.compare_digest(key.encode(), known.encode()):
                return Caller(key_id="static-" + key_digest(known)[:12], metered=False)
        if self._keys is None or not key.startswith(KEY_PREFIX):
            raise Unauthorized(f"{sent_as}: invalid or revoked API key")
        digest = key_digest(key)
        if (key_id := self._known.get(digest)) is None:
            token = self._known.token()
            record = self._keys.find_active(digest)
            if record is None:
                raise Unauthorized(f"{sent_as}: invalid or revoked API key")
            key_id = self._known.put(digest, record.id, token)
        return Caller(key_id=key_id, metered=True)

    async def charge(self, caller: Caller | None, characters: int, context_id: str | None = None,
                     hold: Hold | None = None) -> int | None:
        """Take credits for `characters` of text before it is synthesized: the balance left (None when
        the caller is unmetered or unlimited), or `InsufficientCredits` with nothing taken. A websocket
        session passes its `hold`: the characters stay pending until their audio went out."""
        if caller is None or not caller.metered or self._keys is None:
            return None
        try:
            return await asyncio.to_thread(self._keys.charge, caller.key_id, characters, hold)
        except ChargeRefused as refused:
            if refused.reason is Refusal.REVOKED:
                raise InsufficientCredits("x-api-key: the key was revoked", context_id=context_id) from None
            raise InsufficientCredits(f"credits: this needs {characters} credits (one per character); "
                                      f"the key has {refused.credits} left", context_id=context_id) from None

    async def usage(self, caller: Caller | None, characters: int) -> dict | None:
        """`done.usage` of a websocket turn for a metered key: the characters billed and the balance now."""
        if caller is None or not caller.metered or self._keys is None:
            return None
        key = await asyncio.to_thread(self._keys.get, caller.key_id)
        return {"characters": characters, "remaining_credits": key.credits if key is not None else None}

    async def refund(self, caller: Caller | None, characters: int, session_id: str | None = None) -> int | None:
        """Give back credits taken for text that was then refused or never synthesized (no longer
        pending for `session_id`)."""
        if caller is None or not caller.metered or self._keys is None or characters <= 0:
            return None
        return await asyncio.to_thread(self._keys.refund, caller.key_id, characters, session_id)
