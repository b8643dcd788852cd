"""The one narrow interface every TTS engine implements.

The server only ever calls these methods; what an engine does inside (ONNX, a T3 token loop,
chunked S3Gen decoding) stays behind it. `synthesize` runs on a worker thread, never on the
event loop, and must return promptly once `cancel` is set (within one chunk).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from stream.core.protocol import GenerationSettings
from stream.core.speech_policy import SpeechPolicy
from stream.core.synthesis import SynthesisRequest, Voice

__all__ = ["Capabilities", "Engine", "EngineLoadError", "SynthesisRequest", "Voice"]


@dataclass(frozen=True)
class Capabilities:
    """What an engine honours; reported in `ready.capabilities`."""

    voice_cloning: bool
    generation_fields: frozenset[str]       # generation fields that change the output
    deterministic_seed: bool                # same seed + input -> identical audio
    streaming: str                          # "phrase" (one chunk per phrase) or "token" (chunks inside a phrase)
    watermark: bool = False
    languages: tuple[str, ...] = ("en",)
    notes: dict[str, str] = field(default_factory=dict)  # field -> how it is treated, for docs/clients

    def to_wire(self) -> dict:
        return {
            "voice_cloning": self.voice_cloning,
            "generation_fields": sorted(self.generation_fields),
            "deterministic_seed": self.deterministic_seed,
            "streaming": self.streaming,
            "watermark": self.watermark,
            "languages": list(self.languages),
            "notes": dict(self.notes),
        }


class Engine(ABC):
    """A loaded TTS model. One instance per server process; `synthesize` may run on several threads."""

    name: str
    model: str
    sample_rate: int
    capabilities: Capabilities
    policy: SpeechPolicy = SpeechPolicy()   # how text is cut and normalized for this engine

    @abstractmethod
    def load(self) -> None:
        """Load weights (slow, once at start). Raises `EngineLoadError` with a clear reason."""

    @abstractmethod
    def default_voice(self) -> Voice:
        """The voice used when a turn names none."""

    def prepare_voice(self, audio: np.ndarray, sample_rate: int, voice_id: str, name: str) -> Voice:
        """Turn a decoded mono float32 reference clip into a cached-ready `Voice`.

        Engines without cloning keep this default, which the voice layer reports as `unsupported`.
        """
        from stream.core.errors import Unsupported

        raise Unsupported(f"voice: the {self.name} engine cannot clone voices from reference audio")

    @abstractmethod
    def synthesize(self, request: SynthesisRequest, cancel: threading.Event) -> Iterator[np.ndarray]:
        """Yield mono float32 chunks at `sample_rate` for one phrase, stopping once `cancel` is set."""

    def warmup(self) -> None:
        """Run one short synthesis so the first real turn pays no lazy-init cost."""
        for _ in self.synthesize(
            SynthesisRequest(text="Warming up.", voice=self.default_voice(), generation=GenerationSettings()),
            threading.Event(),
        ):
            pass


class EngineLoadError(RuntimeError):
    """The engine cannot start; the message names the missing file, package or device."""
