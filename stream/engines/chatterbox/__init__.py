"""Chatterbox TTS (Resemble AI) as a voicewire engine; see docs/chatterbox.md."""

from stream.engines.chatterbox.engine import ChatterboxEngine, StreamTuning
from stream.engines.chatterbox.loading import VARIANTS, check_model_dir, weights_available

__all__ = ["ChatterboxEngine", "StreamTuning", "VARIANTS", "check_model_dir", "weights_available"]
