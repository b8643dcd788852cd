"""`ChunkStream`, the asyncio side of the executor hook, over the thread pool and over a test-only
engine-owned executor (one thread, requests in turn): the same stream API on both, backpressure by
pause/resume, stop, stall detection, failures."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from stream.engines.base import Engine
from stream.inference.chunk_stream import EngineStalled, open_stream
from stream.inference.executor import Executor
from stream.inference.pool import InferencePool
from tests.inference.inference_helpers import ChunkedSynthesis, reference, request
from tests.inference.round_robin_executor import RoundRobinExecutor

PHRASE = "A phrase of a few words. And a second sentence."


@pytest.fixture(params=["pool", "round-robin"])
def executor_for(request, piper_engine: Engine):
    """Build the parametrized executor around a `ChunkedSynthesis` of Piper."""
    made: list[Executor] = []

    def make(synth: ChunkedSynthesis) -> Executor:
        made.append(InferencePool(synth, 1) if request.param == "pool" else RoundRobinExecutor(synth))
        return made[-1]

    make.kind = request.param
    yield make
    for executor in made:
        executor.shutdown(timeout_s=2)


def stream(executor: Executor, engine: Engine, text: str = PHRASE, lookahead: int = 4, stall_timeout_s: float = 30):
    return open_stream(executor, request(engine, text), lookahead=lookahead, stall_timeout_s=stall_timeout_s,
                       priority=1)


async def settle(synth: ChunkedSynthesis, quiet_s: float = 0.5) -> int:
    """Wait until the engine has produced something, then nothing for `quiet_s`; return the count."""
    last, since, until = 0, time.monotonic(), time.monotonic() + 30
    while time.monotonic() - since < quiet_s or last == 0:
        assert time.monotonic() < until, "the engine produced nothing"
        await asyncio.sleep(0.02)
        if synth.produced != last:
            last, since = synth.produced, time.monotonic()
    return last


async def test_every_chunk_in_order_then_done(piper_engine, executor_for):
    executor = executor_for(ChunkedSynthesis(piper_engine))
    before = time.monotonic()
    job = stream(executor, piper_engine)
    assert before <= job.started <= time.monotonic()
    chunks = [chunk async for chunk in job]
    assert np.array_equal(np.concatenate(chunks), reference(piper_engine, PHRASE))
    await asyncio.wait_for(job.done, 5)


async def test_unread_chunks_pause_the_request_until_the_consumer_reads(piper_engine, executor_for):
    synth = ChunkedSynthesis(piper_engine)
    job = stream(executor_for(synth), piper_engine, lookahead=3)
    assert await settle(synth) == 3           # paused with `lookahead` chunks unread
    assert not job.done.done()
    iterator = aiter(job)
    await anext(iterator)
    assert await settle(synth) == 4           # one taken, one more made
    rest = [chunk async for chunk in iterator]
    assert synth.produced == len(rest) + 1 > 4
    await asyncio.wait_for(job.done, 5)


async def test_stop_cancels_a_paused_request(piper_engine, executor_for):
    synth = ChunkedSynthesis(piper_engine)
    job = stream(executor_for(synth), piper_engine, lookahead=2)
    assert await settle(synth) == 2
    job.stop()
    await asyncio.wait_for(job.done, 5)       # the executor closed it
    assert [chunk async for chunk in job] == []
    assert synth.produced == 2


async def test_an_engine_error_reaches_the_consumer_after_its_chunks(piper_engine, executor_for):
    job = stream(executor_for(ChunkedSynthesis(piper_engine)), piper_engine, text="This will explode.")
    got = []
    with pytest.raises(RuntimeError, match="fault injected"):
        async for chunk in job:
            got.append(chunk)
    assert len(got) == 1


async def test_a_hung_engine_call_is_declared_stalled(piper_engine, executor_for):
    synth = ChunkedSynthesis(piper_engine)
    executor = executor_for(synth)
    job = stream(executor, piper_engine, text="Now hang.", stall_timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(EngineStalled, match="no audio for"):
        async for _ in job:
            pass
    assert time.monotonic() - started < 5
    if executor_for.kind == "pool":  # the pool replaced its only worker, so it serves on
        assert [chunk async for chunk in stream(executor, piper_engine, text="Served meanwhile.")]
    synth.release.set()


async def test_a_failed_submit_ends_the_stream_with_its_error(piper_engine, executor_for):
    executor = executor_for(ChunkedSynthesis(piper_engine))
    executor.shutdown(timeout_s=2)
    job = stream(executor, piper_engine)
    with pytest.raises(RuntimeError, match="shut down"):
        async for _ in job:
            pass
    await asyncio.wait_for(job.done, 1)
