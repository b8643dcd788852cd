"""API-key checks for HTTP and websocket requests.

With no keys configured the server is open (and warns at start when bound beyond loopback).
"""

from __future__ import annotations

import hmac

from .errors import Unauthorized


class Authenticator:
    def __init__(self, static_keys: tuple[str, ...]) -> None:
        self._static = tuple(static_keys)

    @property
    def required(self) -> bool:
        return bool(self._static)

    def authenticate(self, key: str | None) -> str | None:
        """The accepted key (None when the server is open), or `Unauthorized`."""
        if not self.required:
            return None
        if key and any(hmac.compare_digest(key, known) for known in self._static):
            return key
        raise Unauthorized("x-api-key: missing or invalid API key" if key is None or key
                           else "x-api-key: empty API key")
