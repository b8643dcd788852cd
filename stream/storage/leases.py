"""Session leases: per-key session counts that every replica sees, and that a dead replica gives up.

A server admits a websocket session of a key only if it can take a lease for it: one row per open
session, naming the key, the session and the replica holding it, with an expiry. Taking a lease
counts the key's unexpired leases and inserts the new one in one atomic step, so two replicas
admitting at once can never exceed the key's limit. A live replica renews all its leases on a
heartbeat (every `LEASE_TTL_S / 3`); a replica that dies stops renewing, and its sessions stop
counting within `LEASE_TTL_S`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

LEASE_TTL_S = 10.0          # a dead replica's sessions stop counting within this
RENEW_EVERY_S = LEASE_TTL_S / 3


class SessionLeases(ABC):
    """Leases on open sessions, shared by every replica using the same database."""

    @abstractmethod
    def acquire(self, key_id: str, session_id: str, replica: str, limit: int, ttl_s: float = LEASE_TTL_S) -> bool:
        """Take a lease for `session_id` if the key holds fewer than `limit` unexpired leases (atomic
        across replicas); False, taking nothing, when it is at its limit."""

    @abstractmethod
    def renew(self, replica: str, ttl_s: float = LEASE_TTL_S) -> int:
        """Push back the expiry of every lease `replica` holds; how many it holds."""

    @abstractmethod
    def release(self, session_id: str) -> None:
        """Give a session's lease back (idempotent)."""

    @abstractmethod
    def count(self, key_id: str) -> int:
        """The key's unexpired leases, on every replica."""
