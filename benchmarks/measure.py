"""Client-side measurement, free of I/O: speech onset, a simulated real-time player, percentiles.

Every time here is in seconds relative to the turn's t0 (the moment its first text was sent), so
the same code measures a streamed turn over the websocket and a baseline whose audio arrival
times were put on the same token schedule.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

GATE_DBFS = -40.0
WINDOW_S = 0.010
HOP_S = 0.001
SUSTAIN_S = 0.050
MIN_GAP_S = 0.001  # shorter underruns are below any real player's callback granularity


def speech_onset(
    samples: np.ndarray,
    sample_rate: int,
    gate_dbfs: float = GATE_DBFS,
    window_s: float = WINDOW_S,
    hop_s: float = HOP_S,
    sustain_s: float = SUSTAIN_S,
) -> int | None:
    """Sample index where audible speech starts, or None if the audio never gets there.

    A window is active when its mean-removed RMS reaches `gate_dbfs` (0 dBFS = RMS of 1.0); speech
    starts at the first active window of the first run of active windows spanning `sustain_s`, so
    leading silence, a fade-in or a lone click does not count as audio.
    """
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    win = max(1, round(window_s * sample_rate))
    hop = max(1, round(hop_s * sample_rate))
    if x.size < win:
        return None
    s1 = np.concatenate([[0.0], np.cumsum(x)])
    s2 = np.concatenate([[0.0], np.cumsum(x * x)])
    starts = np.arange(0, x.size - win + 1, hop)
    mean = (s1[starts + win] - s1[starts]) / win
    power = np.maximum((s2[starts + win] - s2[starts]) / win - mean * mean, 0.0)
    active = power >= 10.0 ** (gate_dbfs / 10.0)
    need = max(1, math.ceil((sustain_s * sample_rate - win) / hop) + 1)
    if active.size < need:
        return None
    run = np.concatenate([[0], np.cumsum(active)])
    full = np.flatnonzero(run[need:] - run[:-need] == need)
    return int(starts[full[0]]) if full.size else None


@dataclass(frozen=True)
class Arrival:
    """A piece of audio reaching the client: when, and how many samples."""

    at_s: float
    samples: int


@dataclass(frozen=True)
class Gap:
    at_s: float  # when the player ran dry
    length_s: float  # until the next audio arrived


@dataclass
class Playout:
    """How a real-time player that starts `buffer_s` after the first byte would have played a turn."""

    start_s: float
    end_s: float
    gaps: list[Gap] = field(default_factory=list)
    segments: list[tuple[int, float]] = field(default_factory=list)  # (first sample, play time), per arrival
    sample_rate: int = 1

    def play_time(self, sample: int) -> float:
        """When sample number `sample` of the turn comes out of the speaker."""
        i = bisect.bisect_right([s for s, _ in self.segments], sample) - 1
        first, at = self.segments[max(i, 0)]
        return at + (sample - first) / self.sample_rate


def simulate_player(
    arrivals: Sequence[Arrival], sample_rate: int, buffer_s: float = 0.0, min_gap_s: float = MIN_GAP_S
) -> Playout:
    """Play arrivals in order at 1x; every time the player runs dry before more audio comes is a gap.

    Playback starts `buffer_s` after the first arrival and resumes as soon as audio arrives after an
    underrun (no re-buffering). Underruns shorter than `min_gap_s` shift the clock but are not counted.
    """
    if not arrivals:
        raise ValueError("a playout needs at least one arrival")
    start = arrivals[0].at_s + buffer_s
    playout = Playout(start_s=start, end_s=start, sample_rate=sample_rate)
    clock, position = start, 0
    for arrival in arrivals:
        if arrival.at_s > clock:
            if arrival.at_s - clock >= min_gap_s:
                playout.gaps.append(Gap(clock, arrival.at_s - clock))
            clock = arrival.at_s
        playout.segments.append((position, clock))
        clock += arrival.samples / sample_rate
        position += arrival.samples
    playout.end_s = clock
    return playout


@dataclass(frozen=True)
class TurnAudio:
    """What one turn delivered to the client, in the form the metrics need."""

    arrivals: tuple[Arrival, ...]
    samples: np.ndarray
    sample_rate: int


@dataclass(frozen=True)
class TurnMetrics:
    ttfa_ms: float | None  # first text sent -> speech onset plays (player starting at the first byte)
    ttfb_ms: float  # first text sent -> first audio byte received
    leading_silence_ms: float | None
    audio_s: float
    gaps: dict[str, list[float]]  # buffer label ("0ms", "100ms") -> gap lengths in ms


def buffer_label(buffer_s: float) -> str:
    return f"{round(buffer_s * 1000)}ms"


def measure_turn(audio: TurnAudio, buffers_s: Iterable[float] = (0.0, 0.1)) -> TurnMetrics:
    """TTFA to speech onset, time to first byte, leading silence and gaps per jitter-buffer size."""
    onset = speech_onset(audio.samples, audio.sample_rate)
    immediate = simulate_player(audio.arrivals, audio.sample_rate)
    ttfb = audio.arrivals[0].at_s
    ttfa = None if onset is None else immediate.play_time(onset)
    gaps = {
        buffer_label(b): [
            g.length_s * 1000 for g in simulate_player(audio.arrivals, audio.sample_rate, b).gaps
        ]
        for b in buffers_s
    }
    return TurnMetrics(
        ttfa_ms=None if ttfa is None else ttfa * 1000,
        ttfb_ms=ttfb * 1000,
        leading_silence_ms=None if ttfa is None else (ttfa - ttfb) * 1000,
        audio_s=audio.samples.size / audio.sample_rate,
        gaps=gaps,
    )


def summarize(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """n, p50, p90, p95, p99, mean and max of the values that exist (None is skipped)."""
    data = np.array([v for v in values if v is not None], dtype=np.float64)
    if data.size == 0:
        return {"n": 0, "p50": None, "p90": None, "p95": None, "p99": None, "mean": None, "max": None}
    p50, p90, p95, p99 = np.percentile(data, [50, 90, 95, 99])
    return {
        "n": int(data.size),
        "p50": float(p50),
        "p90": float(p90),
        "p95": float(p95),
        "p99": float(p99),
        "mean": float(data.mean()),
        "max": float(data.max()),
    }
