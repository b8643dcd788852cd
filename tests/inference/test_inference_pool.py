"""The thread pool through the executor hook, with the real Piper voice: submit and sink, cancel
within one chunk, pause/resume (a paused request frees its worker), priority then deadline order,
a hung engine call abandoned and replaced, shutdown."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from stream.engines.base import Engine
from stream.inference.pool import InferencePool
from tests.inference.inference_helpers import ChunkedSynthesis, RecordingSink, reference, request

PHRASE = "Two short sentences. Spoken by the pool."


@pytest.fixture
def pool_of(piper_engine: Engine):
    pools: list[InferencePool] = []

    def make(synthesize=None, workers: int = 1) -> InferencePool:
        pools.append(InferencePool(synthesize or piper_engine.synthesize, workers))
        return pools[-1]

    yield make
    for pool in pools:
        pool.shutdown(timeout_s=2)


def wait_until(check, timeout: float = 30.0) -> None:
    until = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < until, "timed out"
        time.sleep(0.01)


def test_the_sink_gets_the_phrase_then_one_finished(piper_engine, pool_of):
    pool = pool_of()
    sink = RecordingSink()
    pool.submit(request(piper_engine, PHRASE), sink, priority=1, deadline=None)
    assert sink.done.wait(30)
    assert sink.error is None and sink.finished_calls == 1
    assert np.array_equal(sink.audio(), reference(piper_engine, PHRASE))


def test_cancel_stops_within_one_chunk(piper_engine, pool_of):
    synth = ChunkedSynthesis(piper_engine, gate=threading.Event())
    pool = pool_of(synth)
    handles = []
    sink = RecordingSink(on_chunk=lambda n: handles[0].cancel() if n == 2 else None)
    handles.append(pool.submit(request(piper_engine, PHRASE), sink, priority=1, deadline=None))
    synth.gate.set()
    assert sink.done.wait(30)
    assert sink.error is None and len(sink.chunks) == 2
    assert synth.produced == 2  # the engine was not asked for a third chunk


def test_a_paused_request_parks_and_frees_its_worker(piper_engine, pool_of):
    synth = ChunkedSynthesis(piper_engine, gate=threading.Event())
    pool = pool_of(synth, workers=1)
    handles = []
    paused = RecordingSink(on_chunk=lambda n: handles[0].pause() if n == 3 else None)
    handles.append(pool.submit(request(piper_engine, PHRASE), paused, priority=1, deadline=None))
    synth.gate.set()
    wait_until(lambda: len(paused.chunks) == 3)
    other = RecordingSink()
    pool.submit(request(piper_engine, "Another request."), other, priority=1, deadline=None)
    assert other.done.wait(30)  # the only worker was free for it
    assert len(paused.chunks) == 3 and not paused.done.is_set() and handles[0].busy_s() == 0.0
    handles[0].resume()
    assert paused.done.wait(30) and paused.error is None
    assert np.array_equal(paused.audio(), reference(piper_engine, PHRASE))  # nothing lost or repeated


def test_priority_first_then_earliest_deadline(piper_engine, pool_of):
    synth = ChunkedSynthesis(piper_engine, gate=threading.Event())
    pool = pool_of(synth, workers=1)
    now = time.monotonic()
    sinks = [RecordingSink() for _ in range(6)]
    busy = pool.submit(request(piper_engine, "Busy."), sinks[0], priority=1, deadline=None)
    wait_until(lambda: busy.busy_s() > 0)  # on the only worker, held at the gate: the rest queue up
    pool.submit(request(piper_engine, "Late."), sinks[1], priority=1, deadline=now + 5)
    pool.submit(request(piper_engine, "Whenever."), sinks[2], priority=1, deadline=None)
    pool.submit(request(piper_engine, "Soon."), sinks[3], priority=1, deadline=now + 1)
    pool.submit(request(piper_engine, "First phrase."), sinks[4], priority=0, deadline=None)
    moved = pool.submit(request(piper_engine, "Moved up."), sinks[5], priority=1, deadline=now + 10)
    moved.set_deadline(now + 0.5)
    synth.gate.set()
    assert all(sink.done.wait(30) for sink in sinks)
    assert synth.started == ["Busy.", "First phrase.", "Moved up.", "Soon.", "Late.", "Whenever."]


def test_an_abandoned_hung_call_gets_a_replacement_worker(piper_engine, pool_of):
    synth = ChunkedSynthesis(piper_engine)
    pool = pool_of(synth, workers=1)
    stuck_sink = RecordingSink()
    stuck = pool.submit(request(piper_engine, "Now hang."), stuck_sink, priority=1, deadline=None)
    wait_until(lambda: stuck.busy_s() > 0.2)
    stuck.abandon()
    other = RecordingSink()
    pool.submit(request(piper_engine, "Served meanwhile."), other, priority=1, deadline=None)
    assert other.done.wait(30) and other.error is None
    assert not stuck_sink.done.is_set()
    synth.release.set()  # the stuck call returns: its request ends as cancelled, its thread retires
    assert stuck_sink.done.wait(30) and stuck_sink.error is None and stuck_sink.finished_calls == 1


def test_an_engine_error_reaches_the_sink(piper_engine, pool_of):
    pool = pool_of(ChunkedSynthesis(piper_engine))
    sink = RecordingSink()
    pool.submit(request(piper_engine, "This will explode."), sink, priority=1, deadline=None)
    assert sink.done.wait(30)
    assert len(sink.chunks) == 1 and "fault injected" in str(sink.error)


def test_after_shutdown_nothing_is_accepted_and_parked_requests_end(piper_engine, pool_of):
    pool = pool_of(ChunkedSynthesis(piper_engine))
    handles = []
    parked = RecordingSink(on_chunk=lambda n: handles[0].pause() if n == 1 else None)
    handles.append(pool.submit(request(piper_engine, PHRASE), parked, priority=1, deadline=None))
    wait_until(lambda: len(parked.chunks) == 1)
    pool.shutdown(timeout_s=5)
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(request(piper_engine, PHRASE), RecordingSink(), priority=1, deadline=None)
    handles[0].resume()
    assert parked.done.is_set() and "shut down" in str(parked.error)
