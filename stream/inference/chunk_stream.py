"""One synthesis request as an asyncio stream of chunks, over any `Executor`.

The stream is the request's sink: chunks arriving on executor threads wait in a buffer for the
event loop's consumer. Once `lookahead` chunks wait unread it pauses the request, and resumes it
when the consumer takes one, so one request never buffers more than `lookahead` chunks (a stalled
client holds bounded memory and no executor capacity). A request the engine works on without a
chunk for `stall_timeout_s` is declared hung: the consumer gets `EngineStalled`, and the request is
abandoned so the executor can restore its capacity.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

import numpy as np

from stream.core.synthesis import SynthesisRequest
from stream.deadline import deadline as timeout
from stream.inference.executor import Executor, RequestHandle

__all__ = ["ChunkStream", "EngineStalled", "open_stream"]

_DONE = object()


class EngineStalled(RuntimeError):
    """A synthesis produced no chunk within the stall deadline while the engine worked on it."""


def open_stream(executor: Executor, request: SynthesisRequest, *, lookahead: int, stall_timeout_s: float,
                priority: int, deadline: float | None = None) -> ChunkStream:
    """Submit `request` to `executor` and return its chunks as a `ChunkStream`; call on the event loop.

    `priority` 0 is a context's first phrase, 1 a later one; `deadline` is the `time.monotonic()`
    time the listener's audio runs out (None: unknown). A failed submit (executor shut down) ends
    the stream with that error.
    """
    return ChunkStream(lambda sink: executor.submit(request, sink, priority=priority, deadline=deadline),
                       lookahead=lookahead, stall_timeout_s=stall_timeout_s)


class ChunkStream:
    """Async iterator over one request's chunks (`async for chunk in stream`).

    `done` resolves when production has finished (delivered, cancelled or failed), even if chunks
    are still unread; `started` is the `time.monotonic()` of the submit; `stop()` cancels.
    """

    def __init__(self, submit: Callable[[ChunkStream], RequestHandle], *, lookahead: int,
                 stall_timeout_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._lookahead = max(1, lookahead)
        self._stall_timeout_s = stall_timeout_s
        # Reentrant: `resume` may end a request at once (executor shut down), calling `finished` here.
        self._lock = threading.RLock()          # guards the fields below, shared with executor threads
        self._chunks: deque[np.ndarray] = deque()
        self._handle: RequestHandle | None = None
        self._paused = False
        self._end: object = None                # _DONE or the engine's exception
        self._stopped = False
        self._wake = asyncio.Event()
        self.done: asyncio.Future[None] = self._loop.create_future()
        self.started = time.monotonic()
        try:
            handle = submit(self)
        except RuntimeError as exc:
            self.finished(exc)
            return
        with self._lock:
            self._handle = handle
            # Chunks can arrive before `submit` returns: apply a pause they asked for meanwhile.
            if self._paused:
                handle.pause()

    # -- sink (executor threads) ------------------------------------------------------------------
    def chunk(self, samples: np.ndarray) -> None:
        with self._lock:
            if self._stopped:
                return
            self._chunks.append(samples)
            if len(self._chunks) >= self._lookahead and not self._paused:
                self._paused = True
                if self._handle is not None:
                    self._handle.pause()
        self._notify(self._wake.set)

    def finished(self, error: BaseException | None) -> None:
        with self._lock:
            self._end = error if error is not None else _DONE
        self._notify(self._resolve)

    def _notify(self, callback: Callable[[], None]) -> None:
        try:
            self._loop.call_soon_threadsafe(callback)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            pass

    def _resolve(self) -> None:
        self._wake.set()
        if not self.done.done():
            self.done.set_result(None)

    # -- consumer (event loop) --------------------------------------------------------------------
    def __aiter__(self) -> AsyncIterator[np.ndarray]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[np.ndarray]:
        while not self._stopped:
            with self._lock:
                chunk = self._chunks.popleft() if self._chunks else None
                if self._paused and len(self._chunks) < self._lookahead and self._handle is not None:
                    self._paused = False
                    self._handle.resume()
                end, handle = self._end, self._handle
            if chunk is not None:
                yield chunk
                continue
            if end is not None:
                if isinstance(end, BaseException):
                    raise end
                return
            self._wake.clear()
            busy = handle.busy_s() if handle is not None else 0.0
            try:
                async with timeout(max(0.0, self._stall_timeout_s - busy)):
                    await self._wake.wait()
            except asyncio.TimeoutError:
                self._check_stalled()

    def _check_stalled(self) -> None:
        with self._lock:
            handle = self._handle
            busy = handle.busy_s() if handle is not None else 0.0
            hung = handle is not None and not self._chunks and self._end is None and busy >= self._stall_timeout_s
        if hung and handle is not None:
            self._stopped = True
            handle.abandon()
            raise EngineStalled(f"engine produced no audio for {busy:.1f} s (deadline {self._stall_timeout_s:g} s)")

    def stop(self) -> None:
        """Cancel the request (a paused one is resumed so the executor closes it) and end the iteration."""
        with self._lock:
            self._stopped = True
            self._chunks.clear()
            self._paused = False
            handle = self._handle
        if handle is not None:
            handle.cancel()
        self._wake.set()
