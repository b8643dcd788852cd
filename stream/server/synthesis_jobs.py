"""Carries out the session's job actions on the engine's executor and feeds engine events back.

Shared by both drivers (websocket and one-shot HTTP): `run` executes `StartJob`/`StopJob` at once
and hands back the other actions for the driver to deliver; `step` reads one event (a chunk, the
end, a failure) of the job the session is reading now and hands it to the session, returning the
actions that follow.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import numpy as np

from stream.core.actions import Action, StartJob, StopJob
from stream.core.errors import InternalError, ProtocolError
from stream.core.session import Session
from stream.inference.chunk_stream import ChunkStream, open_stream
from stream.server.runtime import Runtime

log = logging.getLogger("voicewire.synthesis")


@dataclass
class _Job:
    stream: ChunkStream
    chunks: AsyncIterator[np.ndarray]
    first_chunk: bool = True


class SynthesisJobs:
    def __init__(self, runtime: Runtime, session: Session, execute: Callable[[list[Action]], None]) -> None:
        self._rt = runtime
        self._session = session
        self._execute = execute
        self._jobs: dict[int, _Job] = {}
        self.failure: ProtocolError | None = None   # the last engine failure, with its own error type

    def run(self, actions: list[Action]) -> list[Action]:
        """Start and stop jobs now; return the remaining actions, in order, for the driver."""
        rest = []
        for action in actions:
            if isinstance(action, StartJob):
                self.start(action)
            elif isinstance(action, StopJob):
                self.stop(action.job_id)
            else:
                rest.append(action)
        return rest

    def start(self, action: StartJob) -> None:
        limits = self._rt.settings.limits
        stream = open_stream(self._rt.executor, action.request, lookahead=limits.send_buffer_chunks,
                             stall_timeout_s=limits.engine_stall_timeout_s, priority=action.priority,
                             deadline=action.deadline)
        self._jobs[action.job_id] = _Job(stream, aiter(stream))
        # Production finished: the session may start the context's next phrase (prefetch).
        stream.done.add_done_callback(
            lambda _: self._execute(self._session.job_produced(action.job_id, time.monotonic())))

    def stop(self, job_id: int) -> None:
        job = self._jobs.pop(job_id, None)
        if job is not None:
            job.stream.stop()

    def stop_all(self) -> None:
        for job_id in list(self._jobs):
            self.stop(job_id)

    async def step(self) -> list[Action] | None:
        """Read the next event of the job being read; None when the session reads no job now."""
        job_id = self._session.reading()
        job = self._jobs.get(job_id) if job_id is not None else None
        if job_id is None or job is None:
            return None
        try:
            chunk = await anext(job.chunks, None)
        except Exception as exc:
            if not isinstance(exc, ProtocolError):
                log.exception("synthesis failed")
            self.stop(job_id)
            self.failure = exc if isinstance(exc, ProtocolError) else InternalError(
                f"synthesis failed: {type(exc).__name__}: {exc}")
            return self._session.job_failed(job_id, self.failure, time.monotonic())
        now = time.monotonic()
        if chunk is None:
            self._jobs.pop(job_id, None)
            return self._session.job_ended(job_id, now)
        if job.first_chunk:
            job.first_chunk = False
            self._rt.metrics.engine_first_chunk.observe(now - job.stream.started)
        return self._session.chunk(job_id, chunk, now)
