"""The one narrow interface every TTS engine implements, and what it declares about itself.

The server only ever calls these methods; what an engine does inside (ONNX, a T3 token loop,
chunked S3Gen decoding) stays behind it. `synthesize` runs on an executor thread, never on the
event loop, and must return promptly once `cancel` is set (within one chunk).

An engine also declares its policy, so nothing outside `stream/engines/` tests engine names: how
its text is cut and normalized (`policy`), how many requests it runs at once (`default_workers`),
the voices it ships (`builtin_voices`) and what runs its requests (`create_executor`).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from stream.core.protocol import GenerationSettings
from stream.core.speech_policy import SpeechPolicy
from stream.core.synthesis import SynthesisRequest, Voice
from stream.inference.executor import Executor
from stream.inference.pool import InferencePool
from stream.settings import Settings

__all__ = ["BuiltinVoice", "Capabilities", "Engine", "EngineEntry", "EngineLoadError", "SynthesisRequest", "Voice"]


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


@dataclass(frozen=True)
class BuiltinVoice:
    """A voice that ships with the engine (listed by `/v1/voices`; it cannot be deleted)."""

    id: str
    name: str
    description: str

    def to_wire(self) -> dict:
        return {"id": self.id, "name": self.name, "description": self.description, "builtin": True}


class Engine(ABC):
    """A loaded TTS model. One instance per server process; `synthesize` may run on several threads."""

    name: str
    model: str
    sample_rate: int
    capabilities: Capabilities
    policy: SpeechPolicy  # every engine states its own (`SpeechPolicy()` is the core's conservative one)

    @property
    def default_workers(self) -> int:
        """Requests run at once when `--workers` is not given: one suits a GPU model."""
        return 1

    @property
    def builtin_voices(self) -> list[BuiltinVoice]:
        """The voices this engine ships (after `load`); the first is the default when it has one."""
        return []

    def create_executor(self, workers: int) -> Executor:
        """What runs this engine's requests: by default a pool of `workers` threads, one request per
        `synthesize` call. An engine that schedules its own work (batching) returns its own."""
        return InferencePool(self.synthesize, workers)

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


@dataclass(frozen=True)
class EngineEntry:
    """How the registry knows an engine without importing its model code (no torch at start-up)."""

    names: tuple[str, ...]                              # `--engine` names it answers to (variants)
    create: Callable[[str, Settings], Engine]           # instantiate (not load) the named variant
    auto: Callable[[Settings], tuple[bool, str]]        # may `--engine auto` pick it here, and why (not)
