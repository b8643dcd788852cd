"""The ordered CPU watermark stage: the in-line marker's samples, Perth still detects them, the engine uses it."""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest

pytest.importorskip("chatterbox", reason="the chatterbox extra is not installed (pip install 'voicewire[chatterbox]')")

from stream.core.protocol import GenerationSettings  # noqa: E402
from stream.engines.base import SynthesisRequest  # noqa: E402
from stream.engines.chatterbox.watermark import StreamingWatermarker, WatermarkStage, load_watermarker  # noqa: E402
from tests.chatterbox_checkpoint import shared_engine, speechlike_clip  # noqa: E402

pytestmark = pytest.mark.chatterbox

SR = 24_000
CHUNKS = (3_000, 7_680, 500, 15_360, 15_360, 4_000)   # uneven, one shorter than the holdback


@pytest.fixture(scope="module")
def watermarker():
    return load_watermarker()


def _split(audio: np.ndarray) -> list[np.ndarray]:
    edges = np.cumsum(CHUNKS)[:-1]
    return np.split(audio[: sum(CHUNKS)], edges)


def _inline(watermarker, chunks: list[np.ndarray]) -> np.ndarray:
    marker = StreamingWatermarker(watermarker, SR)
    out = [marker.push(c) for c in chunks[:-1]]
    out += [marker.push(chunks[-1]), marker.finish()]
    return np.concatenate(out)


def test_stage_gives_the_inline_samples_for_interleaved_phrases(watermarker):
    first, second = _split(speechlike_clip(2.5, seed=1)), _split(speechlike_clip(2.5, seed=2))
    stage = WatermarkStage(watermarker, SR)
    try:
        futures: dict[str, list] = {"a": [], "b": []}
        for i, (a, b) in enumerate(zip(first, second, strict=True)):
            final = i == len(CHUNKS) - 1
            futures["a"].append(stage.submit("a", a, final))
            futures["b"].append(stage.submit("b", b, final))
        marked = {k: np.concatenate([f.result() for f in fs]) for k, fs in futures.items()}
        assert stage.phrases_in_flight == 0
    finally:
        stage.close()
    np.testing.assert_array_equal(marked["a"], _inline(watermarker, first))
    np.testing.assert_array_equal(marked["b"], _inline(watermarker, second))
    assert len(marked["a"]) == sum(CHUNKS)
    assert not np.array_equal(marked["a"], np.concatenate(first))       # it did mark
    assert watermarker.get_watermark(marked["a"], sample_rate=SR).mean() > 0.9
    assert watermarker.get_watermark(np.concatenate(first), sample_rate=SR).mean() < 0.5


def test_discard_drops_an_unfinished_phrase(watermarker):
    stage = WatermarkStage(watermarker, SR)
    try:
        stage.submit("cancelled", speechlike_clip(0.5), final=False).result()
        assert stage.phrases_in_flight == 1
        stage.discard("cancelled")
        stage.submit("other", speechlike_clip(0.2), final=True).result()   # runs after the discard
        assert stage.phrases_in_flight == 0
    finally:
        stage.close()


def test_engine_output_is_the_inline_marking_of_its_plain_chunks(tmp_path_factory):
    engine = shared_engine(tmp_path_factory)
    plain_engine = copy.copy(engine)
    plain_engine.watermark = False
    req = SynthesisRequest(text="Hello there, how are you today?", voice=engine.default_voice(),
                           generation=GenerationSettings(seed=5), first_in_context=True)
    plain = list(plain_engine.synthesize(req, threading.Event()))
    marked = list(engine.synthesize(req, threading.Event()))
    assert len(plain) > 2
    np.testing.assert_array_equal(np.concatenate(marked), _inline(engine.loaded.tts.watermarker, plain))
    assert engine.watermark_stage.phrases_in_flight == 0


def test_a_cancelled_phrase_leaves_no_state_in_the_stage(tmp_path_factory):
    engine = shared_engine(tmp_path_factory)
    req = SynthesisRequest(text="Hello there, how are you today?", voice=engine.default_voice(),
                           generation=GenerationSettings(seed=6), first_in_context=True)
    chunks = engine.synthesize(req, threading.Event())
    next(chunks)
    chunks.close()                  # the consumer went away mid-phrase
    stage = engine.watermark_stage
    stage.submit("barrier", speechlike_clip(0.2), final=True).result()   # runs after the discard
    assert stage.phrases_in_flight == 0
