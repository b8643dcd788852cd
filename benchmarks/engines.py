"""Which engine a benchmark runs, built the same way in the server process and for the baselines.

The server side is the voicewire engine itself; the baseline side is "one synthesis call on the
whole text": for Piper the engine's own `synthesize` drained to the end, for Chatterbox the
package's `ChatterboxTTS.generate()`. Chatterbox runs random weights (the hub is unreachable), so
the token loop of both sides is held to the same fixed budget and every number is timing-only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stream.core.protocol import GenerationSettings
from stream.engines.base import Engine, SynthesisRequest
from stream.settings import Settings

# The package draws a tqdm bar per generate() call; tqdm reads this when first imported, and the
# server process inherits it.
os.environ.setdefault("TQDM_DISABLE", "1")

# Fixed sampling for every turn: Piper's output becomes deterministic at temperature 0, and
# Chatterbox gets the hosted API's defaults with a seed so both sides sample alike.
PIPER_GENERATION = {"temperature": 0.0}
CHATTERBOX_GENERATION = {"seed": 7}


@dataclass(frozen=True)
class EngineSpec:
    name: str = "piper"  # "piper" or "chatterbox"
    checkpoint: str | None = None  # chatterbox: a random-weight `from_local` folder
    token_budget: int | None = None  # chatterbox: speech tokens per synthesis call (fixed)
    reduced_t3: bool = False  # chatterbox: checkpoint built under tests' reduced_t3()
    device: str = "cpu"

    @property
    def timing_only(self) -> bool:
        """Random weights: the audio is noise-shaped, only the timings mean anything."""
        return self.name != "piper"

    @property
    def label(self) -> str:
        if self.name == "piper":
            return "piper (en_US-joe-medium)"
        t3 = "reduced T3" if self.reduced_t3 else "full-size T3"
        return (
            f"chatterbox random weights, {t3}, {self.token_budget} tokens/call, {self.device} [timing-only]"
        )

    @property
    def generation(self) -> dict:
        return dict(PIPER_GENERATION if self.name == "piper" else CHATTERBOX_GENERATION)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> EngineSpec:
        return cls(**json.loads(text))


@contextlib.contextmanager
def _t3_size(spec: EngineSpec) -> Iterator[None]:
    """The package builds T3 from a global config; a reduced checkpoint loads only under the same one."""
    if spec.reduced_t3:
        from tests.chatterbox_checkpoint import reduced_t3

        with reduced_t3():
            yield
    else:
        yield


def build_checkpoint(directory: Path, reduced: bool) -> Path:
    """Build the random-weight checkpoint once; later runs reuse the folder."""
    from tests.chatterbox_checkpoint import build_checkpoint as build

    if (directory / "conds.pt").is_file():
        return directory
    with _t3_size(EngineSpec(name="chatterbox", reduced_t3=reduced)):
        return build(directory)


def load_engine(spec: EngineSpec, data_dir: str) -> Engine:
    """The voicewire engine for the server: loaded and warmed up."""
    if spec.name == "piper":
        from stream.engines.piper.engine import PiperEngine

        engine: Engine = PiperEngine()
    else:
        from stream.engines.chatterbox import ChatterboxEngine, StreamTuning

        settings = Settings(
            engine="chatterbox", model_dir=spec.checkpoint, device=spec.device, data_dir=data_dir
        )
        engine = ChatterboxEngine(settings, tuning=StreamTuning(max_new_tokens=spec.token_budget))
    with _t3_size(spec):
        engine.load()
    engine.warmup()
    return engine


@dataclass
class OneShot:
    """Baseline synthesis: text in, all of its audio out, in one blocking call."""

    synthesize: Callable[[str, int], np.ndarray]  # (text, phrases it stands for) -> float32 samples
    sample_rate: int
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage of the last call, where known
    engine: Engine | None = (
        None  # piper: the loaded voicewire engine behind `synthesize` (baseline (c) uses it)
    )


def load_one_shot(spec: EngineSpec) -> OneShot:
    """The engine as a non-streaming caller uses it, for baselines (a) and (b)."""
    if spec.name == "piper":
        engine = load_engine(spec, data_dir="")
        request_settings = GenerationSettings(**spec.generation)

        def piper(text: str, _phrases: int) -> np.ndarray:
            request = SynthesisRequest(text=text, voice=engine.default_voice(), generation=request_settings)
            chunks = list(engine.synthesize(request, threading.Event()))
            return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)

        return OneShot(piper, engine.sample_rate, engine=engine)
    return _package_generate(spec)


def _package_generate(spec: EngineSpec) -> OneShot:
    """`ChatterboxTTS.generate()` with T3's loop capped at the budget per phrase the text stands for.

    The package hard-codes 1000 new tokens and random weights almost never sample the stop token,
    so without the cap a call would always make 40 s of audio.
    """
    import torch
    from chatterbox.tts import ChatterboxTTS

    with _t3_size(spec):
        tts = ChatterboxTTS.from_local(spec.checkpoint, spec.device)
    inference = tts.t3.inference
    budget = threading.local()
    stages: dict[str, float] = {}

    def capped(*args, **kwargs):
        kwargs["max_new_tokens"] = budget.tokens
        start = time.perf_counter()
        try:
            return inference(*args, **kwargs)
        finally:
            stages["t3_s"] = time.perf_counter() - start

    tts.t3.inference = capped

    def generate(text: str, phrases: int) -> np.ndarray:
        budget.tokens = (spec.token_budget or 1000) * max(1, phrases)
        torch.manual_seed(CHATTERBOX_GENERATION["seed"])
        return tts.generate(text).squeeze(0).numpy().astype(np.float32)

    generate("Warming up.", 1)
    return OneShot(generate, tts.sr, stages)
