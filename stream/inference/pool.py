"""Runs engine synthesis on worker threads and hands chunks to the event loop with backpressure.

A job is the engine's chunk generator, stepped on a worker thread. It runs until `lookahead` chunks
wait unread, then *parks*: the thread goes back to the pool, and the job resumes (on any worker) once
its consumer has taken a chunk. So a slow or stalled client pauses generation for its own session
only, never holds a worker hostage, and one job never buffers more than `lookahead` chunks.
`cancel` is checked between chunks, which bounds barge-in latency to one chunk.

Jobs wait in a priority queue: a context's first phrase (what its time-to-first-audio waits on)
goes before later phrases, whose listeners still have audio playing.

A job that makes no progress for `stall_timeout_s` while it is on a worker is declared hung: its
consumer gets `EngineStalled` and the pool starts a replacement thread, so capacity is kept (Python
cannot kill a thread; the hung one retires if its call ever returns). Threads are daemons and
`shutdown` waits for them only up to a deadline, so a hung engine call cannot keep the process from
exiting, while a healthy one still finishes its chunk before the interpreter (and the engine's
native runtime) goes away.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator

import numpy as np

from stream.deadline import deadline

log = logging.getLogger("voicewire.workers")

_DONE = object()
_CANCELLED = object()


class EngineStalled(RuntimeError):
    """A synthesis produced no chunk within the stall deadline while running on a worker."""


class InferencePool:
    """A fixed number of daemon worker threads, plus replacements for threads lost to a hung engine."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._tasks: queue.PriorityQueue[tuple[int, int, Callable[[], None] | None]] = queue.PriorityQueue()
        self._order = itertools.count()  # FIFO within a priority
        self._lock = threading.Lock()
        self._hung: set[threading.Thread] = set()  # replaced while stuck; each retires if it ever returns
        self._closed = False
        self._threads: list[threading.Thread] = []
        for _ in range(self.workers):
            self._spawn()

    def _spawn(self) -> None:
        thread = threading.Thread(target=self._work, name="voicewire-infer", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _work(self) -> None:
        while True:
            _, _, task = self._tasks.get()
            if task is None:
                return
            task()
            with self._lock:
                if threading.current_thread() in self._hung:  # a replacement took its place meanwhile
                    self._hung.discard(threading.current_thread())
                    return

    def submit(self, task: Callable[[], None], priority: int = 1) -> None:
        """Queue `task`; lower `priority` runs first (0: a first phrase)."""
        if self._closed:
            raise RuntimeError("inference pool is shut down")
        self._tasks.put((priority, next(self._order), task))

    def replace_hung_worker(self, thread: threading.Thread) -> None:
        """Start a thread in place of `thread`, stuck in an engine call (at most `workers` replaced at once)."""
        with self._lock:
            if self._closed or thread in self._hung or len(self._hung) >= self.workers:
                log.error("engine stalled; %d workers already stuck, not replacing", len(self._hung))
                return
            self._hung.add(thread)
        log.error("engine stalled on a worker; started a replacement thread")
        self._spawn()

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Stop taking work and wait (up to `timeout_s` in all) for the threads to finish theirs."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._tasks.put((-1, next(self._order), None))
        until = time.monotonic() + timeout_s
        for thread in threads:
            thread.join(max(0.0, until - time.monotonic()))
        stuck = sum(thread.is_alive() for thread in threads)
        if stuck:
            log.error("%d inference threads still busy at shutdown; exiting without them", stuck)

    def stream(self, produce: Callable[[threading.Event], Iterator[np.ndarray]], cancel: threading.Event,
               lookahead: int = 4, stall_timeout_s: float = 60.0, priority: int = 1) -> ChunkStream:
        """Start `produce(cancel)` on a worker; iterate the result with `async for`."""
        return ChunkStream(self, produce, cancel, lookahead, stall_timeout_s, priority)


class ChunkStream:
    """Async iterator over one synthesis job's chunks; `done` resolves when the generator is finished."""

    def __init__(self, pool: InferencePool, produce: Callable[[threading.Event], Iterator[np.ndarray]],
                 cancel: threading.Event, lookahead: int, stall_timeout_s: float, priority: int = 1) -> None:
        self._loop = asyncio.get_running_loop()
        self._pool = pool
        self._priority = priority
        self._produce = produce
        self._gen: Iterator[np.ndarray] | None = None
        self.cancel = cancel
        self._lookahead = max(1, lookahead)
        self._stall_timeout_s = stall_timeout_s
        self._lock = threading.Lock()           # guards the fields below, shared with the worker
        self._chunks: deque[np.ndarray] = deque()
        self._parked = False
        self._on_worker = False
        self._worker: threading.Thread | None = None  # the thread running the current step
        self._progress_at = 0.0
        self._end: object = None                # _DONE, _CANCELLED or the engine's exception
        self._stopped = False
        self._wake = asyncio.Event()
        self.done: asyncio.Future = self._loop.create_future()
        self._submit()

    # -- worker side ------------------------------------------------------------------------
    def _step(self) -> None:
        """Run the generator until it ends, is cancelled, or `lookahead` chunks wait unread."""
        with self._lock:
            self._on_worker = True
            self._worker = threading.current_thread()
            self._progress_at = time.monotonic()
        end: object = None
        try:
            if self._gen is None:
                self._gen = iter(self._produce(self.cancel))
            while end is None:
                if self.cancel.is_set():
                    end = _CANCELLED
                    break
                chunk = next(self._gen, _DONE)
                if chunk is _DONE:
                    end = _DONE
                    break
                with self._lock:
                    self._chunks.append(chunk)
                    self._progress_at = time.monotonic()
                    parked = self._parked = len(self._chunks) >= self._lookahead
                    if parked:
                        self._on_worker = False
                self._notify(self._wake.set)
                if parked:
                    return
            if end is _CANCELLED and self._gen is not None:
                self._gen.close()  # lets the engine release what it holds, on this thread
        except BaseException as exc:  # the consumer re-raises it on the loop
            end = exc
        with self._lock:
            self._on_worker = False
        self._finish(end)

    def _notify(self, callback: Callable[[], None]) -> None:
        try:
            self._loop.call_soon_threadsafe(callback)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            pass

    def _finish(self, end: object) -> None:
        with self._lock:
            self._end = end
        self._notify(self._resolve)

    def _resolve(self) -> None:
        self._wake.set()
        if not self.done.done():
            self.done.set_result(None)

    # -- loop side --------------------------------------------------------------------------
    def _submit(self) -> None:
        try:
            self._pool.submit(self._step, self._priority)
        except RuntimeError as exc:
            self._finish(exc)

    def __aiter__(self) -> AsyncIterator[np.ndarray]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[np.ndarray]:
        while not self._stopped:
            with self._lock:
                chunk = self._chunks.popleft() if self._chunks else None
                resume = self._parked and len(self._chunks) < self._lookahead
                if resume:
                    self._parked = False
                end, on_worker, progress_at = self._end, self._on_worker, self._progress_at
            if resume:
                self._submit()
            if chunk is not None:
                yield chunk
                continue
            if end is not None:
                if isinstance(end, BaseException):
                    raise end
                return
            self._wake.clear()
            idle = time.monotonic() - progress_at if on_worker else 0.0
            try:
                async with deadline(max(0.0, self._stall_timeout_s - idle)):
                    await self._wake.wait()
            except asyncio.TimeoutError:
                self._check_stalled()

    def _check_stalled(self) -> None:
        with self._lock:
            idle = time.monotonic() - self._progress_at
            hung = self._on_worker and not self._chunks and self._end is None and idle >= self._stall_timeout_s
            worker = self._worker
        if hung and worker is not None:
            self.stop()
            self._pool.replace_hung_worker(worker)
            raise EngineStalled(f"engine produced no audio for {idle:.1f} s (deadline {self._stall_timeout_s:g} s)")

    def stop(self) -> None:
        """Ask the job to stop (a parked one is resumed so a worker closes it) and end the iteration."""
        self.cancel.set()
        self._stopped = True
        self._wake.set()
        with self._lock:
            self._chunks.clear()
            resume, self._parked = self._parked, False
        if resume:
            self._submit()
