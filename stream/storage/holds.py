"""Credit holds: credits taken for a websocket session's text stay *pending* until its audio went out.

A charge made for a session's text (`KeyRepository.charge(..., hold=Hold(...))`) records the
characters against the session in the same transaction that takes the credits. The server settles
a phrase's characters once its last audio is handed to the socket, a refund (cancel, failure) gives
credits back and lowers the pending count too, and a clean close releases the hold: whatever was not
refunded by then was spoken. The replica renews its holds on the lease heartbeat; a replica that
dies stops renewing, and any replica's heartbeat sweeps holds that expired, giving their pending
characters back to the key (counted as refunded in usage). So a killed replica's clients pay only
for the audio it sent, within `LEASE_TTL_S` plus one heartbeat.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from stream.storage.leases import LEASE_TTL_S


@dataclass(frozen=True)
class Hold:
    """Which session a charge is for, the replica answering for it, and how long it lasts unrenewed."""

    session_id: str
    replica: str
    ttl_s: float = LEASE_TTL_S


@dataclass(frozen=True)
class SweptHold:
    """An expired hold the sweep gave back: `characters` returned to `key_id`."""

    session_id: str
    key_id: str
    characters: int


class CreditHolds(ABC):
    """Pending characters per session, shared by every replica using the same database."""

    @abstractmethod
    def settle(self, session_id: str, characters: int) -> None:
        """`characters` of the session's text were spoken: they stop being pending (never below 0)."""

    @abstractmethod
    def release(self, session_id: str) -> None:
        """The session closed cleanly: drop its hold, leaving what is still pending charged (idempotent)."""

    @abstractmethod
    def renew(self, replica: str, ttl_s: float = LEASE_TTL_S) -> int:
        """Push back the expiry of every hold `replica` answers for; how many it holds."""

    @abstractmethod
    def sweep(self) -> list[SweptHold]:
        """Give back the pending characters of every expired hold and delete it, each hold in one
        transaction, so two replicas sweeping at once return each hold exactly once."""

    @abstractmethod
    def pending(self, session_id: str) -> int | None:
        """The session's pending characters, None when it holds nothing."""
