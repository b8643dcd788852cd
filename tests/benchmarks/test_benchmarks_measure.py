"""The benchmark's measurement code on inputs whose answers are known: player, onset, TTFA, ratios."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.baselines import sentences
from benchmarks.concurrency import capacity
from benchmarks.corpus import CORPUS, select
from benchmarks.measure import Arrival, TurnAudio, measure_turn, simulate_player, speech_onset, summarize
from benchmarks.report import gap_stats, pairwise
from benchmarks.scenario import Pacing, TurnRecord, schedule

SR = 16_000


def tone(seconds: float, dbfs: float, sr: int = SR, freq: float = 220.0) -> np.ndarray:
    """A sine whose RMS is `dbfs` (0 dBFS = RMS 1.0)."""
    t = np.arange(int(seconds * sr)) / sr
    return (np.sqrt(2) * 10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def silence(seconds: float, sr: int = SR) -> np.ndarray:
    return np.zeros(int(seconds * sr), dtype=np.float32)


# -- the player -------------------------------------------------------------------------------


def test_player_counts_each_underrun_with_its_length():
    # 100 ms chunks at 1 kHz: the third arrives 100 ms after the second one has finished playing.
    arrivals = [Arrival(0.0, 100), Arrival(0.05, 100), Arrival(0.30, 100), Arrival(0.35, 100)]
    playout = simulate_player(arrivals, 1000)
    assert [(g.at_s, g.length_s) for g in playout.gaps] == [pytest.approx((0.2, 0.1))]
    assert playout.end_s == pytest.approx(0.5)


def test_jitter_buffer_absorbs_a_late_chunk_and_shifts_playback():
    arrivals = [Arrival(0.0, 100), Arrival(0.05, 100), Arrival(0.30, 100)]
    playout = simulate_player(arrivals, 1000, buffer_s=0.1)
    assert playout.gaps == [] and playout.start_s == pytest.approx(0.1)
    assert playout.play_time(250) == pytest.approx(0.35)


def test_player_resumes_at_arrival_and_keeps_counting_later_gaps():
    arrivals = [Arrival(1.0, 50), Arrival(1.2, 50), Arrival(1.5, 100)]
    playout = simulate_player(arrivals, 1000, buffer_s=0.02)
    assert [round(g.length_s, 6) for g in playout.gaps] == [0.13, 0.25]
    assert sum(g.length_s for g in playout.gaps) == pytest.approx(0.38)
    assert playout.play_time(0) == pytest.approx(1.02)
    assert playout.play_time(60) == pytest.approx(1.21)
    assert playout.play_time(110) == pytest.approx(1.51)


def test_underruns_below_the_threshold_shift_the_clock_but_are_not_gaps():
    arrivals = [Arrival(0.0, 100), Arrival(0.1005, 100)]
    playout = simulate_player(arrivals, 1000)
    assert playout.gaps == []
    assert playout.end_s == pytest.approx(0.2005)


# -- speech onset -------------------------------------------------------------------------------


def test_onset_is_where_sustained_speech_starts_after_leading_silence():
    audio = np.concatenate([silence(0.25), tone(0.5, -20)])
    onset = speech_onset(audio, SR)
    assert onset is not None and abs(onset / SR - 0.25) <= 0.011


def test_a_click_or_a_sound_under_the_gate_is_not_speech():
    click = tone(0.02, -10)  # loud but shorter than 50 ms
    quiet = tone(0.2, -46)  # long but under -40 dBFS
    audio = np.concatenate([silence(0.1), click, silence(0.1), quiet, silence(0.05), tone(0.3, -30)])
    onset = speech_onset(audio, SR)
    assert onset is not None and abs(onset / SR - 0.47) <= 0.011
    assert speech_onset(np.concatenate([silence(0.1), quiet]), SR) is None


def test_dc_offset_is_removed_before_gating():
    assert speech_onset(np.full(SR, 0.5, dtype=np.float32), SR) is None


def test_onset_needs_the_whole_sustain_time_at_the_end_of_the_audio():
    assert speech_onset(np.concatenate([silence(0.2), tone(0.04, -20)]), SR) is None
    assert speech_onset(tone(0.005, -20), SR) is None


# -- TTFA of a turn -------------------------------------------------------------------------------


def test_ttfa_is_first_byte_plus_the_leading_silence_as_played():
    audio = np.concatenate([silence(0.2), tone(1.0, -20)])
    half = audio.size // 2
    turn = TurnAudio((Arrival(0.1, half), Arrival(0.2, audio.size - half)), audio, SR)
    m = measure_turn(turn, buffers_s=(0.0, 0.1))
    assert m.ttfb_ms == pytest.approx(100)
    assert m.ttfa_ms == pytest.approx(300, abs=11)
    assert m.leading_silence_ms == pytest.approx(200, abs=11)
    assert m.audio_s == pytest.approx(1.2)
    assert m.gaps == {"0ms": [], "100ms": []}


def test_an_underrun_before_the_onset_delays_ttfa():
    audio = np.concatenate([silence(0.1), tone(0.5, -20)])
    cut = int(0.05 * SR)  # 50 ms of silence first, the rest 300 ms later
    turn = TurnAudio((Arrival(0.0, cut), Arrival(0.35, audio.size - cut)), audio, SR)
    m = measure_turn(turn, buffers_s=(0.0, 0.4))
    assert m.ttfa_ms == pytest.approx(400, abs=11)
    assert m.gaps["0ms"] == [pytest.approx(300)]
    assert m.gaps["400ms"] == []


def test_silent_turn_has_a_first_byte_but_no_ttfa():
    audio = silence(0.5)
    m = measure_turn(TurnAudio((Arrival(0.05, audio.size),), audio, SR))
    assert m.ttfb_ms == pytest.approx(50) and m.ttfa_ms is None and m.leading_silence_ms is None


# -- statistics and ratios ----------------------------------------------------------------------


def test_summary_percentiles_skip_missing_values():
    s = summarize([*range(1, 101), None])
    assert s["n"] == 100 and s["p50"] == pytest.approx(50.5) and s["p99"] == pytest.approx(99.01)
    assert s["max"] == 100
    assert summarize([None])["p50"] is None


def _turn(reply: str, path: str, ttfa: float, gaps: list[float] = (), audio_s: float = 30.0) -> TurnRecord:
    return TurnRecord(
        reply=reply,
        kind="chat",
        path=path,
        tokens=10,
        text_s=1.0,
        ttfa_ms=ttfa,
        ttfb_ms=ttfa,
        leading_silence_ms=0.0,
        audio_s=audio_s,
        gaps_ms={"0ms": list(gaps)},
        delivery_rtf=0.5,
        text_wait_ms=None,
        synth_ms=None,
    )


def test_ratios_pair_the_same_reply_of_the_same_run():
    ours = [_turn("r1", "voicewire", 100), _turn("r2", "voicewire", 300), _turn("r3", "voicewire", 50)]
    base = [_turn("r2", "baseline_a", 1000), _turn("r1", "baseline_a", 2000), _turn("r3", "baseline_a", 0)]
    r = pairwise(ours, base)
    assert r["n"] == 2 and r["p50"] == pytest.approx((0.05 + 0.3) / 2)
    assert r["ratio_of_medians"] == pytest.approx(100 / 1000)


def test_ratios_pair_turns_of_the_same_pass_only():
    ours = [_turn("r1", "voicewire", 100), _turn("r1", "voicewire", 400)]
    base = [_turn("r1", "baseline_c", 200), _turn("r1", "baseline_c", 200)]
    ours[1].run = base[1].run = 1
    base[0].ttfa_ms = 1000
    assert pairwise(ours, base)["p50"] == pytest.approx((100 / 1000 + 400 / 200) / 2)


def test_gaps_per_minute_of_audio():
    turns = [_turn("r1", "voicewire", 1, gaps=[20.0, 5.0]), _turn("r2", "voicewire", 1, gaps=[])]
    assert gap_stats(turns, "0ms") == {
        "turns_with_gaps": 1,
        "gaps": 2,
        "total_ms": 25.0,
        "max_ms": 20.0,
        "per_minute": 2.0,
    }


def test_capacity_is_the_largest_level_before_the_first_failure():
    def lv(n: int, p95: float, gaps: int) -> dict:
        return {"sessions": n, "ttfa_ms": {"p95": p95}, "gaps": {"100ms": {"gaps": gaps}}}

    levels = [lv(1, 300, 0), lv(2, 400, 0), lv(4, 900, 0), lv(8, 1500, 0), lv(16, 800, 0)]
    assert capacity(levels, "100ms", 1000)["sessions"] == 4
    assert capacity([lv(1, 300, 1), lv(2, 300, 0)], "100ms", 1000)["sessions"] is None


# -- corpus, schedule, sentences ------------------------------------------------------------------


def test_corpus_has_every_kind_and_interleaves_them():
    assert len(CORPUS) >= 30 and len({r.id for r in CORPUS}) == len(CORPUS)
    assert [r.kind for r in select(limit=4)] == ["chat", "npc", "long", "chat"]
    assert {r.kind for r in select(("npc",))} == {"npc"}


def test_schedule_is_seeded_and_paced_at_the_token_rate():
    text = CORPUS[0].text
    a, b = schedule(text, Pacing(30, 0.3), seed=3), schedule(text, Pacing(30, 0.3), seed=3)
    assert a == b and a.text == text and a.offsets[0] == 0.0
    steps = np.diff(a.offsets)
    assert steps.min() >= 0.7 / 30 - 1e-9 and steps.max() <= 1.3 / 30 + 1e-9
    assert schedule(text, Pacing(0), seed=1).offsets[-1] == 0.0
    assert a.available_at(len(a.deltas[0])) == 0.0
    assert a.available_at(len(text)) == a.offsets[-1]


def test_sentences_partition_the_text_at_sentence_ends_and_list_lines():
    text = "Dr. Patel said 0.62 miles. Go now!\n- one item\n- two items\nDone"
    spans = sentences(text)
    assert "".join(text[a:b] for a, b in spans) == text
    assert [text[a:b] for a, b in spans] == [
        "Dr. Patel said 0.62 miles. ",
        "Go now!\n",
        "- one item\n",
        "- two items\n",
        "Done",
    ]
    for reply in CORPUS:
        assert "".join(reply.text[a:b] for a, b in sentences(reply.text)) == reply.text
