"""A database outage as clients see it: `storage_unavailable` (HTTP 503, websocket close 1013), never a
free pass. Nothing is spoken without a successful charge, and the server stays up to serve again
when the database returns.

The client's message says what could not be done and to retry; the database's own description
(its redacted URL and the driver's reason) goes to the log only, so clients learn no host names.
"""

from __future__ import annotations

import logging

from stream.accounts.auth import Authenticator, Caller
from stream.core.errors import StorageUnavailableError
from stream.storage import StorageUnavailable

log = logging.getLogger("voicewire.storage")
RETRY_AFTER_S = 1   # `Retry-After` of a 503: a load balancer or client retries soon, on this or another replica


def outage_error(exc: StorageUnavailable, what: str) -> StorageUnavailableError:
    """The client's error for `exc`; `what` says what could not be done ("the request cannot be charged")."""
    log.warning("database unavailable: %s (%s)", exc, what)
    return StorageUnavailableError(f"database: unavailable, so {what}; nothing was spoken, retry shortly")


async def refund_quietly(auth: Authenticator, caller: Caller | None, characters: int,
                         session_id: str | None = None) -> None:
    """Give back credits of text that was never spoken; during an outage the refund is logged as lost
    (key id and amount, no secret) instead of replacing the error the client should see."""
    try:
        await auth.refund(caller, characters, session_id)
    except StorageUnavailable as exc:
        key = caller.key_id if caller is not None else "-"
        log.error("refund of %d credits to key %s failed: database unavailable (%s)", characters, key, exc)
