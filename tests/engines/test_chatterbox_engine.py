"""The Chatterbox engine on a random-weight checkpoint loaded through the package's `from_local`."""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest

pytest.importorskip("chatterbox", reason="the chatterbox extra is not installed (pip install 'voicewire[chatterbox]')")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from stream.core.errors import Unsupported, VoiceNotFound  # noqa: E402
from stream.core.protocol import GenerationSettings  # noqa: E402
from stream.engines.base import EngineLoadError, SynthesisRequest  # noqa: E402
from stream.engines.chatterbox import ChatterboxEngine, StreamTuning, weights_available  # noqa: E402
from stream.engines.chatterbox.decoding import PhraseDecoder  # noqa: E402
from stream.engines.chatterbox.policy import POLICY  # noqa: E402
from stream.engines.chatterbox.sampling import token_cap  # noqa: E402
from stream.settings import Settings  # noqa: E402
from tests.chatterbox_checkpoint import (  # noqa: E402
    TEST_TUNING,
    load_engine,
    shared_checkpoint,
    shared_engine,
    speechlike_clip,
)

pytestmark = pytest.mark.chatterbox

TEXT = "Hello there, how are you today?"


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> ChatterboxEngine:
    return shared_engine(tmp_path_factory)


def request(engine, text: str = TEXT, first: bool = True, **generation) -> SynthesisRequest:
    generation.setdefault("seed", 7)
    return SynthesisRequest(text=text, voice=engine.default_voice(), generation=GenerationSettings(**generation),
                            first_in_context=first)


def variant(engine, watermark: bool | None = None, **tuning) -> ChatterboxEngine:
    """The same loaded model with other tuning or watermark policy (no second load)."""
    other = copy.copy(engine)
    other.tuning = StreamTuning(**{**TEST_TUNING, **tuning})
    if watermark is not None:
        other.watermark = watermark
    return other


def chunks_of(engine, req) -> list[np.ndarray]:
    return list(engine.synthesize(req, threading.Event()))


# ----- loading -----------------------------------------------------------------------------------

def test_load_reports_progress_and_identity(engine):
    assert any("loading" in m for m in engine.load_messages)
    assert any("loaded from" in m for m in engine.load_messages)
    assert engine.model.startswith("chatterbox:") and engine.capabilities.streaming == "token"
    assert engine.capabilities.watermark is True


def test_declares_its_policy_one_worker_and_the_checkpoints_voice(engine):
    assert vars(ChatterboxEngine)["policy"] is POLICY and POLICY.normalizer.spell_out_numbers
    assert engine.default_workers == 1
    assert [(v.id, v.name) for v in engine.builtin_voices] == [("default", "default")]
    assert "conds.pt" in engine.builtin_voices[0].description


def test_missing_and_incomplete_model_dir_name_the_files(tmp_path, tmp_path_factory):
    settings = Settings(model_dir=str(tmp_path / "nope"), data_dir=str(tmp_path), device="cpu")
    with pytest.raises(EngineLoadError, match="is not a folder"):
        ChatterboxEngine(settings).load()
    partial = tmp_path / "partial"
    partial.mkdir()
    ckpt = shared_checkpoint(tmp_path_factory)
    (partial / "ve.safetensors").symlink_to(ckpt / "ve.safetensors")
    (partial / "tokenizer.json").write_text("")
    settings.model_dir = str(partial)
    with pytest.raises(EngineLoadError) as err:
        ChatterboxEngine(settings).load()
    assert "missing t3_cfg.safetensors, s3gen.safetensors" in str(err.value)
    assert "empty tokenizer.json" in str(err.value)
    ok, why = weights_available(settings)
    assert not ok and "missing t3_cfg.safetensors" in why


def test_truncated_weights_fail_with_the_folder_named(tmp_path, tmp_path_factory):
    ckpt = shared_checkpoint(tmp_path_factory)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("ve.safetensors", "s3gen.safetensors", "tokenizer.json"):
        (broken / name).symlink_to(ckpt / name)
    (broken / "t3_cfg.safetensors").write_bytes((ckpt / "t3_cfg.safetensors").read_bytes()[:4096])
    with pytest.raises(EngineLoadError, match=f"loading chatterbox from {broken} failed"):
        load_engine(broken, tmp_path)


def test_offline_hub_failure_says_to_use_model_dir(tmp_path, monkeypatch):
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    engine = ChatterboxEngine(Settings(data_dir=str(tmp_path), device="cpu"))
    with pytest.raises(EngineLoadError, match="could not get ResembleAI/chatterbox from the Hugging Face hub.*--model-dir"):
        engine.load()


def test_capabilities_follow_variant_and_watermark_flag(tmp_path):
    off = ChatterboxEngine(Settings(data_dir=str(tmp_path), watermark=False))
    assert off.capabilities.watermark is False and "exaggeration" in off.capabilities.generation_fields
    turbo = ChatterboxEngine(Settings(data_dir=str(tmp_path)), variant="chatterbox-turbo")
    assert not {"exaggeration", "cfg_weight", "min_p"} & turbo.capabilities.generation_fields
    multi = ChatterboxEngine(Settings(data_dir=str(tmp_path)), variant="chatterbox-multilingual")
    assert "language" in multi.capabilities.generation_fields and "de" in multi.capabilities.languages


# ----- tokens ------------------------------------------------------------------------------------

def test_streamed_tokens_equal_the_package_inference_with_the_same_seed(engine):
    """Same CFG batch, logits processing and sampling as the package's own `T3.inference`."""
    tts = engine.loaded.tts
    gen = dict(seed=11, temperature=0.8, cfg_weight=0.5, min_p=0.05, top_p=0.9, repetition_penalty=1.3)
    streamed = list(engine.speech_tokens(request(engine, **gen), threading.Event(), max_new_tokens=20))
    text = tts.tokenizer.text_to_tokens("Hello there, how are you today?")
    text = F.pad(F.pad(torch.cat([text, text]), (1, 0), value=255), (0, 1), value=0)
    torch.manual_seed(11)
    reference = tts.t3.inference(t3_cond=copy.deepcopy(tts.conds.t3), text_tokens=text, max_new_tokens=20,
                                 temperature=0.8, cfg_weight=0.5, min_p=0.05, top_p=0.9, repetition_penalty=1.3)
    assert streamed == reference[0].tolist()


def test_static_decode_and_the_dynamic_fallback_give_the_same_tokens(engine):
    req = request(engine, seed=12)
    static = list(engine.speech_tokens(req, threading.Event(), max_new_tokens=12))
    dynamic = list(variant(engine, static_decode=False).speech_tokens(req, threading.Event(), max_new_tokens=12))
    assert static == dynamic and len(static) == 12


def test_tokens_arrive_one_at_a_time_and_stop_on_cancel(engine):
    cancel = threading.Event()
    tokens = engine.speech_tokens(request(engine), cancel, max_new_tokens=20)
    first = [next(tokens), next(tokens)]
    cancel.set()
    assert len(first) == 2 and list(tokens) == []


def test_a_phrase_is_tokenized_once(engine, monkeypatch):
    counted = variant(engine, max_new_tokens=6)
    calls: list[str] = []
    original = counted._text_tokens
    monkeypatch.setattr(counted, "_text_tokens", lambda text, language: calls.append(text) or original(text, language))
    chunks_of(counted, request(counted))
    assert calls == [TEXT]


def test_token_cap_grows_with_text_and_bounds_generation(engine):
    assert token_cap(5) < token_cap(50) <= 1000
    capped = variant(engine, max_new_tokens=None)
    req = request(capped, text="Hi.")
    n_text = capped._text_tokens("Hi.", None).shape[-1]
    # Random weights almost never sample EOS, so generation runs exactly to the cap.
    assert len(list(capped.speech_tokens(req, threading.Event()))) == token_cap(n_text)


# ----- audio -------------------------------------------------------------------------------------

def test_streamed_length_equals_one_shot_and_package_decode(engine):
    req = request(engine)
    tokens = [t for t in engine.speech_tokens(req, threading.Event()) if t < 6561]
    streamed = chunks_of(engine, req)
    assert len(streamed) >= 3 and len(streamed[0]) < len(streamed[1])   # small first chunk
    total = sum(len(c) for c in streamed)
    _, acoustic = engine._generators(7)
    one_shot = engine.phrase_decoder(req.voice, req.generation, acoustic, 64)
    for t in tokens:
        one_shot.add(t)
    assert total == len(one_shot.flush(final=True)) == 960 * len(tokens)
    package, _ = engine.loaded.tts.s3gen.inference(speech_tokens=torch.tensor([tokens]), ref_dict=req.voice.conditioning.gen,
                                                   n_cfm_timesteps=2)
    assert package.shape[-1] == total


def test_chunk_joins_have_no_jumps_or_dips(engine):
    chunks = chunks_of(engine, request(engine, seed=3))
    audio = np.concatenate(chunks)
    joins = np.cumsum([len(c) for c in chunks])[:-1]
    steps = np.abs(np.diff(audio))
    inside = np.delete(steps, joins - 1)
    assert steps[joins - 1].max() <= inside.max()
    frame = 480  # 20 ms windows
    rms = np.sqrt(np.mean(audio[: len(audio) // frame * frame].reshape(-1, frame) ** 2, axis=1))
    body = np.median(rms[2:])                      # skip the package's start-of-phrase fade
    for j in joins:
        assert rms[j // frame] > 0.3 * body, f"dip at join {j}"


def test_seed_gives_identical_audio_even_with_concurrent_phrases(engine):
    sequential = np.concatenate(chunks_of(engine, request(engine, seed=5)))
    results: dict[int, np.ndarray] = {}

    def run(i: int, seed: int) -> None:
        results[i] = np.concatenate(chunks_of(engine, request(engine, seed=seed)))

    threads = [threading.Thread(target=run, args=(0, 5)), threading.Thread(target=run, args=(1, 6))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert np.array_equal(results[0], sequential)
    assert not np.array_equal(results[1][: len(sequential)], sequential[: len(results[1])])


def test_speed_scales_the_phrase_length(engine):
    normal = sum(len(c) for c in chunks_of(engine, request(engine, seed=2)))
    fast = sum(len(c) for c in chunks_of(engine, request(engine, seed=2, speed=2.0)))
    assert fast == pytest.approx(normal / 2, rel=0.05)


def test_cancel_stops_within_one_chunk(engine):
    cancel = threading.Event()
    produced = []
    for chunk in engine.synthesize(request(engine), cancel):
        produced.append(chunk)
        cancel.set()
    assert len(produced) == 1


def test_unsupported_language_is_refused(engine):
    with pytest.raises(Unsupported, match="generation.language"):
        chunks_of(engine, request(engine, language="de"))


# ----- voices and the conditioning cache ---------------------------------------------------------

def test_exaggeration_swaps_only_the_emotion_input(engine):
    from stream.engines.chatterbox.conditioning import with_emotion

    clip = speechlike_clip(2.0, seed=21)
    before = engine.preparations
    voice = engine.prepare_voice(clip, 24_000, "v1", "v1")
    assert engine.preparations == before + 1
    for exaggeration in (0.25, 1.75):
        req = SynthesisRequest(text=TEXT, voice=engine.prepare_voice(clip, 24_000, "v1", "v1"),
                               generation=GenerationSettings(seed=9, exaggeration=exaggeration))
        assert len(list(engine.speech_tokens(req, threading.Event(), max_new_tokens=6))) == 6
    assert engine.preparations == before + 1            # two turns, two exaggerations, one preparation
    assert voice.conditioning is engine.prepare_voice(clip, 24_000, "v1", "v1").conditioning
    t3 = engine.loaded.tts.t3
    calm, lively = (with_emotion(t3, voice.conditioning.t3_prefix, e) for e in (0.25, 1.75))
    assert torch.equal(calm[:, :-1], lively[:, :-1])     # speaker and prompt positions are shared
    assert not torch.equal(calm[:, -1], lively[:, -1])   # only the emotion position differs


def test_conditioning_survives_a_restart(engine, tmp_path, tmp_path_factory):
    """A second server process (new engine, same data dir) reads the prepared voice from disk.

    It loads a copy of the checkpoint without conds.pt, which also shows the missing default voice.
    """
    clip = speechlike_clip(2.5, seed=33)
    first = engine.prepare_voice(clip, 24_000, "v2", "v2")
    ckpt = shared_checkpoint(tmp_path_factory)
    copy_dir = tmp_path / "ckpt"
    copy_dir.mkdir()
    for name in ("ve.safetensors", "t3_cfg.safetensors", "s3gen.safetensors", "tokenizer.json"):
        (copy_dir / name).symlink_to(ckpt / name)
    restarted = load_engine(copy_dir, engine.settings.data_dir)
    with pytest.raises(VoiceNotFound, match="conds.pt"):
        restarted.default_voice()
    assert restarted.builtin_voices == []
    second = restarted.prepare_voice(clip, 24_000, "v2", "v2")
    assert restarted.preparations == 0 and restarted._cache.stats["disk"] == 1
    assert torch.equal(first.conditioning.t3_prefix, second.conditioning.t3_prefix)
    assert torch.equal(first.conditioning.gen["prompt_feat"], second.conditioning.gen["prompt_feat"])


# ----- watermark ---------------------------------------------------------------------------------

def test_streamed_output_is_detected_by_perth(engine):
    detector = engine.loaded.tts.watermarker
    longer = dict(max_new_tokens=32)
    marked = np.concatenate(chunks_of(variant(engine, **longer), request(engine, seed=4)))
    plain = np.concatenate(chunks_of(variant(engine, watermark=False, **longer), request(engine, seed=4)))
    assert len(marked) == len(plain)
    assert detector.get_watermark(marked, sample_rate=24_000).mean() > 0.9
    assert detector.get_watermark(plain, sample_rate=24_000).mean() < 0.5


def test_phrase_decoder_only_emits_frames_past_the_lookahead(engine):
    voice = engine.default_voice()
    decoder = PhraseDecoder(engine.loaded.tts.s3gen, voice.conditioning.gen, generator=torch.Generator().manual_seed(0),
                            max_tokens=16, cfm_steps=2, overlap_frames=4)
    for t in range(8):
        decoder.add(100 + t)
    assert decoder.ready_tokens() == 5                  # 3 tokens of encoder lookahead held back
    first = decoder.flush()
    assert len(first) == 5 * 960 - 4 * 480              # the crossfade tail is held back
    decoder.add(6562)                                   # special tokens are never decoded
    assert len(first) + len(decoder.flush(final=True)) == 8 * 960
