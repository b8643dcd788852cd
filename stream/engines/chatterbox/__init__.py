"""Chatterbox TTS (Resemble AI) as a voicewire engine; see docs/chatterbox.md."""

from .engine import ChatterboxEngine, StreamTuning
from .loading import VARIANTS, check_model_dir, weights_available

__all__ = ["ChatterboxEngine", "StreamTuning", "VARIANTS", "check_model_dir", "weights_available"]
