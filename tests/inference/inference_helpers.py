"""Real-engine building blocks for the executor tests: Piper cut into small chunks, and a sink."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import numpy as np

from stream.core.protocol import GenerationSettings
from stream.core.synthesis import SynthesisRequest
from stream.engines.base import Engine

CHUNK_S = 0.05
# Temperature and exaggeration 0 make Piper deterministic, so audio can be compared sample by sample.
STILL = GenerationSettings(temperature=0, exaggeration=0)


def request(engine: Engine, text: str) -> SynthesisRequest:
    return SynthesisRequest(text=text, voice=engine.default_voice(), generation=STILL)


def reference(engine: Engine, text: str) -> np.ndarray:
    """The phrase's audio from the engine directly, for comparison."""
    return np.concatenate(list(engine.synthesize(request(engine, text), threading.Event())))


class ChunkedSynthesis:
    """An engine's `synthesize`, cut into 50 ms chunks the way a token-streaming engine yields them.

    It records what it produced and in which order requests started; a phrase containing "hang"
    blocks (without yielding) until `release` is set, one containing "explode" fails after its
    first chunk, and with `gate` given every call first waits for it.
    """

    def __init__(self, engine: Engine, gate: threading.Event | None = None) -> None:
        self.engine = engine
        self.gate = gate
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.produced = 0
        self.started: list[str] = []

    def __call__(self, req: SynthesisRequest, cancel: threading.Event) -> Iterator[np.ndarray]:
        if self.gate is not None:
            self.gate.wait(30)
        with self.lock:
            self.started.append(req.text)
        if "hang" in req.text:
            self.release.wait(60)
            return
        step = int(self.engine.sample_rate * CHUNK_S)
        for audio in self.engine.synthesize(req, cancel):
            for start in range(0, len(audio), step):
                with self.lock:
                    self.produced += 1
                yield audio[start:start + step]
                if "explode" in req.text:
                    raise RuntimeError("engine fault injected by the test")


class RecordingSink:
    """A thread-safe sink that keeps every chunk; `on_chunk(count)` runs inside `chunk`."""

    def __init__(self, on_chunk: Callable[[int], None] | None = None) -> None:
        self.on_chunk = on_chunk
        self.lock = threading.Lock()
        self.chunks: list[np.ndarray] = []
        self.error: BaseException | None = None
        self.finished_calls = 0
        self.done = threading.Event()

    def chunk(self, samples: np.ndarray) -> None:
        with self.lock:
            self.chunks.append(samples)
            count = len(self.chunks)
        if self.on_chunk is not None:
            self.on_chunk(count)

    def finished(self, error: BaseException | None) -> None:
        with self.lock:
            self.error = error
            self.finished_calls += 1
        self.done.set()

    def audio(self) -> np.ndarray:
        with self.lock:
            return np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.float32)
