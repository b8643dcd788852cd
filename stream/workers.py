"""Runs engine synthesis on worker threads and hands chunks to the event loop with backpressure.

The engine generator runs in a thread; each chunk is put on a small asyncio queue and the thread
waits while that queue is full, so a slow consumer pauses generation for its own job only.
`cancel` is checked between chunks, which is what bounds barge-in latency to one chunk.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Callable, Iterator

import numpy as np

_DONE = object()


class InferencePool:
    def __init__(self, workers: int) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers),
                                                               thread_name_prefix="voicewire-infer")

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def stream(self, produce: Callable[[threading.Event], Iterator[np.ndarray]], cancel: threading.Event,
               lookahead: int = 4) -> "ChunkStream":
        """Start `produce(cancel)` on a worker; iterate the result with `async for`."""
        return ChunkStream(self._executor, produce, cancel, lookahead)


class ChunkStream:
    """Async iterator over one synthesis job's chunks; `done` resolves when the worker is free."""

    def __init__(self, executor: concurrent.futures.Executor,
                 produce: Callable[[threading.Event], Iterator[np.ndarray]],
                 cancel: threading.Event, lookahead: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue = asyncio.Queue(maxsize=lookahead)
        self.cancel = cancel
        self.done: asyncio.Future = asyncio.wrap_future(executor.submit(self._run, produce))

    def _put(self, item: object) -> bool:
        """Hand an item to the loop, waiting while the queue is full; False once cancelled."""
        future = asyncio.run_coroutine_threadsafe(self._queue.put(item), self._loop)
        while True:
            try:
                future.result(timeout=0.05)
                return True
            except concurrent.futures.TimeoutError:
                if self.cancel.is_set() or self._loop.is_closed():
                    future.cancel()
                    return False

    def _run(self, produce: Callable[[threading.Event], Iterator[np.ndarray]]) -> None:
        try:
            for chunk in produce(self.cancel):
                if self.cancel.is_set() or not self._put(chunk):
                    break
        except BaseException as exc:  # the consumer re-raises it on the loop
            if not self.cancel.is_set():
                self._put(exc)
            return
        if not self.cancel.is_set():
            self._put(_DONE)

    def __aiter__(self) -> AsyncIterator[np.ndarray]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[np.ndarray]:
        while True:
            item = await self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def stop(self) -> None:
        """Ask the worker to stop, unblock it if it waits on a full queue, and end the iteration."""
        self.cancel.set()
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(_DONE)
