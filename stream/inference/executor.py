"""The executor hook: how a synthesis request reaches whatever runs the engine.

An executor accepts requests and reports each one's audio through a thread-safe `ChunkSink`; the
`RequestHandle` it returns steers that request while it runs. The thread pool (`pool.py`) runs one
request per engine call; an engine that schedules its own work (batched GPU decoding) returns its
own executor from `Engine.create_executor`. The asyncio side (`chunk_stream.py`) sees only this
interface, so it drives either one unchanged.

Contract, for every executor:

- `submit` never blocks on synthesis; chunks may arrive on any thread, in order, even before
  `submit` has returned.
- the sink gets any number of `chunk` calls, then exactly one `finished` (`None` on success or
  cancel, else the engine's exception). Nothing after `finished`.
- `priority`: lower runs first (0: a context's first phrase, whose listener waits for it).
  `deadline`: `time.monotonic()` value by which the listener needs audio (its buffer runs out);
  among equal priorities the earliest deadline goes first, `None` last.
- `cancel` stops the request within one chunk. `pause` stops producing after the current chunk
  (backpressure: the consumer holds enough unread), `resume` continues it; neither loses audio.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol

import numpy as np

from stream.core.synthesis import SynthesisRequest
from stream.inference.observer import EngineObserver, ExecutorLimits

__all__ = ["ChunkSink", "Executor", "RequestHandle"]


class ChunkSink(Protocol):
    """Receives one request's audio; called from executor threads, so it must be thread-safe."""

    def chunk(self, samples: np.ndarray) -> None:
        """Mono float32 samples at the engine's rate, the next piece of the phrase."""

    def finished(self, error: BaseException | None) -> None:
        """The request is over: all audio was delivered, it was cancelled, or it failed with `error`."""


class RequestHandle(ABC):
    """Steers one submitted request; every method is thread-safe and returns at once."""

    @abstractmethod
    def cancel(self) -> None:
        """Stop within one chunk; the sink then gets `finished(None)`."""

    @abstractmethod
    def pause(self) -> None:
        """Produce nothing after the current chunk until `resume` (the consumer's buffer is full)."""

    @abstractmethod
    def resume(self) -> None:
        """Continue a paused request."""

    @abstractmethod
    def set_deadline(self, deadline: float | None) -> None:
        """Move the request's deadline (`time.monotonic()` seconds); it orders the request's next turn."""

    @abstractmethod
    def busy_s(self) -> float:
        """Seconds the engine has been working on this request since its last chunk; 0 while it is
        queued, paused or over. A consumer that sees this pass its stall limit calls `abandon`."""

    def abandon(self) -> None:
        """Give up on a request stuck inside the engine: cancel it and let the executor restore its
        capacity (the pool starts a replacement thread). The sink may still hear `finished` if the
        engine call ever returns."""
        self.cancel()


class Executor(ABC):
    """Runs an engine's synthesis requests; one per server, built by `Engine.create_executor`."""

    @abstractmethod
    def submit(self, request: SynthesisRequest, sink: ChunkSink, *, priority: int,
               deadline: float | None) -> RequestHandle:
        """Queue `request`; its audio goes to `sink`. Raises `RuntimeError` once shut down."""

    @abstractmethod
    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Take no new requests and wait up to `timeout_s` for running engine calls to return."""

    def observe(self, observer: EngineObserver) -> None:
        """Report scheduling (batch sizes, step times, queue waits, deadline misses) to `observer`;
        an executor with nothing to report ignores it."""
        del observer

    def limits(self) -> ExecutorLimits:
        """Its server-wide limits for `ready.limits` and `/healthz` (none by default)."""
        return ExecutorLimits()
