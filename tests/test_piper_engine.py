"""The embedded Piper voice: generation-field mapping, determinism at temperature 0, cancel."""

from __future__ import annotations

import sys
import threading
import tracemalloc

import numpy as np
import pytest

from stream.core.protocol import GenerationSettings
from stream.engines.base import SynthesisRequest
from stream.engines.piper.engine import _noise_w


def speak(engine, text: str, cancel: threading.Event | None = None, **gen) -> np.ndarray:
    request = SynthesisRequest(text=text, voice=engine.default_voice(), generation=GenerationSettings(**gen))
    chunks = list(engine.synthesize(request, cancel or threading.Event()))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


def test_exaggeration_maps_onto_a_stable_duration_variance():
    assert _noise_w(0) == 0 and _noise_w(0.5) == pytest.approx(0.8) and _noise_w(2) == pytest.approx(1.2)
    points = [0, 0.3, 0.5, 1, 1.5, 2]
    assert all(_noise_w(a) < _noise_w(b) for a, b in zip(points, points[1:], strict=False))


def test_high_exaggeration_does_not_stretch_speech(piper_engine):
    text = "And this one is more animated!"
    base = speak(piper_engine, text, temperature=0).size
    for _ in range(4):
        assert speak(piper_engine, text, exaggeration=2.0).size < 1.5 * base


def test_temperature_zero_is_deterministic_and_speed_changes_length(piper_engine):
    a = speak(piper_engine, "The same words twice.", temperature=0, exaggeration=0)
    b = speak(piper_engine, "The same words twice.", temperature=0, exaggeration=0)
    assert np.array_equal(a, b)
    fast = speak(piper_engine, "The same words twice.", temperature=0, exaggeration=0, speed=2.0)
    assert fast.size < 0.65 * a.size
    assert 0.2 < np.abs(a).max() <= 1.0  # a usual speech level, not clipped


def test_cancel_before_start_yields_nothing(piper_engine):
    cancel = threading.Event()
    cancel.set()
    assert speak(piper_engine, "First sentence. Second sentence.", cancel).size == 0


def test_phonemizing_does_not_leak_its_clauses(piper_engine):
    """piper-tts 1.8.0's espeakbridge kept one reference too many to every clause tuple it
    returned, so each clause ever spoken stayed in memory; the engine's load() drops it."""
    from piper import espeakbridge

    clauses = espeakbridge.get_phonemes("First, second. Third?")
    fresh = [(a, b, c) for a, b, c in clauses]
    assert len(clauses) == 3
    assert [sys.getrefcount(c) for c in clauses] == [sys.getrefcount(c) for c in fresh]

    texts = [f"Clause number {i}, and another one. Then a question {i}?" for i in range(1000)]
    piper_engine._voice.phonemize(texts[0])
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for text in texts:
            piper_engine._voice.phonemize(text)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 50_000, f"{grown} bytes kept after phonemizing 1000 texts (3000 clauses)"
