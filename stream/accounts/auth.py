"""API-key checks for HTTP and websocket requests, and charging a caller's credits.

Keys come from two places: static keys given at start (`--api-key`, unmetered) and the key
database (`voicewire keys`, optionally metered). With neither, the server is open (and warns at
start when bound beyond loopback). Once any key was ever created in the database, every request
needs a key, even after all are revoked: revoking the last key must not open the server.
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass

from stream.accounts.keys import KeyStore, key_digest
from stream.core.errors import Unauthorized


@dataclass(frozen=True)
class Caller:
    """An authenticated caller. `key_id` never holds a secret; only database keys are metered."""

    key_id: str
    metered: bool


class Authenticator:
    def __init__(self, static_keys: tuple[str, ...], store: KeyStore | None = None) -> None:
        self._static = tuple(static_keys)
        self.store = store

    @property
    def required(self) -> bool:
        return bool(self._static) or (self.store is not None and self.store.has_keys())

    def authenticate(self, key: str | None) -> Caller | None:
        """The caller (None when the server is open), or `Unauthorized`."""
        if not self.required:
            return None
        if not key:
            raise Unauthorized("x-api-key: missing API key" if key is None else "x-api-key: empty API key")
        for known in self._static:
            if hmac.compare_digest(key.encode(), known.encode()):
                return Caller(key_id="static-" + key_digest(known)[:12], metered=False)
        record = self.store.lookup(key) if self.store is not None else None
        if record is None:
            raise Unauthorized("x-api-key: invalid or revoked API key")
        return Caller(key_id=record.id, metered=True)

    async def charge(self, caller: Caller | None, characters: int, context_id: str | None = None) -> int | None:
        """Take credits for `characters` of text before it is synthesized: the balance left (None when
        the caller is unmetered or unlimited), or `InsufficientCredits` with nothing taken."""
        if caller is None or not caller.metered or self.store is None:
            return None
        return await asyncio.to_thread(self.store.charge, caller.key_id, characters, context_id)

    async def usage(self, caller: Caller | None, characters: int) -> dict | None:
        """`done.usage` of a websocket turn for a metered key: the characters billed and the balance now."""
        if caller is None or not caller.metered or self.store is None:
            return None
        key = await asyncio.to_thread(self.store.get, caller.key_id)
        return {"characters": characters, "remaining_credits": key.credits if key is not None else None}

    async def refund(self, caller: Caller | None, characters: int) -> int | None:
        """Give back credits taken for text that was then refused or never synthesized."""
        if caller is None or not caller.metered or self.store is None or characters <= 0:
            return None
        return await asyncio.to_thread(self.store.refund, caller.key_id, characters)
