"""A test-only engine-owned executor: every request on one thread, one chunk each in turn.

It stands in for the batching GPU scheduler the executor hook is for (many requests in flight at
once, each step serving all of them): it shares no code with the thread pool, so tests that pass
on both show the hook, not the pool, is what the server and `ChunkStream` rely on.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator

import numpy as np

from stream.core.synthesis import SynthesisRequest
from stream.engines.piper.engine import PiperEngine
from stream.inference.executor import ChunkSink, Executor, RequestHandle
from stream.inference.pool import Synthesize


class _Request(RequestHandle):
    def __init__(self, executor: RoundRobinExecutor, request: SynthesisRequest, sink: ChunkSink,
                 priority: int, deadline: float | None) -> None:
        self.executor = executor
        self.request = request
        self.sink = sink
        self.priority = priority
        self.deadline = deadline
        self.cancelled = threading.Event()
        self.paused = False
        self.gen: Iterator[np.ndarray] | None = None
        self.progress_at = time.monotonic()

    def key(self) -> tuple[int, float]:
        return self.priority, math.inf if self.deadline is None else self.deadline

    def cancel(self) -> None:
        self.cancelled.set()
        self.executor.wake()

    def pause(self) -> None:
        with self.executor.lock:
            self.paused = True

    def resume(self) -> None:
        with self.executor.lock:
            self.paused = False
            self.progress_at = time.monotonic()
        self.executor.wake()

    def set_deadline(self, deadline: float | None) -> None:
        with self.executor.lock:
            self.deadline = deadline

    def busy_s(self) -> float:
        with self.executor.lock:
            return 0.0 if self.paused else time.monotonic() - self.progress_at


class RoundRobinExecutor(Executor):
    """One scheduler thread; each round advances every runnable request by one chunk, most urgent first."""

    def __init__(self, synthesize: Synthesize) -> None:
        self._synthesize = synthesize
        self.lock = threading.Lock()
        self._changed = threading.Condition(self.lock)
        self._requests: list[_Request] = []
        self._closed = False
        self.max_in_flight = 0          # most requests with a started generator at once
        self.served: list[str] = []     # request text per chunk produced, in order
        self._thread = threading.Thread(target=self._loop, name="round-robin", daemon=True)
        self._thread.start()

    def submit(self, request: SynthesisRequest, sink: ChunkSink, *, priority: int,
               deadline: float | None) -> RequestHandle:
        handle = _Request(self, request, sink, priority, deadline)
        with self.lock:
            if self._closed:
                raise RuntimeError("round-robin executor is shut down")
            self._requests.append(handle)
            self._changed.notify()
        return handle

    def wake(self) -> None:
        with self.lock:
            self._changed.notify()

    def _loop(self) -> None:
        while True:
            with self.lock:
                while not self._closed and not any(r.cancelled.is_set() or not r.paused for r in self._requests):
                    self._changed.wait()
                if self._closed:
                    return
                turn = sorted((r for r in self._requests if r.cancelled.is_set() or not r.paused), key=_Request.key)
            for request in turn:
                self._step(request)

    def _step(self, request: _Request) -> None:
        """One chunk of `request`, or its end."""
        error: BaseException | None = None
        with self.lock:
            if request.paused and not request.cancelled.is_set():  # paused since the round began
                return
        try:
            if not request.cancelled.is_set():
                if request.gen is None:
                    request.gen = iter(self._synthesize(request.request, request.cancelled))
                    with self.lock:
                        self.max_in_flight = max(self.max_in_flight, sum(r.gen is not None for r in self._requests))
                chunk = next(request.gen, None)
                if chunk is not None:
                    with self.lock:
                        request.progress_at = time.monotonic()
                        self.served.append(request.request.text)
                    request.sink.chunk(chunk)
                    return
            elif request.gen is not None:
                request.gen.close()
        except BaseException as exc:
            error = exc
        with self.lock:
            self._requests.remove(request)
        request.sink.finished(error)

    def shutdown(self, timeout_s: float = 5.0) -> None:
        with self.lock:
            self._closed = True
            self._changed.notify()
        self._thread.join(timeout_s)


class RoundRobinPiper(PiperEngine):
    """Piper cut into 50 ms chunks (so requests interleave chunk by chunk), with its requests on the
    round-robin executor instead of the thread pool."""

    def synthesize(self, request: SynthesisRequest, cancel: threading.Event) -> Iterator[np.ndarray]:
        step = int(self.sample_rate * 0.05)
        for audio in super().synthesize(request, cancel):
            for start in range(0, len(audio), step):
                yield audio[start:start + step]

    def create_executor(self, workers: int) -> Executor:
        return RoundRobinExecutor(self.synthesize)
