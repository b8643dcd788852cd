"""Perth watermarking of streamed audio, chunk by chunk.

Perth marks a clip through an STFT of the whole signal, so marking each chunk on its own would
put the chunk edges at the edges of the transform. Instead each call marks the new audio together
with a little already-marked-over context before it and holds back a little at its end, so every
emitted sample sits inside the transform window; the held-back tail goes out with the next chunk
or at the end of the phrase. The cost is a few milliseconds per chunk (measured in
docs/chatterbox.md), small next to a chunk's synthesis, so it stays on the path and no audio
ever leaves unmarked.
"""

from __future__ import annotations

import math

import numpy as np


class StreamingWatermarker:
    """Watermarks one phrase's chunks in order; `push` each chunk, then `finish`."""

    def __init__(self, watermarker, sample_rate: int, context: int = 1024, holdback: int = 1024) -> None:
        self._wm = watermarker
        self._sr = sample_rate
        self._context = context
        self._holdback = holdback
        mark_rate = int(watermarker.perth_net.hp.sample_rate)
        self._period = sample_rate // math.gcd(sample_rate, mark_rate)  # 3 for 24 kHz -> Perth's 32 kHz
        self._past = np.zeros(0, dtype=np.float32)      # unmarked audio already emitted (for context)
        self._pending = np.zeros(0, dtype=np.float32)   # unmarked audio not yet emitted

    def _mark(self, emit: int) -> np.ndarray:
        window = np.concatenate([self._past, self._pending])
        # Perth resamples to its own rate and back; zero-padding the window to a whole number of
        # resampling periods keeps that round trip from dropping samples.
        window = np.pad(window, (0, (-len(window)) % self._period))
        marked = np.asarray(self._wm.apply_watermark(window, sample_rate=self._sr), dtype=np.float32)
        out = marked[len(self._past): len(self._past) + emit]
        if len(out) < emit:
            out = np.pad(out, (0, emit - len(out)))
        done = self._pending[:emit]
        self._past = np.concatenate([self._past, done])[-self._context:]
        self._pending = self._pending[emit:]
        return out

    def push(self, audio: np.ndarray) -> np.ndarray:
        self._pending = np.concatenate([self._pending, audio.astype(np.float32, copy=False)])
        emit = len(self._pending) - self._holdback
        if emit <= 0:
            return np.zeros(0, dtype=np.float32)
        return self._mark(emit)

    def finish(self) -> np.ndarray:
        if len(self._pending) == 0:
            return np.zeros(0, dtype=np.float32)
        return self._mark(len(self._pending))


def load_watermarker():
    """Perth's implicit watermarker, or the reason it is unavailable (its import failures leave it None)."""
    import perth

    if perth.PerthImplicitWatermarker is None:
        raise RuntimeError("perth.PerthImplicitWatermarker is None (its neural model failed to import; "
                           "reinstall resemble-perth)")
    return perth.PerthImplicitWatermarker()
