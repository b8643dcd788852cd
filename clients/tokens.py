"""Text as an LLM streams it: word-piece deltas with leading spaces, sent at a token rate."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import AsyncIterator, Iterable

_PIECE = re.compile(r"\s*(?:[A-Za-z]+|\d+|[^\sA-Za-z\d])")
_MAX_PIECE = 6


def llm_deltas(text: str) -> list[str]:
    """Split text the way BPE tokenizers roughly do: words (long ones in pieces), digits, punctuation.

    Joining the result gives back `text` exactly.
    """
    deltas: list[str] = []
    pos = 0
    for match in _PIECE.finditer(text):
        piece = text[pos:match.end()]
        pos = match.end()
        while len(piece.strip()) > _MAX_PIECE:
            lead = len(piece) - len(piece.lstrip())
            deltas.append(piece[: lead + _MAX_PIECE])
            piece = piece[lead + _MAX_PIECE:]
        deltas.append(piece)
    if pos < len(text):
        if deltas:
            deltas[-1] += text[pos:]
        else:
            deltas.append(text[pos:])
    return deltas


async def paced(deltas: Iterable[str], tokens_per_second: float, jitter: float = 0.0,
                first_delay_s: float = 0.0, seed: int | None = None) -> AsyncIterator[str]:
    """Yield deltas at a token rate (0 = all at once), with optional +-jitter fraction per token."""
    rng = random.Random(seed)
    if first_delay_s:
        await asyncio.sleep(first_delay_s)
    start = time.monotonic()
    due = 0.0
    for delta in deltas:
        wait = start + due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        yield delta
        if tokens_per_second > 0:
            due += (1.0 / tokens_per_second) * (1.0 + rng.uniform(-jitter, jitter))
