"""The static-cache T3 decode step: same tokens as the dynamic-cache loop, no host sync, CUDA graph capture.

A reduced random-weight T3 built in memory from the package's class; no checkpoint, no S3Gen.
"""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("chatterbox", reason="the chatterbox extra is not installed (pip install 'voicewire[chatterbox]')")

import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from stream.engines.chatterbox.conditioning import t3_prefix, with_emotion  # noqa: E402
from stream.engines.chatterbox.sampling import SamplingParams, llama_tokens  # noqa: E402
from stream.engines.chatterbox.static_decode import (  # noqa: E402
    StaticLlamaDecoder,
    llama_prefix_embeds,
    llama_tokens_static,
    make_step,
)
from tests.chatterbox_checkpoint import reduced_t3  # noqa: E402

pytestmark = pytest.mark.chatterbox

SETTINGS = {
    "cfg": SamplingParams(temperature=0.8, cfg_weight=0.5, min_p=0.05, top_p=0.9, repetition_penalty=1.3, max_new_tokens=30),
    "no_cfg": SamplingParams(temperature=0.8, cfg_weight=0.0, min_p=0.05, top_p=1.0, repetition_penalty=1.2, max_new_tokens=30),
    "greedy": SamplingParams(temperature=0.0, cfg_weight=0.5, min_p=0.05, top_p=1.0, repetition_penalty=1.2, max_new_tokens=30),
}


@pytest.fixture(scope="module")
def t3_and_inputs():
    from chatterbox.models.t3 import T3

    torch.manual_seed(0)
    with reduced_t3():
        t3 = T3().eval()
    hp = t3.hp
    speaker = torch.randn(1, hp.speaker_embed_size)
    prompt = torch.randint(0, 6561, (1, hp.speech_cond_prompt_len))
    prefix = with_emotion(t3, t3_prefix(t3, speaker, prompt), 0.5)
    text = torch.randint(3, 200, (1, 20))
    text = torch.cat([torch.tensor([[hp.start_text_token]]), text, torch.tensor([[hp.stop_text_token]])], dim=1)
    return t3, prefix, text


def _tokens(loop, t3, prefix, text, params, seed):
    return list(loop(t3, prefix, text, params, torch.Generator().manual_seed(seed), threading.Event()))


def assert_static_gives_dynamic_tokens(dynamic_loop, static_loop, inputs, params: SamplingParams) -> None:
    """For two seeds the static-cache loop yields the dynamic loop's tokens, all `max_new_tokens` of them."""
    for seed in (1, 2):
        dynamic = _tokens(dynamic_loop, *inputs, params, seed)
        static = _tokens(static_loop, *inputs, params, seed)
        assert static == dynamic and len(static) == params.max_new_tokens


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_static_cache_decode_gives_the_dynamic_loops_tokens(t3_and_inputs, name):
    assert_static_gives_dynamic_tokens(llama_tokens, llama_tokens_static, t3_and_inputs, SETTINGS[name])


class _NoHostSync(TorchDispatchMode):
    """Fails on any op that copies a device value to the host or whose output shape depends on values."""

    FORBIDDEN = ("_local_scalar_dense", "item", "nonzero", "masked_select", "unique", "is_nonzero",
                 "_assert_async", "equal")

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.__name__.split(".")[0]
        self.ops.append(name)
        if name in self.FORBIDDEN:
            raise AssertionError(f"host sync in the decode step: {func}")
        if name in ("_to_copy", "copy_") and any(isinstance(a, torch.Tensor) and a.device.type == "cpu" and
                                                  a.is_pinned() for a in args):
            raise AssertionError(f"device->host copy in the decode step: {func}")
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", ["cfg", "greedy"])
def test_decode_step_performs_no_host_sync(t3_and_inputs, name):
    t3, prefix, text = t3_and_inputs
    params = SETTINGS[name]
    with torch.inference_mode():
        embeds, bos = llama_prefix_embeds(t3, prefix, text, params.cfg_weight > 0)
        decoder = StaticLlamaDecoder(t3, params, embeds.shape[1], torch.Generator().manual_seed(0))
        step = make_step(decoder, embeds, bos, use_graph=False)
        guard = _NoHostSync()
        with guard:
            for _ in range(3):
                step()
    assert "multinomial" in guard.ops or name == "greedy"


def test_host_sync_guard_catches_an_item_read():
    with pytest.raises(AssertionError, match="host sync"), _NoHostSync():
        int(torch.tensor([3]) + 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: graph capture and replay of the decode step")
def test_cuda_graph_replay_gives_the_eager_tokens(t3_and_inputs):
    t3, prefix, text = (v.cuda() if torch.is_tensor(v) else v.to("cuda") for v in t3_and_inputs)
    params = SETTINGS["cfg"]

    def run(graph: bool) -> list[int]:
        gen = torch.Generator(device="cuda").manual_seed(4)
        return list(llama_tokens_static(t3, prefix, text, params, gen, threading.Event(), cuda_graph=graph))

    assert run(True) == run(False)
