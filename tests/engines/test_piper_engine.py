"""The embedded Piper voice: generation-field mapping, determinism at temperature 0, cancel."""

from __future__ import annotations

import sys
import threading
import tracemalloc

import numpy as np
import pytest

from stream.core.protocol import GenerationSettings
from stream.engines.base import SynthesisRequest
from stream.engines.piper.engine import _noise_w, _synthesis_config
from stream.engines.piper.units import CallPace, synthesis_units


def chunks_of(engine, text: str, cancel: threading.Event | None = None, first: bool = False,
              **gen) -> list[np.ndarray]:
    request = SynthesisRequest(text=text, voice=engine.default_voice(), generation=GenerationSettings(**gen),
                               first_in_context=first)
    return list(engine.synthesize(request, cancel or threading.Event()))


def speak(engine, text: str, cancel: threading.Event | None = None, **gen) -> np.ndarray:
    chunks = chunks_of(engine, text, cancel, **gen)
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


def dbfs(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


def phonemes(text: str) -> list[str]:
    return list(text)


def test_only_a_contexts_first_sentence_is_split_and_only_after_its_first_pause():
    sentences = [phonemes("həm, ðæt ɹˈɛsᵻpi, sˈɜːvz fˈɔːɹ."), phonemes("wˈɛl, wˈɛl.")]
    first, rest, *others = synthesis_units(sentences, first_in_context=True)
    assert "".join(first) == "həm," and "".join(rest) == "ðæt ɹˈɛsᵻpi, sˈɜːvz fˈɔːɹ."
    assert others == [sentences[1]]
    assert synthesis_units(sentences, first_in_context=False) == sentences


@pytest.mark.parametrize("sentence", ["jˈɛs, ", "jˈɛs.", ", jˈɛs.", "hˈɔlt!"])
def test_no_split_without_words_on_both_sides_of_a_pause(sentence):
    assert synthesis_units([phonemes(sentence)], first_in_context=True) == [phonemes(sentence)]


def test_the_split_waits_for_a_pace_at_which_the_first_words_cover_the_rest():
    pace = CallPace(rtf=0.05, weight=0.5)
    first, rest = phonemes("jˈɛs,"), phonemes("ðə fˈɑːɹməsi ɪz ˈoʊpən.")  # 5 and 23 phonemes
    assert pace.covers(first, rest)  # 0.05 x 23 <= 0.8 x 5
    pace.observe(audio_s=1.0, wall_s=0.45)  # a loaded machine: RTF 0.05 -> 0.25
    assert pace.rtf == pytest.approx(0.25) and not pace.covers(first, rest)
    assert synthesis_units([first + [" "] + rest], True, pace.covers) == [first + [" "] + rest]


@pytest.fixture
def fast_pace(piper_engine, monkeypatch):
    """A pace at which every first phrase is worth splitting, whatever this machine's load."""
    monkeypatch.setattr(piper_engine, "pace", CallPace(rtf=0.0, weight=0.0))


def test_first_phrase_first_audio_covers_only_the_words_up_to_the_comma(piper_engine, fast_pace):
    text = "Hmm, that recipe serves four people."
    whole = chunks_of(piper_engine, text, temperature=0, exaggeration=0)
    split = chunks_of(piper_engine, text, first=True, temperature=0, exaggeration=0)
    assert len(whole) == 1 and len(split) == 2
    assert split[0].size < 0.3 * whole[0].size
    # Same words (the units' phonemes are the sentence's: see the test above), so the phrase's
    # length changes only by the join's pause, tens of ms.
    assert abs(sum(c.size for c in split) - whole[0].size) < 0.15 * piper_engine.sample_rate


def test_the_join_of_a_split_first_phrase_is_near_silence_without_a_click(piper_engine, fast_pace):
    first, rest = chunks_of(piper_engine, "Yes, the pharmacy is open.", first=True, temperature=0)
    ms10 = piper_engine.sample_rate // 100
    assert dbfs(first[-ms10:]) < -70 and dbfs(rest[:ms10]) < -70   # both sides of the join are quiet
    joined = np.concatenate([first[-ms10:], rest[:ms10]])
    assert np.max(np.abs(np.diff(joined))) < 0.005                  # and nothing jumps across it


def test_a_slow_machine_keeps_the_first_phrase_whole(piper_engine, monkeypatch):
    monkeypatch.setattr(piper_engine, "pace", CallPace(rtf=0.5, weight=0.0))
    assert len(chunks_of(piper_engine, "Yes, the pharmacy is open.", first=True)) == 1


def test_concurrent_calls_share_the_cores_without_spinning(piper_engine):
    import os

    options = piper_engine._voice.session.get_session_options()
    cores = len(os.sched_getaffinity(0))
    assert options.intra_op_num_threads == piper_engine.threads_per_call >= 1
    assert piper_engine.threads_per_call * piper_engine.default_workers <= max(cores, piper_engine.default_workers)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_later_phrases_are_piper_calls_per_sentence_exactly(piper_engine):
    text = "Hmm, that recipe serves four. And more."
    config = _synthesis_config(GenerationSettings(temperature=0, exaggeration=0))
    reference = [c.audio_float_array for c in piper_engine._voice.synthesize(text, syn_config=config)]
    ours = chunks_of(piper_engine, text, temperature=0, exaggeration=0)
    assert len(ours) == len(reference) and all(np.array_equal(a, b) for a, b in zip(ours, reference, strict=True))


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
