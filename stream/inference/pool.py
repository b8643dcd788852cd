"""The thread-pool executor: engines that synthesize one request per call run here.

A request is the engine's chunk generator, stepped on a worker thread. When its consumer pauses it
(enough audio waits unread) the request *parks* after the current chunk: the thread goes back to
the pool, and the request continues (on any worker) once resumed. So a slow or stalled client
pauses generation for its own session only and never holds a worker hostage. Cancel is checked
between chunks, which bounds barge-in latency to one chunk.

Requests wait in a priority queue: a context's first phrase (what its time-to-first-audio waits on)
goes before later phrases, whose listeners still have audio playing; then earliest deadline first.

A request stuck inside the engine is abandoned by its consumer (`RequestHandle.abandon`); the pool
then starts a replacement thread, so capacity is kept (Python cannot kill a thread; the hung one
retires if its call ever returns). Threads are daemons and `shutdown` waits for them only up to a
deadline, so a hung engine call cannot keep the process from exiting, while a healthy one still
finishes its chunk before the interpreter (and the engine's native runtime) goes away.
"""

from __future__ import annotations

import enum
import itertools
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np

from stream.core.synthesis import SynthesisRequest
from stream.inference.executor import ChunkSink, Executor, RequestHandle

log = logging.getLogger("voicewire.workers")

Synthesize = Callable[[SynthesisRequest, threading.Event], Iterator[np.ndarray]]
"""An engine's `synthesize`: yields a phrase's chunks, stopping within one chunk once the event is set."""


class _State(enum.Enum):
    QUEUED = "queued"      # waiting for a worker
    RUNNING = "running"    # on a worker
    PARKED = "parked"      # paused, off any worker
    OVER = "over"          # finished, failed or cancelled; the sink has been told


class _PoolRequest(RequestHandle):
    """One request's generator and state, shared by the worker running it and its handle's callers."""

    def __init__(self, pool: InferencePool, produce: Callable[[threading.Event], Iterator[np.ndarray]],
                 sink: ChunkSink, priority: int, deadline: float | None) -> None:
        self._pool = pool
        self._produce = produce
        self._sink = sink
        self.priority = priority
        self.deadline = deadline
        self._cancel = threading.Event()
        self._lock = threading.Lock()       # guards the fields below
        self._state = _State.QUEUED
        self._ticket = -1                   # the queue entry that may run it; older ones are stale
        self._paused = False
        self._worker: threading.Thread | None = None
        self._progress_at = 0.0
        self._gen: Iterator[np.ndarray] | None = None

    # -- worker side ------------------------------------------------------------------------------
    def run(self, ticket: int) -> None:
        """Step the generator until it ends, is cancelled or paused; called on a pool thread."""
        with self._lock:
            if self._state is not _State.QUEUED or ticket != self._ticket:
                return
            self._state = _State.RUNNING
            self._worker = threading.current_thread()
            self._progress_at = time.monotonic()
        error: BaseException | None = None
        try:
            while not self._cancel.is_set():
                with self._lock:
                    if self._paused:
                        self._state, self._worker = _State.PARKED, None
                        return
                if self._gen is None:
                    self._gen = iter(self._produce(self._cancel))
                chunk = next(self._gen, None)
                if chunk is None:
                    break
                with self._lock:
                    self._progress_at = time.monotonic()
                self._sink.chunk(chunk)
            if self._cancel.is_set() and self._gen is not None:
                self._gen.close()  # lets the engine release what it holds, on this thread
        except BaseException as exc:  # the consumer re-raises it
            error = exc
        with self._lock:
            self._state, self._worker = _State.OVER, None
        self._sink.finished(error)

    def entry(self, ticket: int) -> tuple[int, float, int, _PoolRequest]:
        """Its queue entry: priority, then deadline (none: last), then FIFO; `ticket` retires older ones."""
        with self._lock:
            self._ticket = ticket
            return self.priority, math.inf if self.deadline is None else self.deadline, ticket, self

    # -- handle -----------------------------------------------------------------------------------
    def _requeue(self) -> None:
        """Put a parked request back in the queue (to continue, or to be closed by a worker)."""
        with self._lock:
            if self._state is not _State.PARKED:
                return
            self._state = _State.QUEUED
        try:
            self._pool.enqueue(self)
        except RuntimeError as exc:  # shut down: nobody will run it again
            with self._lock:
                self._state = _State.OVER
            self._sink.finished(exc)

    def cancel(self) -> None:
        self._cancel.set()
        self._requeue()

    def pause(self) -> None:
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        with self._lock:
            self._paused = False
        self._requeue()

    def set_deadline(self, deadline: float | None) -> None:
        with self._lock:
            self.deadline = deadline
            queued = self._state is _State.QUEUED
        if queued:  # take its place in the queue again, by the new deadline
            try:
                self._pool.enqueue(self)
            except RuntimeError:  # shut down: its old entry is as good as any
                pass

    def busy_s(self) -> float:
        with self._lock:
            return time.monotonic() - self._progress_at if self._state is _State.RUNNING else 0.0

    def abandon(self) -> None:
        with self._lock:
            worker = self._worker
        self.cancel()
        if worker is not None:
            self._pool.replace_hung_worker(worker)


class InferencePool(Executor):
    """A fixed number of daemon worker threads, plus replacements for threads lost to a hung engine."""

    def __init__(self, synthesize: Synthesize, workers: int) -> None:
        self._synthesize = synthesize
        self.workers = max(1, workers)
        self._tasks: queue.PriorityQueue[tuple[int, float, int, _PoolRequest | None]] = queue.PriorityQueue()
        self._order = itertools.count()  # FIFO among equal priorities and deadlines; entry tickets
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
            _, _, ticket, request = self._tasks.get()
            if request is None:
                return
            request.run(ticket)
            del request  # an idle thread holds no finished request (and its consumer) alive
            with self._lock:
                if threading.current_thread() in self._hung:  # a replacement took its place meanwhile
                    self._hung.discard(threading.current_thread())
                    return

    def submit(self, request: SynthesisRequest, sink: ChunkSink, *, priority: int,
               deadline: float | None) -> RequestHandle:
        handle = _PoolRequest(self, lambda cancel: self._synthesize(request, cancel), sink, priority, deadline)
        self.enqueue(handle)
        return handle

    def enqueue(self, request: _PoolRequest) -> None:
        """Queue a request's next turn on a worker, in priority then deadline order."""
        if self._closed:
            raise RuntimeError("inference pool is shut down")
        self._tasks.put(request.entry(next(self._order)))

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
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._tasks.put((-1, -math.inf, next(self._order), None))
        until = time.monotonic() + timeout_s
        for thread in threads:
            thread.join(max(0.0, until - time.monotonic()))
        stuck = sum(thread.is_alive() for thread in threads)
        if stuck:
            log.error("%d inference threads still busy at shutdown; exiting without them", stuck)
