"""Random-weight Chatterbox checkpoints in the package's `from_local` layout, for tests and benchmarks.

The hub is unreachable here, so these build the package's real model classes (T3, S3Gen,
VoiceEncoder, EnTokenizer, Conditionals), initialise them randomly and save them exactly as
`ChatterboxTTS.from_local` reads them. Output is noise-like speech-shaped audio; timing and
every code path are real, the sound is not.

`from_local` always builds `T3()` from the package's `LLAMA_CONFIGS["Llama_520M"]`, so the only
way to a smaller T3 is that config entry: `reduced_t3()` shrinks its depth and width of the MLP
(the hidden size stays 1024, which the perceiver and conditioning encoder fix) while it is active.
Turbo's T3 comes from the `"GPT2_medium"` entry of the same dict, which `reduced_t3()` shrinks
too (2 layers, width 256: Turbo has no perceiver, so nothing fixes its width; its text embedding
keeps the package's 50276 rows). A checkpoint built under it loads only under it. S3Gen (also
the meanflow one) and the voice encoder have no size knobs and are built full size.

Besides the original model, `build_turbo_checkpoint` and `build_multilingual_checkpoint` write the
`ChatterboxTurboTTS` / `ChatterboxMultilingualTTS` `from_local` layouts, with tokenizers made here
(a byte-level GPT-2 tokenizer folder; a character-level grapheme tokenizer with the language tags).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

REDUCED_T3 = {"num_hidden_layers": 2, "intermediate_size": 1024}
# Turbo's GPT-2 T3: its `wte` is unused (T3 has its own text embedding) and deleted after loading.
REDUCED_GPT2 = {"n_layer": 2, "n_embd": 256, "hidden_size": 256, "n_head": 4, "vocab_size": 8}
REFERENCE_SR = 24_000
TURBO_REFERENCE_S = 6.0      # Turbo refuses references of 5 s or less


@contextlib.contextmanager
def reduced_t3(**overrides: int) -> Iterator[None]:
    """Shrink the package's Llama_520M (and Turbo's GPT2_medium) config while active (restored afterwards)."""
    from chatterbox.models.t3.llama_configs import LLAMA_CONFIGS

    patches = (("Llama_520M", overrides or REDUCED_T3), ("GPT2_medium", REDUCED_GPT2))
    saved = {name: dict(LLAMA_CONFIGS[name]) for name, _ in patches}
    for name, patch in patches:
        LLAMA_CONFIGS[name].update(patch)
    try:
        yield
    finally:
        for name, config in saved.items():
            LLAMA_CONFIGS[name].clear()
            LLAMA_CONFIGS[name].update(config)


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


_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\"-:;()"
# NFKD splits accented letters into base + combining mark; the multilingual tokenizer sees these.
_COMBINING = "\u0300\u0301\u0302\u0303\u0308\u030a\u0327\u00df"


def _tokenizer_json(extra_specials: tuple[str, ...] = (), extra_chars: str = "") -> dict:
    """A character-level tokenizer with the special tokens EnTokenizer/MTLTokenizer require, ids below 704."""
    specials = {"[STOP]": 0, "[UNK]": 1, "[SPACE]": 2, "[PAD]": 3, "[SEP]": 4, "[CLS]": 5, "[MASK]": 6, "[START]": 255}
    next_id = 7
    for tok in extra_specials:
        specials[tok] = next_id
        next_id += 1
    vocab = dict(specials)
    for ch in _CHARS + extra_chars:
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


def build_checkpoint(directory: Path, *, with_conds: bool = True, seed: int = 0, voice_seconds: float = 2.0) -> Path:
    """Build and save a random-weight original-Chatterbox checkpoint; call under `reduced_t3()` for a small T3.

    The built-in voice is `voice_seconds` long: 2 s keeps tests fast; real voices are ~10 s, and
    S3Gen's flow re-runs over that whole prompt on every flush, so benchmarks use 10 s.
    """
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
        sf.write(clip, speechlike_clip(voice_seconds, seed=seed + 1), REFERENCE_SR)
        tts = ChatterboxTTS(t3, s3gen, ve, EnTokenizer(str(directory / "tokenizer.json")), "cpu")
        tts.prepare_conditionals(str(clip))
        tts.conds.save(directory / "conds.pt")
        clip.unlink()
    return directory


def _save_safetensors(module, path: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.contiguous().clone() for k, v in module.state_dict().items()}, str(path))


def _gpt2_tokenizer_files(directory: Path) -> None:
    """A byte-level GPT-2 tokenizer (256 byte tokens, no merges, <|endoftext|> at GPT-2's 50256) as
    `AutoTokenizer.from_pretrained(folder)` reads it: vocab.json, merges.txt, tokenizer_config.json."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {ch: i for i, ch in enumerate(sorted(bytes_to_unicode().values()))}
    vocab["<|endoftext|>"] = 50256
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    (directory / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "GPT2Tokenizer", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "add_prefix_space": False, "model_max_length": 8196}))


def build_turbo_checkpoint(directory: Path, *, with_conds: bool = True, seed: int = 0) -> Path:
    """A random-weight Chatterbox-Turbo checkpoint (`ChatterboxTurboTTS.from_local`); call under `reduced_t3()`."""
    import soundfile as sf
    import torch
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.t3_config import T3Config
    from chatterbox.models.voice_encoder import VoiceEncoder
    from chatterbox.tts_turbo import ChatterboxTurboTTS
    from transformers import AutoTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    hp = T3Config(text_tokens_dict_size=50276)        # exactly the hyperparameters from_local sets
    hp.llama_config_name = "GPT2_medium"
    hp.speech_tokens_dict_size = 6563
    hp.input_pos_emb = None
    hp.speech_cond_prompt_len = 375
    hp.use_perceiver_resampler = False
    hp.emotion_adv = False
    ve, t3, s3gen = VoiceEncoder().eval(), T3(hp).eval(), S3Gen(meanflow=True).eval()
    _save_safetensors(ve, directory / "ve.safetensors")
    _save_safetensors(t3, directory / "t3_turbo_v1.safetensors")
    _save_safetensors(s3gen, directory / "s3gen_meanflow.safetensors")
    _gpt2_tokenizer_files(directory)
    if with_conds:
        clip = directory / "builtin_voice.wav"
        sf.write(clip, speechlike_clip(TURBO_REFERENCE_S, seed=seed + 1), REFERENCE_SR)
        tts = ChatterboxTurboTTS(t3, s3gen, ve, AutoTokenizer.from_pretrained(directory), "cpu")
        tts.prepare_conditionals(str(clip))
        tts.conds.save(directory / "conds.pt")
        clip.unlink()
    return directory


def _cangjie_hub_cache(directory: Path) -> None:
    """`MTLTokenizer` looks Cangjie5_TC.json up with `hf_hub_download(cache_dir=<model folder>)`; a
    hub-cache entry in the folder lets it find a (tiny) table offline instead of retrying the hub."""
    repo = directory / "models--ResembleAI--chatterbox"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    (snapshot / "Cangjie5_TC.json").write_text(json.dumps(["\u4f60\tonf", "\u597d\tvnd"]))


def build_multilingual_checkpoint(directory: Path, *, with_conds: bool = True, seed: int = 0) -> Path:
    """A random-weight multilingual checkpoint (`ChatterboxMultilingualTTS.from_local`); call under `reduced_t3()`."""
    import soundfile as sf
    import torch
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.t3_config import T3Config
    from chatterbox.models.voice_encoder import VoiceEncoder
    from chatterbox.mtl_tts import SUPPORTED_LANGUAGES, ChatterboxMultilingualTTS
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    ve, t3, s3gen = VoiceEncoder().eval(), T3(T3Config.multilingual()).eval(), S3Gen().eval()
    torch.save(ve.state_dict(), directory / "ve.pt")
    torch.save(s3gen.state_dict(), directory / "s3gen.pt")
    save_file({k: v.contiguous().clone() for k, v in t3.state_dict().items()},
              str(directory / "t3_mtl23ls_v2.safetensors"))
    tokenizer = directory / "grapheme_mtl_merged_expanded_v1.json"
    tags = tuple(f"[{code}]" for code in sorted(SUPPORTED_LANGUAGES))
    tokenizer.write_text(json.dumps(_tokenizer_json(tags, _COMBINING)))
    _cangjie_hub_cache(directory)
    if with_conds:
        clip = directory / "builtin_voice.wav"
        sf.write(clip, speechlike_clip(2.0, seed=seed + 1), REFERENCE_SR)
        # Preparing conditionals needs no tokenizer (MTLTokenizer would start spacy-pkuseg, which downloads).
        tts = ChatterboxMultilingualTTS(t3, s3gen, ve, None, "cpu")
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


def load_engine(model_dir: Path, data_dir: Path, progress=None, *, variant: str = "chatterbox", **settings):
    """A ChatterboxEngine on CPU with the small test tuning, loaded from `model_dir` through `from_local`."""
    from stream.engines.chatterbox import ChatterboxEngine, StreamTuning
    from stream.settings import Settings

    engine = ChatterboxEngine(Settings(model_dir=str(model_dir), data_dir=str(data_dir), device="cpu", **settings),
                              variant=variant, tuning=StreamTuning(**TEST_TUNING), progress=progress)
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
