"""What an executor reports about its own scheduling, for whoever exports metrics.

Engines sit below the server and must not import it, so an executor reports through this hook
and the server implements it (`stream.server.metrics`). Every method is called from executor
threads and must return at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["EngineObserver", "ExecutorLimits", "NullObserver"]


class EngineObserver(Protocol):
    def decode_step(self, rows: int, seconds: float) -> None:
        """One scheduler iteration ran a decode step over `rows` rows (a CFG request is 2) in `seconds`
        (the iteration's wall time: prefill chunks, the step and its flushes)."""

    def flush_batch(self, requests: int) -> None:
        """One iteration flushed `requests` phrase decoders together."""

    def queue_wait(self, seconds: float) -> None:
        """A request waited `seconds` from submit until it got rows."""

    def deadline_miss(self) -> None:
        """A chunk reached its listener after the listener's deadline (its audio had run out)."""


class NullObserver:
    """Reports nowhere: the default until the server attaches its metrics."""

    def decode_step(self, rows: int, seconds: float) -> None:
        pass

    def flush_batch(self, requests: int) -> None:
        pass

    def queue_wait(self, seconds: float) -> None:
        pass

    def deadline_miss(self) -> None:
        pass


@dataclass(frozen=True)
class ExecutorLimits:
    """Server-wide limits an executor adds to `ready.limits` and `/healthz`; None: not applicable."""

    engine_batch_rows: int | None = None          # decoding rows of the batch (a request with CFG takes 2)
    engine_max_queue_wait_s: float | None = None  # a request expected to wait longer is refused (rate_limited)

    def to_wire(self) -> dict:
        return {name: value for name, value in vars(self).items() if value is not None}
