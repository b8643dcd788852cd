"""The batching executor on a random-weight checkpoint: batch-invariant audio, cancel, pause, shutdown.

Phrases are capped at 12 tokens (two flushes each), so a test costs a few S3Gen passes on a CPU.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time

import numpy as np
import pytest

pytest.importorskip("chatterbox", reason="the chatterbox extra is not installed (pip install 'voicewire[chatterbox]')")

from stream.core.batch_schedule import ScheduleConfig  # noqa: E402
from stream.core.errors import RateLimited, Unsupported  # noqa: E402
from stream.core.protocol import GenerationSettings  # noqa: E402
from stream.engines.base import SynthesisRequest  # noqa: E402
from stream.engines.chatterbox.batched_t3 import T3Batch  # noqa: E402
from stream.engines.chatterbox.batching import BatchingExecutor  # noqa: E402
from stream.engines.chatterbox.engine import ChatterboxEngine, StreamTuning  # noqa: E402
from stream.inference.pool import InferencePool  # noqa: E402
from tests.chatterbox_checkpoint import TEST_TUNING, shared_engine  # noqa: E402

pytestmark = [pytest.mark.chatterbox, pytest.mark.timeout(600)]   # full-size S3Gen flushes on a shared CPU

WAIT_S = 120.0   # generous: the CPU is shared; no assertion depends on it unless something hangs


class Sink:
    """Collects one request's chunks; `on_chunk` runs on the loop thread after each."""

    def __init__(self, on_chunk=None) -> None:
        self.chunks: list[np.ndarray] = []
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.finishes = 0
        self._on_chunk = on_chunk

    def chunk(self, samples: np.ndarray) -> None:
        assert not self.done.is_set(), "a chunk after finished"
        self.chunks.append(samples)
        if self._on_chunk is not None:
            self._on_chunk(self)

    def finished(self, error: BaseException | None) -> None:
        self.finishes += 1
        self.error = error
        self.done.set()

    def wait(self) -> Sink:
        assert self.done.wait(WAIT_S), "the request never finished"
        return self

    @property
    def audio(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.float32)


class Recorder:
    """An `EngineObserver` that keeps what it is told."""

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.flushes: list[int] = []
        self.waits: list[float] = []
        self.misses = 0

    def decode_step(self, rows: int, seconds: float) -> None:
        self.rows.append(rows)

    def flush_batch(self, requests: int) -> None:
        self.flushes.append(requests)

    def queue_wait(self, seconds: float) -> None:
        self.waits.append(seconds)

    def deadline_miss(self) -> None:
        self.misses += 1


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """The shared test engine with phrases capped at 12 tokens (no second load)."""
    engine = copy.copy(shared_engine(tmp_path_factory))
    engine.tuning = StreamTuning(**{**TEST_TUNING, "max_new_tokens": 12})
    return engine


@pytest.fixture
def make_executor(engine):
    executors: list[BatchingExecutor] = []

    def make(rows: int = 8, tokens: int = 12, clock=time.monotonic, **schedule) -> BatchingExecutor:
        """An executor on the shared model; `tokens` caps its phrases (24: four chunks, room to steer)."""
        t3 = engine.loaded.tts.t3
        runner = T3Batch(t3, rows=rows, max_positions=256, device="cpu", dtype=t3.speech_emb.weight.dtype)
        capped = copy.copy(engine)
        capped.tuning = dataclasses.replace(engine.tuning, max_new_tokens=tokens)
        executor = BatchingExecutor(capped, runner, ScheduleConfig(row_budget=rows, **schedule), clock=clock)
        executors.append(executor)
        return executor

    yield make
    for executor in executors:
        executor.shutdown(timeout_s=60)


def phrase(engine, text: str, seed: int, first: bool = True, **generation) -> SynthesisRequest:
    return SynthesisRequest(text=text, voice=engine.default_voice(), first_in_context=first,
                            generation=GenerationSettings(seed=seed, **generation))


TEXTS = ["Hello there, how are you today?", "The weather is nice.", "One more sentence to say."]


def run_alone(executor, request) -> Sink:
    sink = Sink()
    executor.submit(request, sink, priority=0, deadline=None)
    return sink.wait()


def test_requests_together_sound_as_they_do_alone(engine, make_executor):
    executor = make_executor()
    requests = [phrase(engine, text, seed=i + 1) for i, text in enumerate(TEXTS)]
    alone = [run_alone(executor, r) for r in requests]
    observer = Recorder()
    executor.observe(observer)
    together = [Sink() for _ in requests]
    for r, sink in zip(requests, together, strict=True):
        executor.submit(r, sink, priority=0, deadline=None)
    for a, t in zip(alone, together, strict=True):
        t.wait()
        assert a.error is None and t.error is None and t.finishes == 1
        assert [len(c) for c in t.chunks] == [len(c) for c in a.chunks]   # the same chunking
        np.testing.assert_allclose(t.audio, a.audio, atol=1e-4)
    assert max(observer.rows) == 2 * len(requests)    # CFG: two rows each, all in one step
    assert max(observer.flushes) >= 2


def test_a_request_joining_a_running_batch_sounds_as_alone(engine, make_executor):
    executor = make_executor()
    first, second = phrase(engine, TEXTS[0], seed=3), phrase(engine, TEXTS[1], seed=4)
    alone = run_alone(executor, second)
    joined = Sink()

    def join(sink: Sink) -> None:
        if len(sink.chunks) == 1:
            executor.submit(second, joined, priority=0, deadline=None)

    executor.submit(first, Sink(on_chunk=join), priority=0, deadline=None)
    joined.wait()
    assert [len(c) for c in joined.chunks] == [len(c) for c in alone.chunks]
    np.testing.assert_allclose(joined.audio, alone.audio, atol=1e-4)


def test_chunks_follow_the_requests_own_sizes(engine, make_executor):
    executor = make_executor()
    first = run_alone(executor, phrase(engine, TEXTS[0], seed=5, first=True))
    later = run_alone(executor, phrase(engine, TEXTS[0], seed=5, first=False))
    # The same seed gives the same tokens; only the request's own chunking differs: a first phrase's
    # first chunk is the smaller one (4 tokens, later phrases 6).
    assert len(first.audio) == len(later.audio)
    assert len(first.chunks[0]) < len(later.chunks[0])


def test_cancel_mid_phrase_ends_it_and_frees_its_rows(engine, make_executor):
    executor = make_executor(rows=2, tokens=24)
    request = phrase(engine, TEXTS[0], seed=1)
    whole = run_alone(executor, request)
    handles: list = []

    def cancel(sink: Sink) -> None:
        if len(sink.chunks) == 1:
            handles[0].cancel()

    sink = Sink(on_chunk=cancel)
    handles.append(executor.submit(request, sink, priority=0, deadline=None))
    sink.wait()
    # Chunks already at the watermark stage may still arrive; the rest of the phrase does not.
    assert sink.error is None and sink.finishes == 1 and len(sink.chunks) < len(whole.chunks)
    # Both rows are free again: a CFG request (2 rows) runs to its end.
    after = run_alone(executor, phrase(engine, TEXTS[1], seed=2))
    assert after.error is None and after.chunks
    assert executor._runner.free_rows == 2


def test_pause_stops_output_and_resume_continues_without_loss(engine, make_executor):
    executor = make_executor(tokens=24)
    request = phrase(engine, TEXTS[0], seed=9)
    whole = run_alone(executor, request)
    handles: list = []
    paused = threading.Event()

    def pause(sink: Sink) -> None:
        if len(sink.chunks) == 1:
            handles[0].pause()
            paused.set()

    sink = Sink(on_chunk=pause)
    handles.append(executor.submit(request, sink, priority=0, deadline=None))
    assert paused.wait(WAIT_S)
    # Other requests run meanwhile, so the loop keeps stepping while this one is paused.
    run_alone(executor, phrase(engine, TEXTS[1], seed=2))
    held = len(sink.chunks)
    run_alone(executor, phrase(engine, TEXTS[2], seed=3))
    assert len(sink.chunks) == held < len(whole.chunks) and not sink.done.is_set()
    assert handles[0].busy_s() == 0.0
    handles[0].resume()
    sink.wait()
    assert sink.error is None
    np.testing.assert_allclose(sink.audio, whole.audio, atol=1e-4)


def test_a_request_beyond_the_queue_bound_is_refused_as_rate_limited(engine, make_executor):
    # One CFG request fills the 2 rows; the next waits one service time (5 s), the third two (10 s).
    executor = make_executor(rows=2, max_queue_wait_s=7.0, expected_service_s=5.0)
    sinks = [Sink() for _ in range(3)]
    for i, sink in enumerate(sinks):
        executor.submit(phrase(engine, TEXTS[i], seed=i), sink, priority=0, deadline=None)
    for sink in sinks:
        sink.wait()
    assert [s.error is None for s in sinks] == [True, True, False]
    assert isinstance(sinks[2].error, RateLimited) and "expected wait 10.0 s exceeds 7 s" in str(sinks[2].error)


def test_a_bad_request_fails_alone(engine, make_executor):
    executor = make_executor()
    bad, good = Sink(), Sink()
    executor.submit(phrase(engine, TEXTS[0], seed=1, language="xx"), bad, priority=0, deadline=None)
    executor.submit(phrase(engine, TEXTS[1], seed=1), good, priority=0, deadline=None)
    assert isinstance(bad.wait().error, Unsupported)
    assert good.wait().error is None and good.chunks


def test_only_a_chunk_reaching_a_dry_listener_counts_as_a_deadline_miss(engine, make_executor):
    """On a frozen clock the listener never plays: a phrase with no deadline never misses, and one due
    before 'now' misses with its first chunk only, because every chunk delivered puts its length of
    audio ahead of the listener (the executor moves the request's deadline by it)."""
    executor = make_executor(tokens=24, clock=lambda: 1000.0)
    observer = Recorder()
    executor.observe(observer)
    first = run_alone(executor, phrase(engine, TEXTS[0], seed=3))
    assert first.error is None and len(first.chunks) >= 2
    assert observer.misses == 0
    sink = Sink()
    executor.submit(phrase(engine, TEXTS[0], seed=3, first=False), sink, priority=1, deadline=999.0)
    sink.wait()
    assert sink.error is None and len(sink.chunks) >= 2
    assert observer.misses == 1
    assert len(observer.waits) == 2


def test_shutdown_ends_running_requests_and_refuses_new_ones(engine, make_executor):
    executor = make_executor()
    started = threading.Event()
    sink = Sink(on_chunk=lambda s: started.set())
    executor.submit(phrase(engine, TEXTS[0], seed=1), sink, priority=0, deadline=None)
    assert started.wait(WAIT_S)
    executor.shutdown()
    sink.wait()
    assert sink.finishes == 1
    with pytest.raises(RuntimeError, match="shut down"):
        executor.submit(phrase(engine, TEXTS[0], seed=1), Sink(), priority=0, deadline=None)


def test_the_engine_batches_by_default_and_the_flag_selects_the_serial_pool(engine):
    executor = engine.create_executor(1)
    try:
        assert isinstance(executor, BatchingExecutor)
        assert executor.limits().to_wire() == {"engine_batch_rows": 4, "engine_max_queue_wait_s": 10.0}
        assert engine.capabilities.notes["batching"].startswith("on")
    finally:
        executor.shutdown()
    serial = copy.copy(engine)
    serial.settings = dataclasses.replace(engine.settings, batching=False)
    pool = serial.create_executor(1)
    assert isinstance(pool, InferencePool) and pool.limits().to_wire() == {}
    pool.shutdown()
    turbo = ChatterboxEngine(engine.settings, variant="chatterbox-turbo")   # not loaded: only its choice
    assert not turbo.batches and turbo.capabilities.notes["batching"].startswith("off: Turbo")


FIVE = [dict(exaggeration=0.3, cfg_weight=0.5, temperature=0.8),
        dict(exaggeration=1.2, cfg_weight=0.0, temperature=1.1, top_p=0.9),
        dict(exaggeration=0.5, cfg_weight=1.0, temperature=0.6, min_p=0.1, repetition_penalty=1.5),
        dict(exaggeration=0.7, cfg_weight=0.3, temperature=0.0),
        dict(exaggeration=0.5, cfg_weight=0.5, temperature=1.0, top_p=0.8, repetition_penalty=1.1)]


def test_five_different_requests_joining_in_turn_sound_exactly_as_alone_at_float64(engine):
    """The issue's equality at a float64 engine dtype: five requests with different text, settings and
    seed, joining one after another while the batch runs, one cancelled midway; every survivor's
    chunks equal its run alone (float64: no float32 rounding to hide behind), and rows are reused."""
    import torch

    wide = copy.copy(engine)
    tts = copy.deepcopy(engine.loaded.tts)
    tts.t3.double()
    tts.s3gen.double()
    wide._loaded = dataclasses.replace(engine.loaded, tts=tts)
    wide.tuning = dataclasses.replace(engine.tuning, max_new_tokens=12)
    wide.watermark = False   # chunks then reach the sinks on the loop thread: the joins and the cancel are exact
    voice = engine.default_voice()   # its T3 prefix in float64 too (the S3Gen reference is cast by the decoder)
    wide._default = dataclasses.replace(voice, conditioning=dataclasses.replace(
        voice.conditioning, t3_prefix=voice.conditioning.t3_prefix.double(), kv={}))
    runner = T3Batch(tts.t3, rows=6, max_positions=256, device="cpu", dtype=torch.float64)
    executor = BatchingExecutor(wide, runner, ScheduleConfig(row_budget=6))
    try:
        texts = [*TEXTS, "A fourth phrase here.", "And the fifth one."]
        requests = [phrase(wide, text, seed=40 + i, **settings)
                    for i, (text, settings) in enumerate(zip(texts, FIVE, strict=True))]
        alone = [run_alone(executor, r) for r in requests]
        sinks: list[Sink] = []
        handles: list = []

        def next_joins(sink: Sink) -> None:   # each request's first chunk lets the next one in
            if len(sink.chunks) == 1 and len(sinks) < len(requests):
                submit(len(sinks))
            if sink is sinks[1] and len(sink.chunks) == 1:
                handles[1].cancel()

        def submit(i: int) -> None:
            sinks.append(Sink(on_chunk=next_joins))
            handles.append(executor.submit(requests[i], sinks[i], priority=0, deadline=None))

        i = 0
        while i < len(requests):
            if i == len(sinks):   # the first, or the one after a request that ended before any chunk
                submit(i)
            sinks[i].wait()
            i += 1
        for i, (a, t) in enumerate(zip(alone, sinks, strict=True)):
            assert a.error is None and t.error is None and t.finishes == 1
            if i == 1:
                assert len(t.chunks) < len(a.chunks)   # cancelled after its first chunk
                continue
            assert [len(c) for c in t.chunks] == [len(c) for c in a.chunks]
            np.testing.assert_allclose(t.audio, a.audio, rtol=0, atol=1e-9)
        assert executor._runner.free_rows == 6
    finally:
        executor.shutdown(timeout_s=60)
