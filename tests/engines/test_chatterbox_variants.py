"""Chatterbox-Turbo and Chatterbox-Multilingual on random-weight checkpoints built from the package's
own classes (`tests/chatterbox_checkpoint.py`), loaded through `ChatterboxEngine.load()` with a
--model-dir folder exactly as `from_local` reads it. Each checkpoint is built once per module."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("chatterbox", reason="the chatterbox extra is not installed (pip install 'voicewire[chatterbox]')")

from stream.core.errors import BadAudio, Unsupported  # noqa: E402
from stream.core.protocol import GenerationSettings  # noqa: E402
from stream.engines.base import EngineLoadError, SynthesisRequest  # noqa: E402
from stream.engines.chatterbox import ChatterboxEngine, StreamTuning  # noqa: E402
from stream.engines.chatterbox.decoding import SPEECH_VOCAB  # noqa: E402
from stream.settings import Settings  # noqa: E402
from tests.chatterbox_checkpoint import (  # noqa: E402
    REFERENCE_SR,
    TEST_TUNING,
    build_multilingual_checkpoint,
    build_turbo_checkpoint,
    load_engine,
    reduced_t3,
    speechlike_clip,
)

pytestmark = pytest.mark.chatterbox

TEXT = "Hello there, how are you?"
SAMPLES_PER_TOKEN = 960
# A small budget (two chunks: 4 tokens, then the rest) and no watermark keep this file's CPU time
# down: Turbo's >5 s built-in voice gives S3Gen a 300-frame prompt to re-run on every flush.
TUNING = StreamTuning(**{**TEST_TUNING, "max_new_tokens": 8})


def _load(model_dir, data_dir, variant):
    messages: list[str] = []
    engine = load_engine(model_dir, data_dir, progress=messages.append, variant=variant, watermark=False)
    engine.tuning = TUNING
    engine.load_messages = messages
    return engine


@pytest.fixture(scope="module")
def turbo_dir(tmp_path_factory):
    with reduced_t3():
        return build_turbo_checkpoint(tmp_path_factory.mktemp("turbo-ckpt"))


@pytest.fixture(scope="module")
def turbo(turbo_dir, tmp_path_factory) -> ChatterboxEngine:
    return _load(turbo_dir, tmp_path_factory.mktemp("turbo-data"), "chatterbox-turbo")


@pytest.fixture(scope="module")
def multi_dir(tmp_path_factory):
    with reduced_t3():
        return build_multilingual_checkpoint(tmp_path_factory.mktemp("mtl-ckpt"))


@pytest.fixture(scope="module")
def multi(multi_dir, tmp_path_factory) -> ChatterboxEngine:
    return _load(multi_dir, tmp_path_factory.mktemp("mtl-data"), "chatterbox-multilingual")


def request(engine, text: str = TEXT, voice=None, **generation) -> SynthesisRequest:
    generation.setdefault("seed", 7)
    return SynthesisRequest(text=text, voice=voice or engine.default_voice(),
                            generation=GenerationSettings(**generation), first_in_context=True)


def stream(engine, req) -> list[np.ndarray]:
    return list(engine.synthesize(req, threading.Event()))


def decoded_tokens(engine, req) -> list[int]:
    """The phrase's speech tokens as the streamed run samples them (same seed, same budget)."""
    return [t for t in engine.speech_tokens(req, threading.Event()) if t < SPEECH_VOCAB]


def check_audio(chunks: list[np.ndarray], expected_samples: int) -> np.ndarray:
    assert chunks and all(c.dtype == np.float32 and c.ndim == 1 and c.size for c in chunks)
    audio = np.concatenate(chunks)
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0
    assert audio.size == expected_samples
    return audio


def without(folder, name, tmp_path):
    """A copy (symlinks) of a checkpoint folder lacking one file."""
    partial = tmp_path / f"without-{name}"
    partial.mkdir()
    for f in folder.iterdir():
        if f.name != name:
            (partial / f.name).symlink_to(f)
    return partial


# ----- Turbo -------------------------------------------------------------------------------------

def test_turbo_loads_from_model_dir_with_its_capabilities(turbo):
    assert turbo.model.startswith("chatterbox-turbo:") and turbo.loaded.tts.t3.is_gpt
    assert any("loaded from" in m for m in turbo.load_messages)
    fields = turbo.capabilities.generation_fields
    assert not {"exaggeration", "cfg_weight", "min_p", "language"} & fields
    assert {"temperature", "top_p", "repetition_penalty", "seed", "speed"} <= fields
    assert turbo.capabilities.languages == ("en",) and turbo.has_default_voice()


def test_turbo_streams_chunks_with_the_silence_tail_length(turbo):
    req = request(turbo)
    tokens = decoded_tokens(turbo, req)
    assert 0 < len(tokens) <= TUNING.max_new_tokens
    chunks = stream(turbo, req)
    # Turbo appends three silence tokens to every phrase (as the package's generate does).
    check_audio(chunks, SAMPLES_PER_TOKEN * (len(tokens) + 3))
    if len(tokens) > TEST_TUNING["first_chunk_tokens"] + 3:
        assert len(chunks) >= 2


def test_turbo_seed_is_deterministic_and_ignores_exaggeration_cfg_min_p(turbo):
    first = np.concatenate(stream(turbo, request(turbo, seed=11)))
    again = np.concatenate(stream(turbo, request(turbo, seed=11, exaggeration=1.5, cfg_weight=0.9, min_p=0.3)))
    assert np.array_equal(first, again)


def test_turbo_reference_must_be_longer_than_five_seconds(turbo):
    with pytest.raises(BadAudio, match="more than 5 s"):
        turbo.prepare_voice(speechlike_clip(4.0, seed=3), REFERENCE_SR, "short", "short")
    voice = turbo.prepare_voice(speechlike_clip(5.5, seed=3), REFERENCE_SR, "long", "long")
    assert voice.conditioning.prompt_tokens is not None and turbo.preparations == 1
    assert voice.conditioning.t3_prefix.shape[-1] == turbo.loaded.tts.t3.dim


def test_turbo_missing_weights_are_named(turbo_dir, tmp_path):
    partial = without(turbo_dir, "t3_turbo_v1.safetensors", tmp_path)
    engine = ChatterboxEngine(Settings(model_dir=str(partial), data_dir=str(tmp_path), device="cpu"),
                              variant="chatterbox-turbo")
    with pytest.raises(EngineLoadError, match="missing t3_turbo_v1.safetensors"):
        engine.load()


# ----- Multilingual ------------------------------------------------------------------------------

def test_multilingual_loads_from_model_dir_with_its_capabilities(multi):
    from chatterbox.mtl_tts import SUPPORTED_LANGUAGES

    assert multi.model.startswith("chatterbox-multilingual:") and not multi.loaded.tts.t3.is_gpt
    caps = multi.capabilities
    assert {"language", "exaggeration", "cfg_weight", "min_p"} <= caps.generation_fields
    assert caps.languages == tuple(sorted(SUPPORTED_LANGUAGES)) and "de" in caps.languages
    assert multi.has_default_voice()


def test_multilingual_streams_chunks_of_the_promised_length(multi):
    req = request(multi)
    tokens = decoded_tokens(multi, req)
    assert 0 < len(tokens) <= TUNING.max_new_tokens
    chunks = stream(multi, req)
    check_audio(chunks, SAMPLES_PER_TOKEN * len(tokens))
    if len(tokens) > TEST_TUNING["first_chunk_tokens"] + 3:
        assert len(chunks) >= 2


def test_multilingual_seed_is_deterministic(multi):
    first = np.concatenate(stream(multi, request(multi, seed=11)))
    again = np.concatenate(stream(multi, request(multi, seed=11)))
    assert np.array_equal(first, again)


def test_multilingual_language_reaches_the_tokenizer(multi):
    tag = multi.loaded.tts.tokenizer.tokenizer.token_to_id("[de]")
    german = multi._text_tokens("Grüße aus Köln.", "DE")
    assert german[0, 1].item() == tag                   # after the start-of-text token
    assert multi._text_tokens("Grüße aus Köln.", None)[0, 1].item() == multi.loaded.tts.tokenizer.tokenizer.token_to_id("[en]")
    req = request(multi, "Grüße aus Köln.", language="de", seed=3)
    assert not np.array_equal(german, multi._text_tokens("Grüße aus Köln.", "fr"))
    check_audio(stream(multi, req), SAMPLES_PER_TOKEN * len(decoded_tokens(multi, req)))


def test_multilingual_unsupported_language_is_refused(multi):
    with pytest.raises(Unsupported, match="generation.language: 'xx'"):
        stream(multi, request(multi, language="xx"))


def test_multilingual_missing_weights_are_named(multi_dir, tmp_path):
    partial = without(multi_dir, "t3_mtl23ls_v2.safetensors", tmp_path)
    engine = ChatterboxEngine(Settings(model_dir=str(partial), data_dir=str(tmp_path), device="cpu"),
                              variant="chatterbox-multilingual")
    with pytest.raises(EngineLoadError, match="missing t3_mtl23ls_v2.safetensors"):
        engine.load()
