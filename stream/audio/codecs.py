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


class PhraseShaper:
    """Fades a phrase in and out (a few ms) and appends its pause, without delaying the first chunk.

    The last `fade` samples are held back until the next chunk shows they are not the end.
    """

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._fade = max(1, int(FADE_S * sample_rate))
        self._held = np.zeros(0, dtype=np.float32)
        self._started = False

    def push(self, chunk: np.ndarray) -> np.ndarray:
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
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
        tail = self._held.copy()
        if tail.size:
            tail *= np.linspace(1.0, 0.0, tail.size, dtype=np.float32)
        self._held = np.zeros(0, dtype=np.float32)
        self._started = False
        return np.concatenate([tail, np.zeros(int(pause_s * self.sample_rate), dtype=np.float32)])


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
