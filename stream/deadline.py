"""One way to bound an await: `async with deadline(seconds): ...` raises `TimeoutError` when time runs out.

Why not `asyncio.wait_for`: before Python 3.12 it swallows a cancellation that arrives while the awaited
thing completes, so a task told to stop (a speaker at server shutdown) could carry on speaking.
`asyncio.timeout` (3.11+) and its backport `async_timeout` (3.10) let every cancellation through.
"""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    from asyncio import timeout as deadline
else:  # pragma: no cover - exercised on Python 3.10 only
    from async_timeout import timeout as deadline

__all__ = ["deadline"]
