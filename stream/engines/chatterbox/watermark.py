"""Perth watermarking of streamed audio, chunk by chunk.

Perth marks a clip through an STFT of the whole signal, so marking each chunk on its own would
put the chunk edges at the edges of the transform. Instead each call marks the new audio together
with a little already-marked-over context before it and holds back a little at its end, so every
emitted sample sits inside the transform window; the held-back tail goes out with the next chunk
or at the end of the phrase.

Marking costs a few milliseconds of CPU per chunk (measured in docs/chatterbox.md). Done on the
thread that drives the model it would leave the GPU idle meanwhile, so `WatermarkStage` runs it
on a CPU worker of its own: the model thread submits a chunk and goes on decoding; the marked
chunk comes back through a future. No audio leaves unmarked: callers emit only what the futures
return.

`WatermarkStage` interface (the single-stream engine and the batching executor both use it):
  * `submit(phrase_key, audio, final) -> Future[np.ndarray]`: mark this phrase's next chunk.
    Chunks of one phrase are marked in submission order on the stage's single worker thread, so
    a phrase's futures complete in order; `final=True` also flushes the held-back tail and drops
    the phrase's state. The result may be shorter or longer than `audio` (the holdback moves
    samples to the next chunk), never different in total: a phrase's results concatenated are
    exactly what one in-line `StreamingWatermarker` pushed the same chunks would give.
  * `discard(phrase_key)`: forget a phrase that will not be finished (cancelled, failed).
  * `close()`: stop the worker after the work already submitted.
`phrase_key` is any hashable value unique among the phrases in flight (the engine uses a fresh
object per phrase). One worker serves all phrases: Perth's model is not shared across threads.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from concurrent.futures import Future, ThreadPoolExecutor

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


class WatermarkStage:
    """Ordered CPU watermarking off the model's thread: one worker, one `StreamingWatermarker` per phrase."""

    def __init__(self, watermarker, sample_rate: int) -> None:
        self._wm = watermarker
        self._sr = sample_rate
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="watermark")
        self._phrases: dict[Hashable, StreamingWatermarker] = {}   # touched only on the worker thread

    def submit(self, phrase_key: Hashable, audio: np.ndarray, final: bool) -> Future[np.ndarray]:
        """Queue one chunk of a phrase; its future holds the marked audio ready to emit (maybe empty)."""
        return self._pool.submit(self._mark, phrase_key, audio, final)

    def discard(self, phrase_key: Hashable) -> None:
        """Drop a phrase's held-back state; queued behind its submitted chunks, like any other call."""
        self._pool.submit(self._phrases.pop, phrase_key, None)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _mark(self, phrase_key: Hashable, audio: np.ndarray, final: bool) -> np.ndarray:
        marker = self._phrases.get(phrase_key)
        if marker is None:
            marker = self._phrases[phrase_key] = StreamingWatermarker(self._wm, self._sr)
        out = marker.push(audio)
        if final:
            del self._phrases[phrase_key]
            out = np.concatenate([out, marker.finish()])
        return out

    @property
    def phrases_in_flight(self) -> int:
        """Phrases with held-back state (a leak check for tests and metrics)."""
        return len(self._phrases)


def load_watermarker():
    """Perth's implicit watermarker, or the reason it is unavailable (its import failures leave it None)."""
    import perth

    if perth.PerthImplicitWatermarker is None:
        raise RuntimeError("perth.PerthImplicitWatermarker is None (its neural model failed to import; "
                           "reinstall resemble-perth)")
    return perth.PerthImplicitWatermarker()
