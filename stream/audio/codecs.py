"""Engine audio to wire audio: phrase-join shaping, streaming resampling, sample encoding.

Resampling uses python-soxr's `ResampleStream` (libsoxr): it keeps filter state across chunks, so
chunk joins are seamless and the output length tracks the input exactly. mu-law/A-law use the
stdlib `audioop` codecs (the `audioop-lts` backport on Python 3.13+).
"""

from __future__ import annotations

import warnings

import numpy as np
import soxr

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

FADE_S = 0.004
# A context's first audio starts at its speech: engines open a phrase with tens of ms of near-silence
# (Piper ~30-75 ms at about -93 dBFS) that only delays the listener. The gate sits well above that
# floor and below soft onsets (an /f/ or /h/ ramps up through -75..-55 dBFS), a little of the
# near-silence is kept as pre-roll under the fade-in, and no more than TRIM_MAX_S is ever dropped,
# so quiet speech is never swallowed.
TRIM_GATE_DBFS = -60.0
TRIM_WINDOW_S = 0.002
TRIM_PREROLL_S = 0.005
TRIM_MAX_S = 0.3
# Pause appended after a phrase, by how its text ends: a sentence end breathes longer than a clause.
PAUSE_AFTER_SENTENCE_S = 0.12
PAUSE_AFTER_CLAUSE_S = 0.04
BYTES_PER_SAMPLE = {"pcm_s16le": 2, "pcm_f32le": 4, "mulaw": 1, "alaw": 1}


def pause_after(text: str) -> float:
    """Silence to leave after a phrase so joins sound like speech, not a splice."""
    tail = text.rstrip().rstrip("\"')]}»”’")
    if not tail:
        return 0.0
    if tail[-1] in ".!?…。！？":
        return PAUSE_AFTER_SENTENCE_S
    if tail[-1] in ",;:—–-":
        return PAUSE_AFTER_CLAUSE_S
    return 0.0


def first_sound(samples: np.ndarray, sample_rate: int, gate_dbfs: float = TRIM_GATE_DBFS) -> int | None:
    """Start of the first TRIM_WINDOW_S window whose mean-removed RMS reaches the gate, or None."""
    win = max(1, round(TRIM_WINDOW_S * sample_rate))
    n = samples.size
    if n == 0:
        return None
    padded = np.zeros(-(-n // win) * win, dtype=np.float64)
    padded[:n] = samples
    windows = padded.reshape(-1, win)
    sizes = np.full(windows.shape[0], win, dtype=np.float64)
    sizes[-1] = n - win * (windows.shape[0] - 1)  # a partial last window counts only its samples
    mean = windows.sum(axis=1) / sizes
    power = (windows * windows).sum(axis=1) / sizes - mean * mean
    loud = np.flatnonzero(power >= 10.0 ** (gate_dbfs / 10.0))
    return int(loud[0]) * win if loud.size else None


class PhraseShaper:
    """Fades a phrase in and out (a few ms) and appends its pause, without delaying the first chunk.

    One shaper serves one context: its first phrase also loses its leading silence (see
    TRIM_GATE_DBFS), so the turn's first byte is close to its first sound. The last `fade` samples
    are held back until the next chunk shows they are not the end.
    """

    def __init__(self, sample_rate: int, trim_leading_silence: bool = True) -> None:
        self.sample_rate = sample_rate
        self._fade = max(1, int(FADE_S * sample_rate))
        self._held = np.zeros(0, dtype=np.float32)
        self._started = False
        self._trimming = trim_leading_silence
        self._lead = np.zeros(0, dtype=np.float32)  # near-silence kept back as pre-roll while trimming
        self._dropped = 0
        self._preroll = int(TRIM_PREROLL_S * sample_rate)
        self._max_drop = int(TRIM_MAX_S * sample_rate)

    def push(self, chunk: np.ndarray) -> np.ndarray:
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        if self._trimming:
            chunk = self._trim(chunk)
        if not self._started and chunk.size:
            chunk = chunk.copy()
            n = min(self._fade, chunk.size)
            chunk[:n] *= np.linspace(0.0, 1.0, n, dtype=np.float32)
            self._started = True
        joined = np.concatenate([self._held, chunk]) if self._held.size else chunk
        cut = max(0, joined.size - self._fade)
        self._held = joined[cut:].copy()
        return joined[:cut]

    def finish(self, pause_s: float) -> np.ndarray:
        if self._trimming:  # nothing audible yet: a pause before the first sound is more silence
            self._lead = np.zeros(0, dtype=np.float32)
            return np.zeros(0, dtype=np.float32)
        tail = self._held.copy()
        if tail.size:
            tail *= np.linspace(1.0, 0.0, tail.size, dtype=np.float32)
        self._held = np.zeros(0, dtype=np.float32)
        self._started = False
        return np.concatenate([tail, np.zeros(int(pause_s * self.sample_rate), dtype=np.float32)])

    def _trim(self, chunk: np.ndarray) -> np.ndarray:
        """Drop near-silence before the first sound; the samples to pass on (none while still silent)."""
        joined = np.concatenate([self._lead, chunk]) if self._lead.size else chunk
        start = first_sound(joined, self.sample_rate)
        allowed = self._max_drop - self._dropped
        if start is None:
            drop = joined.size - min(joined.size, self._preroll)
            if drop <= allowed:
                self._dropped += drop
                self._lead = joined[drop:].copy()
                return np.zeros(0, dtype=np.float32)
            begin = allowed
        else:
            begin = min(max(0, start - self._preroll), allowed)
        self._trimming = False
        self._lead = np.zeros(0, dtype=np.float32)
        return joined[begin:]


def encode_samples(samples: np.ndarray, encoding: str) -> bytes:
    """Float32 samples in [-1, 1] to the wire encoding."""
    clipped = np.clip(samples, -1.0, 1.0)
    if encoding == "pcm_f32le":
        return clipped.astype("<f4").tobytes()
    pcm16 = (clipped * 32767.0).astype("<i2").tobytes()
    if encoding == "pcm_s16le":
        return pcm16
    if encoding == "mulaw":
        return audioop.lin2ulaw(pcm16, 2)
    if encoding == "alaw":
        return audioop.lin2alaw(pcm16, 2)
    raise ValueError(f"unknown encoding {encoding!r}")


def decode_samples(data: bytes, encoding: str) -> np.ndarray:
    """Wire bytes back to float32 (used by the client and tests)."""
    if encoding == "pcm_f32le":
        return np.frombuffer(data, dtype="<f4").astype(np.float32)
    if encoding == "mulaw":
        data = audioop.ulaw2lin(data, 2)
    elif encoding == "alaw":
        data = audioop.alaw2lin(data, 2)
    elif encoding != "pcm_s16le":
        raise ValueError(f"unknown encoding {encoding!r}")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


class OutputEncoder:
    """Streams one context's audio from the engine rate to the requested rate and encoding."""

    def __init__(self, source_rate: int, target_rate: int, encoding: str) -> None:
        self.source_rate = source_rate
        self.target_rate = target_rate
        self.encoding = encoding
        self._resampler = (
            soxr.ResampleStream(source_rate, target_rate, 1, dtype="float32", quality="HQ")
            if source_rate != target_rate else None
        )

    def encode(self, samples: np.ndarray, last: bool = False) -> tuple[bytes, int]:
        """Encoded bytes and their sample count at the target rate."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples, last=last)
        return encode_samples(samples, self.encoding), int(samples.size)
