"""Engine registry and the `auto` choice.

`auto` picks Chatterbox only when both a CUDA device and its weights are at hand (on a CPU it
would be far slower than real time), and otherwise the embedded Piper voice; it says why.
"""

from __future__ import annotations

import importlib.util
import logging

from stream.engines.base import Capabilities, Engine, EngineLoadError, SynthesisRequest, Voice
from stream.settings import Settings

log = logging.getLogger("voicewire.engines")

CHATTERBOX_VARIANTS = ("chatterbox", "chatterbox-turbo", "chatterbox-multilingual")
ENGINE_NAMES = ("auto", "piper", *CHATTERBOX_VARIANTS)

__all__ = [
    "Capabilities", "Engine", "EngineLoadError", "SynthesisRequest", "Voice",
    "ENGINE_NAMES", "choose_engine", "create_engine",
]


def _cuda_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def choose_engine(settings: Settings) -> tuple[str, str]:
    """Resolve `settings.engine` to a concrete engine name, with the reason for the choice."""
    if settings.engine != "auto":
        return settings.engine, "requested explicitly"
    if importlib.util.find_spec("chatterbox") is None:
        return "piper", "auto: the chatterbox extra is not installed"
    if not _cuda_available():
        return "piper", "auto: no CUDA device (Chatterbox on CPU is slower than real time)"
    from stream.engines.chatterbox import weights_available

    ok, why = weights_available(settings)
    if not ok:
        return "piper", f"auto: CUDA is available but Chatterbox weights are not ({why})"
    return "chatterbox", f"auto: CUDA device and Chatterbox weights found ({why})"


def create_engine(name: str, settings: Settings) -> Engine:
    """Instantiate (not load) the named engine."""
    if name == "piper":
        from stream.engines.piper.engine import PiperEngine

        return PiperEngine()
    if name in CHATTERBOX_VARIANTS:
        from stream.engines.chatterbox import ChatterboxEngine

        return ChatterboxEngine(settings, variant=name)
    raise EngineLoadError(f"engine: unknown engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}")
