"""Chatterbox TTS (Resemble AI) as a voicewire engine; see docs/chatterbox.md.

Importing the package costs no torch: the registry reads `ENTRY` at start-up (also when Piper
runs), and the model code behind `ChatterboxEngine` and `StreamTuning` loads on first use.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from stream.engines.base import Engine, EngineEntry
from stream.engines.chatterbox.loading import VARIANTS, check_model_dir, weights_available
from stream.settings import Settings

if TYPE_CHECKING:
    from stream.engines.chatterbox.engine import ChatterboxEngine, StreamTuning

__all__ = ["ENTRY", "ChatterboxEngine", "StreamTuning", "VARIANTS", "check_model_dir", "weights_available"]


def _create(name: str, settings: Settings) -> Engine:
    from stream.engines.chatterbox.engine import ChatterboxEngine

    return ChatterboxEngine(settings, variant=name)


def _cuda_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def _auto(settings: Settings) -> tuple[bool, str]:
    """Only with a CUDA device and weights at hand: on a CPU Chatterbox is far slower than real time."""
    if importlib.util.find_spec("chatterbox") is None:
        return False, "the chatterbox extra is not installed"
    if not _cuda_available():
        return False, "no CUDA device (Chatterbox on CPU is slower than real time)"
    ok, why = weights_available(settings)
    if not ok:
        return False, f"CUDA is available but Chatterbox weights are not ({why})"
    return True, f"CUDA device and Chatterbox weights found ({why})"


ENTRY = EngineEntry(names=tuple(VARIANTS), create=_create, auto=_auto)


def __getattr__(name: str) -> Any:
    if name in ("ChatterboxEngine", "StreamTuning"):
        return getattr(importlib.import_module("stream.engines.chatterbox.engine"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
