"""`--sampler counter` on the static single-stream step: the batched runner's tokens for a seed."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("chatterbox", reason="the chatterbox extra is not installed (pip install 'voicewire[chatterbox]')")

import torch  # noqa: E402

from stream.engines.chatterbox.batched_t3 import RowSettings, T3Batch  # noqa: E402
from stream.engines.chatterbox.sampling import SamplingParams  # noqa: E402
from stream.engines.chatterbox.static_decode import (  # noqa: E402
    StaticLlamaDecoder,
    llama_prefix_embeds,
    llama_tokens_static,
    make_step,
)
from tests.engines.test_chatterbox_static_decode import _NoHostSync, t3_and_inputs  # noqa: E402,F401 - fixture

pytestmark = pytest.mark.chatterbox

PARAMS = SamplingParams(temperature=0.8, cfg_weight=0.5, min_p=0.05, top_p=0.9, repetition_penalty=1.3,
                        max_new_tokens=20)


def _static(t3, prefix, text, seed: int, sampler: str) -> list[int]:
    gen = torch.Generator().manual_seed(seed)
    return list(llama_tokens_static(t3, prefix, text, PARAMS, gen, threading.Event(), sampler=sampler))


def _batched(t3, prefix, text, seed: int) -> list[int]:
    settings = RowSettings(temperature=PARAMS.temperature, top_p=PARAMS.top_p, min_p=PARAMS.min_p,
                           repetition_penalty=PARAMS.repetition_penalty, cfg_weight=PARAMS.cfg_weight,
                           max_new_tokens=PARAMS.max_new_tokens)
    with torch.inference_mode():
        embeds, _ = llama_prefix_embeds(t3, prefix, text, cfg=True)
        batch = T3Batch(t3, rows=2, max_positions=embeds.shape[1] + PARAMS.max_new_tokens + 8, device="cpu",
                        dtype=torch.float32)
        group = batch.open(embeds, settings, seed)
        batch.prefill(group, 0, embeds.shape[1])
        tokens = []
        while len(tokens) < PARAMS.max_new_tokens:
            if (token := int(batch.step([group])[0])) == t3.hp.stop_speech_token:
                break
            tokens.append(token)
    return tokens


@pytest.mark.parametrize("seed", [3, 2**40 + 5])
def test_counter_sampler_gives_the_batched_runners_tokens(t3_and_inputs, seed):  # noqa: F811
    t3, prefix, text = t3_and_inputs
    counter = _static(t3, prefix, text, seed, "counter")
    assert counter == _batched(t3, prefix, text, seed)
    assert counter == _static(t3, prefix, text, seed, "counter")       # a seed reproduces within one sampler
    assert counter != _static(t3, prefix, text, seed, "package")       # and the two samplers draw differently


def test_counter_sampler_step_performs_no_host_sync(t3_and_inputs):  # noqa: F811
    t3, prefix, text = t3_and_inputs
    with torch.inference_mode():
        embeds, bos = llama_prefix_embeds(t3, prefix, text, cfg=True)
        decoder = StaticLlamaDecoder(t3, PARAMS, embeds.shape[1], torch.Generator().manual_seed(1), sampler="counter")
        step = make_step(decoder, embeds, bos, use_graph=False)
        guard = _NoHostSync()
        with guard:
            for _ in range(3):
                step()
    assert "multinomial" not in guard.ops and "argmax" in guard.ops


def test_an_unknown_sampler_stops_the_load_naming_the_flag(tmp_path):
    from stream.engines.base import EngineLoadError
    from stream.engines.chatterbox import ChatterboxEngine
    from stream.settings import Settings

    with pytest.raises(EngineLoadError, match="--sampler: 'dice' is not one of package, counter"):
        ChatterboxEngine(Settings(data_dir=str(tmp_path), sampler="dice")).load()
