"""Speaker playback for streamed speech: a small jitter buffer in front of a sounddevice stream.

Audio arrives in bursts (one or more chunks per phrase, with network and synthesis jitter), while
the sound card pulls fixed blocks on its own clock. The buffer holds playback back until a small
cushion is queued, so a late chunk rarely becomes a gap; when one does (an underrun), it counts it
and rebuilds the cushion before resuming. The buffer is plain, thread-safe Python (tested without a
device); `SpeakerOutput` only connects it to a PortAudio callback.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any

import numpy as np


class JitterBuffer:
    """Float32 mono samples in from the network side, fixed-size blocks out to the audio callback."""

    def __init__(self, sample_rate: int, prebuffer_ms: float = 120.0) -> None:
        self.sample_rate = sample_rate
        self.prebuffer = int(sample_rate * prebuffer_ms / 1000)
        self._chunks: deque[np.ndarray] = deque()
        self._buffered = 0
        self._lock = threading.Lock()
        self._playing = False
        self._ended = False
        self.played_samples = 0  # audio actually handed to the device this turn
        self.underruns = 0       # times the device starved after playback had started this turn

    def push(self, samples: np.ndarray) -> None:
        if samples.size == 0:
            return
        with self._lock:
            self._chunks.append(np.asarray(samples, dtype=np.float32))
            self._buffered += samples.size

    def end(self) -> None:
        """No more audio this turn: play out what is queued even if it is under the cushion."""
        with self._lock:
            self._ended = True

    def clear(self) -> None:
        """Drop everything queued and start a new turn (barge-in, or before a reply)."""
        with self._lock:
            self._chunks.clear()
            self._buffered = 0
            self._playing = False
            self._ended = False
            self.played_samples = 0
            self.underruns = 0

    @property
    def buffered_ms(self) -> float:
        return self._buffered * 1000 / self.sample_rate

    @property
    def played_ms(self) -> float:
        return self.played_samples * 1000 / self.sample_rate

    @property
    def drained(self) -> bool:
        """The turn has ended and every sample of it has been played."""
        with self._lock:
            return self._ended and self._buffered == 0

    def read(self, frames: int) -> np.ndarray:
        """Exactly `frames` samples for the device: audio when playing, silence otherwise."""
        out = np.zeros(frames, dtype=np.float32)
        with self._lock:
            if not self._playing:
                if self._buffered == 0 or (self._buffered < self.prebuffer and not self._ended):
                    return out
                self._playing = True
            filled = 0
            while filled < frames and self._chunks:
                chunk = self._chunks[0]
                take = min(frames - filled, chunk.size)
                out[filled:filled + take] = chunk[:take]
                filled += take
                if take == chunk.size:
                    self._chunks.popleft()
                else:
                    self._chunks[0] = chunk[take:]
            self._buffered -= filled
            self.played_samples += filled
            if filled < frames:
                self._playing = False
                if not self._ended:
                    self.underruns += 1
        return out


class SpeakerOutput:
    """A PortAudio output stream (sounddevice) fed from a `JitterBuffer`."""

    def __init__(self, sample_rate: int, device: Any = None, prebuffer_ms: float = 120.0,
                 block_ms: float = 20.0) -> None:
        import sounddevice

        self.buffer = JitterBuffer(sample_rate, prebuffer_ms)
        self.stream = sounddevice.OutputStream(samplerate=sample_rate, channels=1, dtype="float32",
                                               blocksize=int(sample_rate * block_ms / 1000), device=device,
                                               callback=self._callback)
        self.callbacks = 0

    def _callback(self, outdata: np.ndarray, frames: int, _time: Any, _status: Any) -> None:
        outdata[:, 0] = self.buffer.read(frames)
        self.callbacks += 1

    def __enter__(self) -> SpeakerOutput:
        self.stream.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.stop()
        self.stream.close()

    async def drained(self, poll_s: float = 0.01) -> None:
        """Wait until the current turn has been played out."""
        while not self.buffer.drained:
            await asyncio.sleep(poll_s)
