"""Turbo's GPT-2 T3 on the static cache: the dynamic loop's tokens for a seed, no host sync in the step.

A reduced random-weight Turbo T3 built in memory from the package's class; no checkpoint, no S3Gen.
"""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("chatterbox", reason="the chatterbox extra is not installed (pip install 'voicewire[chatterbox]')")

import torch  # noqa: E402

from stream.engines.chatterbox.conditioning import t3_prefix, with_emotion  # noqa: E402
from stream.engines.chatterbox.sampling import SamplingParams, turbo_tokens  # noqa: E402
from stream.engines.chatterbox.static_decode import make_step  # noqa: E402
from stream.engines.chatterbox.static_turbo import (  # noqa: E402
    StaticTurboDecoder,
    turbo_prefix_embeds,
    turbo_tokens_static,
)
from tests.chatterbox_checkpoint import reduced_t3  # noqa: E402
from tests.engines.test_chatterbox_static_decode import _NoHostSync, assert_static_gives_dynamic_tokens  # noqa: E402

pytestmark = pytest.mark.chatterbox

SETTINGS = {
    "package": SamplingParams(temperature=0.8, cfg_weight=0.0, min_p=0.0, top_p=0.95, repetition_penalty=1.2,
                              max_new_tokens=30),
    "plain": SamplingParams(temperature=1.0, cfg_weight=0.0, min_p=0.0, top_p=1.0, repetition_penalty=1.0,
                            max_new_tokens=30),
    "greedy": SamplingParams(temperature=0.0, cfg_weight=0.0, min_p=0.0, top_p=0.95, repetition_penalty=1.3,
                             max_new_tokens=30),
}


def turbo_t3():
    """A reduced Turbo T3 with the hyperparameters `ChatterboxTurboTTS.from_local` sets."""
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.t3_config import T3Config

    hp = T3Config(text_tokens_dict_size=50276)
    hp.llama_config_name, hp.speech_tokens_dict_size, hp.input_pos_emb = "GPT2_medium", 6563, None
    hp.speech_cond_prompt_len, hp.use_perceiver_resampler, hp.emotion_adv = 375, False, False
    with reduced_t3():
        return T3(hp).eval()


@pytest.fixture(scope="module")
def turbo_and_inputs():
    torch.manual_seed(0)
    t3 = turbo_t3()
    speaker = torch.randn(1, t3.hp.speaker_embed_size)
    prompt = torch.randint(0, 6561, (1, t3.hp.speech_cond_prompt_len))
    prefix = with_emotion(t3, t3_prefix(t3, speaker, prompt), 0.5)
    text = torch.randint(0, 50000, (1, 24))
    return t3, prefix, text


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_static_turbo_gives_the_dynamic_loops_tokens(turbo_and_inputs, name):
    assert_static_gives_dynamic_tokens(turbo_tokens, turbo_tokens_static, turbo_and_inputs, SETTINGS[name])


def test_static_turbo_step_performs_no_host_sync(turbo_and_inputs):
    t3, prefix, text = turbo_and_inputs
    params = SETTINGS["package"]
    with torch.inference_mode():
        embeds, start = turbo_prefix_embeds(t3, prefix, text)
        decoder = StaticTurboDecoder(t3, params, embeds.shape[1], torch.Generator().manual_seed(0))
        step = make_step(decoder, embeds, start, use_graph=False)
        guard = _NoHostSync()
        with guard:
            for _ in range(3):
                step()
    assert "multinomial" in guard.ops and "topk" in guard.ops


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: graph capture and replay of the Turbo step")
def test_turbo_cuda_graph_replay_gives_the_eager_tokens(turbo_and_inputs):
    t3, prefix, text = (v.cuda() if torch.is_tensor(v) else v.to("cuda") for v in turbo_and_inputs)
    params = SETTINGS["package"]

    def run(graph: bool) -> list[int]:
        gen = torch.Generator(device="cuda").manual_seed(4)
        return list(turbo_tokens_static(t3, prefix, text, params, gen, threading.Event(), cuda_graph=graph))

    assert run(True) == run(False)
