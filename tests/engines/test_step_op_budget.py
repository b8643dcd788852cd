"""Op-count budget of one T3 decode step, so host-overhead regressions show up on a CPU.

On a GPU without a CUDA graph every aten op is a kernel launch and some Python, a few
microseconds of host time each; a step that quietly grows (an extra cast, a mask rebuilt, a
processor re-created) is slower everywhere a graph is not captured and heavier to capture. The
counter below records every aten op one eager step dispatches, after prefill and one warm step,
on the reduced checkpoint (2 layers, see `tests.chatterbox_checkpoint.reduced_t3`).

Measured on 2026-11-30 (torch 2.6, transformers 5.2), per step, 2 layers:
  Llama, CFG (2 rows), sampling:   205 ops  (about 97 for embedding, sampling and mask set-up,
                                              54 per layer: RMSNorms, RoPE, q/k/v/o, SDPA, MLP, cache writes)
  Llama, greedy:                   187 ops
  Turbo GPT-2, package sampling:   143 ops  (top_k, top_p, repetition penalty, multinomial)
A full-size Llama step (30 layers) is therefore about 97 + 30 x 54 = 1 717 dispatched ops. The
budgets are the 2-layer counts plus about 5 %: a new op or two per layer, or a few in the
sampler, trips them. If a change adds ops on purpose, measure again and move the number here.
"""

from __future__ import annotations

from collections import Counter

import pytest

pytest.importorskip("chatterbox", reason="the chatterbox extra is not installed (pip install 'voicewire[chatterbox]')")

import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from stream.engines.chatterbox.static_decode import StaticLlamaDecoder, llama_prefix_embeds, make_step  # noqa: E402
from stream.engines.chatterbox.static_turbo import StaticTurboDecoder, turbo_prefix_embeds  # noqa: E402
from tests.engines.test_chatterbox_static_decode import SETTINGS as LLAMA_SETTINGS  # noqa: E402
from tests.engines.test_chatterbox_static_decode import t3_and_inputs  # noqa: E402,F401 - fixture
from tests.engines.test_static_turbo import SETTINGS as TURBO_SETTINGS  # noqa: E402
from tests.engines.test_static_turbo import turbo_and_inputs  # noqa: E402,F401 - fixture

pytestmark = pytest.mark.chatterbox

LLAMA_BUDGET = {"cfg": 215, "greedy": 197}
TURBO_BUDGET = {"package": 150}


class OpCounter(TorchDispatchMode):
    """Counts every aten op dispatched while active."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func)] += 1
        return func(*args, **(kwargs or {}))


def _count_one_step(decoder, embeds, bos) -> Counter[str]:
    step = make_step(decoder, embeds, bos, use_graph=False)
    step()      # a warm step: lazily built state (cache layers) is not the steady state
    counter = OpCounter()
    with counter:
        step()
    return counter.ops


@pytest.mark.parametrize("name", sorted(LLAMA_BUDGET))
def test_llama_static_step_stays_within_its_op_budget(t3_and_inputs, name):  # noqa: F811
    t3, prefix, text = t3_and_inputs
    params = LLAMA_SETTINGS[name]
    with torch.inference_mode():
        embeds, bos = llama_prefix_embeds(t3, prefix, text, params.cfg_weight > 0)
        ops = _count_one_step(StaticLlamaDecoder(t3, params, embeds.shape[1], torch.Generator().manual_seed(0)),
                              embeds, bos)
    total = sum(ops.values())
    assert ops["aten.scaled_dot_product_attention.default"] == t3.cfg.num_hidden_layers   # the counter sees the layers
    assert total <= LLAMA_BUDGET[name], f"{total} ops per step (budget {LLAMA_BUDGET[name]}): {ops.most_common(12)}"


def test_turbo_static_step_stays_within_its_op_budget(turbo_and_inputs):  # noqa: F811
    t3, prefix, text = turbo_and_inputs
    params = TURBO_SETTINGS["package"]
    with torch.inference_mode():
        embeds, start = turbo_prefix_embeds(t3, prefix, text)
        ops = _count_one_step(StaticTurboDecoder(t3, params, embeds.shape[1], torch.Generator().manual_seed(0)),
                              embeds, start)
    total = sum(ops.values())
    assert ops["aten.scaled_dot_product_attention.default"] == t3.cfg.n_layer
    assert total <= TURBO_BUDGET["package"], f"{total} ops per step (budget {TURBO_BUDGET['package']}): {ops.most_common(12)}"
