"""Random-weight Chatterbox checkpoints in the package's `from_local` layout, for tests and benchmarks.

The hub is unreachable here, so these build the package's real model classes (T3, S3Gen,
VoiceEncoder, EnTokenizer, Conditionals), initialise them randomly and save them exactly as
`ChatterboxTTS.from_local` reads them. Output is noise-like speech-shaped audio; timing and
every code path are real, the sound is not.

`from_local` always builds `T3()` from the package's `LLAMA_CONFIGS["Llama_520M"]`, so the only
way to a smaller T3 is that config entry: `reduced_t3()` shrinks its depth and width of the MLP
(the hidden size stays 1024, which the perceiver and conditioning encoder fix) while it is active.
A checkpoint built under it loads only under it. S3Gen and the voice encoder have no size knobs
and are built full size.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

REDUCED_T3 = {"num_hidden_layers": 2, "intermediate_size": 1024}
REFERENCE_SR = 24_000


@contextlib.contextmanager
def reduced_t3(**overrides: int) -> Iterator[None]:
    """Shrink the package's Llama_520M config while active (restored afterwards)."""
    from chatterbox.models.t3.llama_configs import LLAMA_CONFIGS

    config = LLAMA_CONFIGS["Llama_520M"]
    saved = dict(config)
    config.update(overrides or REDUCED_T3)
    try:
        yield
    finally:
        config.clear()
        config.update(saved)


def speechlike_clip(seconds: float, sample_rate: int = REFERENCE_SR, seed: int = 0) -> np.ndarray:
    """A voiced, syllable-rate modulated harmonic signal with breath noise: a stand-in for a voice clip."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 140 + 25 * np.sin(2 * np.pi * 0.7 * t) + 10 * rng.standard_normal()
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t) ** 2
    audio = 0.2 * envelope * voiced + 0.01 * rng.standard_normal(t.size)
    return audio.astype(np.float32)


def _tokenizer_json() -> dict:
    """A character-level tokenizer with the special tokens EnTokenizer requires, ids below 704."""
    specials = {"[STOP]": 0, "[UNK]": 1, "[SPACE]": 2, "[PAD]": 3, "[SEP]": 4, "[CLS]": 5, "[MASK]": 6, "[START]": 255}
    vocab = dict(specials)
    next_id = 7
    for ch in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\"-:;()":
        if next_id == 255:
            next_id += 1
        vocab[ch] = next_id
        next_id += 1
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": tok, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}
            for tok, i in specials.items()
        ],
        "normalizer": None,
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": None,
        "model": {"type": "BPE", "dropout": None, "unk_token": "[UNK]", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "vocab": vocab, "merges": []},
    }


def build_checkpoint(directory: Path, *, with_conds: bool = True, seed: int = 0) -> Path:
    """Build and save a random-weight original-Chatterbox checkpoint; call under `reduced_t3()` for a small T3."""
    import soundfile as sf
    import torch
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.tokenizers import EnTokenizer
    from chatterbox.models.voice_encoder import VoiceEncoder
    from chatterbox.tts import ChatterboxTTS
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    ve, t3, s3gen = VoiceEncoder().eval(), T3().eval(), S3Gen().eval()
    for module, name in ((ve, "ve"), (t3, "t3_cfg"), (s3gen, "s3gen")):
        state = {k: v.contiguous().clone() for k, v in module.state_dict().items()}
        save_file(state, str(directory / f"{name}.safetensors"))
    (directory / "tokenizer.json").write_text(json.dumps(_tokenizer_json()))
    if with_conds:
        clip = directory / "builtin_voice.wav"
        sf.write(clip, speechlike_clip(2.0, seed=seed + 1), REFERENCE_SR)
        tts = ChatterboxTTS(t3, s3gen, ve, EnTokenizer(str(directory / "tokenizer.json")), "cpu")
        tts.prepare_conditionals(str(clip))
        tts.conds.save(directory / "conds.pt")
        clip.unlink()
    return directory


# ----- shared, built once per test session ---------------------------------------------------------

TEST_TUNING = {"first_chunk_tokens": 4, "first_chunk_tokens_later": 6, "max_chunk_tokens": 8,
               "context_tokens": 8, "cfm_steps": 2, "max_new_tokens": 24}
_SHARED: dict[str, object] = {}


def shared_checkpoint(tmp_path_factory) -> Path:
    """The session's random-weight checkpoint (reduced T3), built on first use."""
    if "checkpoint" not in _SHARED:
        with reduced_t3():
            _SHARED["checkpoint"] = build_checkpoint(tmp_path_factory.mktemp("chatterbox-ckpt"))
    return _SHARED["checkpoint"]  # type: ignore[return-value]


def load_engine(model_dir: Path, data_dir: Path, progress=None, **settings):
    """A ChatterboxEngine on CPU with the small test tuning, loaded from `model_dir` through `from_local`."""
    from stream.engines.chatterbox import ChatterboxEngine, StreamTuning
    from stream.settings import Settings

    engine = ChatterboxEngine(Settings(model_dir=str(model_dir), data_dir=str(data_dir), device="cpu", **settings),
                              tuning=StreamTuning(**TEST_TUNING), progress=progress)
    with reduced_t3():
        engine.load()
    return engine


def shared_engine(tmp_path_factory):
    """The session's loaded engine (its load-progress messages in `shared_engine.progress`)."""
    if "engine" not in _SHARED:
        messages: list[str] = []
        engine = load_engine(shared_checkpoint(tmp_path_factory), tmp_path_factory.mktemp("chatterbox-data"),
                             progress=messages.append)
        engine.load_messages = messages
        _SHARED["engine"] = engine
    return _SHARED["engine"]
