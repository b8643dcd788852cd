"""The voice-prefix KV cache: prefill from the voice's stored keys/values equals a full prefill (causality)."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("chatterbox", reason="the chatterbox extra is not installed (pip install 'voicewire[chatterbox]')")

import torch  # noqa: E402

from stream.engines.chatterbox.conditioning import VoiceConditioning, voice_kv, with_emotion  # noqa: E402
from stream.engines.chatterbox.static_decode import (  # noqa: E402
    StaticLlamaDecoder,
    llama_prefix_embeds,
    llama_tokens_static,
)
from tests.engines.test_chatterbox_static_decode import SETTINGS, t3_and_inputs  # noqa: E402,F401 - fixture

pytestmark = pytest.mark.chatterbox


@pytest.fixture(scope="module")
def voice(t3_and_inputs):  # noqa: F811
    """A conditioning whose prefix is the fixture's voice positions (the emotion position removed)."""
    t3, prefix, text = t3_and_inputs
    conditioning = VoiceConditioning(speaker_emb=torch.zeros(1, 256), prompt_tokens=None, gen={},
                                     t3_prefix=prefix[:, :-1])
    return t3, conditioning, text


def _logits_after(t3, params, embeds, bos, kv, steps: int) -> list[torch.Tensor]:
    decoder = StaticLlamaDecoder(t3, params, embeds.shape[1], torch.Generator().manual_seed(3), kv)
    decoder.prefill(embeds, bos)
    out = [t3.speech_head(decoder.state.hidden).float().clone()]
    for _ in range(steps):
        decoder.step()
        out.append(t3.speech_head(decoder.state.hidden).float().clone())
    return out


@pytest.mark.parametrize("name", ["cfg", "no_cfg"])
def test_prefill_from_the_voice_kv_gives_the_full_prefills_logits(voice, name):
    t3, conditioning, text = voice
    params = SETTINGS[name]
    kv = voice_kv(t3, conditioning)
    with torch.inference_mode():
        embeds, bos = llama_prefix_embeds(t3, with_emotion(t3, conditioning.t3_prefix, 0.7), text, params.cfg_weight > 0)
        full = _logits_after(t3, params, embeds, bos, None, steps=5)
        cached = _logits_after(t3, params, embeds, bos, kv, steps=5)
    for a, b in zip(full, cached, strict=True):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=0)


def test_the_voice_kv_covers_the_voice_positions_only_and_is_computed_once(voice):
    t3, conditioning, _ = voice
    kv = voice_kv(t3, conditioning)
    assert kv.length == conditioning.t3_prefix.shape[1]     # speaker + perceiver; the emotion position is per turn
    assert len(kv.keys) == len(kv.values) == t3.cfg.num_hidden_layers
    assert kv.keys[0].shape[0] == 1 and kv.keys[0].shape[2] == kv.length
    assert voice_kv(t3, conditioning) is kv


def test_tokens_with_the_voice_kv_equal_tokens_without(voice):
    t3, conditioning, text = voice
    params = SETTINGS["cfg"]
    prefix = with_emotion(t3, conditioning.t3_prefix, 0.5)

    def run(kv) -> list[int]:
        gen = torch.Generator().manual_seed(9)
        return list(llama_tokens_static(t3, prefix, text, params, gen, threading.Event(), voice_kv=kv))

    assert run(voice_kv(t3, conditioning)) == run(None)
