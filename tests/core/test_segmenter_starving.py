"""The starving rule weighs the audio queued ahead against the time the pending phrase will take.

A later phrase is cut by the first-phrase rules while `ahead < ahead_starving_s + rate * length`,
where `rate` is the engine's synthesis time per character (`synth_s_per_char` until the session
reports a measured one with `set_synthesis_rate`). With no rate the rule is the fixed threshold.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.core.segmenter import PhraseCutter, SynthesisRate
from tests.core.test_segmenter import FAST, SMALL, run, splits

# SMALL starves below 1.0 s; its soft cap is 40 characters, so the clause below is only taken when starving.
TEXT = "First one here. The tram stops at the bridge, and the bus goes on to the harbour."


def phrases(ahead: float, rate: float | None = None, prior: float = 0.0) -> list[str]:
    cutter = PhraseCutter(replace(SMALL, synth_s_per_char=prior))
    if rate is not None:
        cutter.set_synthesis_rate(rate)
    out: list[str] = []
    for token in TEXT.split(" "):
        cutter.set_audio_ahead(ahead)
        out += cutter.push(token + " ", 0.0)
    return out + cutter.end()


def test_without_a_rate_the_fixed_threshold_decides() -> None:
    assert phrases(ahead=1.5)[1] == "The tram stops at the bridge, and the bus goes on to the harbour. "
    assert phrases(ahead=1.5) == phrases(ahead=1.5, rate=0.0)


def test_a_slow_engine_makes_the_same_queue_a_starving_one() -> None:
    # 30 characters up to the comma at 0.02 s each: 1.0 + 0.6 > 1.5 s queued, so the clause is taken.
    assert phrases(ahead=1.5, rate=0.02)[1] == "The tram stops at the bridge, "
    assert phrases(ahead=3.0, rate=0.02)[1].endswith("harbour. ")  # enough queued even for that engine


def test_the_configured_prior_applies_until_a_measured_rate_replaces_it() -> None:
    assert phrases(ahead=1.5, prior=0.02)[1] == "The tram stops at the bridge, "
    assert phrases(ahead=1.5, prior=0.02, rate=0.0)[1].endswith("harbour. ")


def test_a_stalled_later_phrase_is_released_when_its_synthesis_would_outlast_the_queue() -> None:
    cutter = PhraseCutter(SMALL)
    cutter.set_audio_ahead(0.0)
    assert cutter.push("Hello there, friend. The next sentence is slow", 0.0)
    cutter.set_audio_ahead(1.2)
    assert cutter.tick(5.0) == []  # 1.2 s queued, nothing known about the engine: hold
    cutter.set_synthesis_rate(0.01)  # 25 characters pending: 1.0 + 0.25 > 1.2
    assert cutter.tick(5.0) == ["The next sentence is slow"]


def test_the_starving_threshold_grows_with_the_pending_text() -> None:
    cutter = PhraseCutter(SMALL)
    cutter.set_audio_ahead(0.0)
    cutter.push("Hello there, friend. Then", 0.0)
    assert cutter.starving_below_s() == SMALL.ahead_starving_s
    cutter.set_synthesis_rate(0.01)
    assert cutter.starving_below_s() == SMALL.ahead_starving_s + 0.01 * len(cutter.pending)


def test_synthesis_rate_is_a_moving_average_of_seconds_per_character() -> None:
    rate = SynthesisRate(weight=0.5)
    assert rate.seconds_per_char is None
    rate.observe(100, 1.0)
    assert rate.seconds_per_char == pytest.approx(0.01)
    rate.observe(100, 3.0)
    assert rate.seconds_per_char == pytest.approx(0.02)
    rate.observe(0, 5.0)  # nothing said: nothing learnt
    assert rate.seconds_per_char == pytest.approx(0.02)


@FAST
@given(splits(), st.sampled_from([0.0, 0.8, 2.0, 10.0]), st.sampled_from([0.0, 0.005, 0.05]))
def test_partition_and_chunking_invariance_hold_with_a_rate(case, ahead, rate) -> None:
    text, deltas = case
    config = replace(SMALL, synth_s_per_char=rate, release_opener=True)
    result = run(config, deltas, ahead)
    assert "".join(result) == text and all(result)
    assert result == run(config, [text], ahead) == run(config, list(text), ahead)
