"""Counts (not timings) from the real Chatterbox modules that the analytic H100 cost model is built on.

For each GPU-side piece this runs the package's module once on CPU under two counters: torch's
`FlopCounterMode` (matmul/conv/attention FLOPs) and a dispatch mode that counts aten ops (each one
is at least one kernel launch on a GPU, eager). Pieces and the sizes they vary with:

- T3 decode step (the static step of `static_decode`, CFG pair): ops and FLOPs at 1 and 2 layers,
  so per layer and fixed parts separate (the full model has 30; the hidden size is the real 1024);
- the S3Gen flow encoder and one estimator call (batch 2: the CFG pair) at several frame counts,
  fitted as `a + b*frames + c*frames**2` by least squares (the estimator's masked attention, which
  the counter misses, is added analytically); HiFT per vocoded frame.

The numbers are baked into `cost_model.py` (with this script named as their source); rerun it after
a package upgrade: `python -m benchmarks.cost_counts` (a few minutes on a loaded 2-core machine).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from functools import partial

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

_IGNORED = {"aten.detach.default", "aten.view.default", "aten._unsafe_view.default", "aten.t.default",
            "aten.transpose.int", "aten.unsqueeze.default", "aten.squeeze.dim", "aten.expand.default",
            "aten.slice.Tensor", "aten.select.int", "aten.permute.default", "aten.alias.default",
            "aten.as_strided.default", "aten.split.Tensor", "aten.reshape.default"}


class _OpCounter(TorchDispatchMode):
    """Counts aten ops that launch a kernel (views and metadata ops excluded)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        if name not in _IGNORED:
            self.ops[name] += 1
        return func(*args, **(kwargs or {}))


def _count(fn) -> tuple[int, int]:
    """(kernel-launching aten ops, FLOPs) of one call."""
    ops = _OpCounter()
    flops = FlopCounterMode(display=False)
    with torch.inference_mode(), flops, ops:
        fn()
    return sum(ops.ops.values()), int(flops.get_total_flops())


def t3_step_counts() -> dict:
    """The static decode step of the Llama T3 (CFG: 2 rows), at 1 and 2 layers of the real width."""
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.llama_configs import LLAMA_CONFIGS

    from stream.engines.chatterbox.sampling import SamplingParams
    from stream.engines.chatterbox.static_decode import StaticLlamaDecoder, llama_prefix_embeds

    config = LLAMA_CONFIGS["Llama_520M"]
    saved = dict(config)
    result = {}
    try:
        for layers in (1, 2):
            config["num_hidden_layers"] = layers
            torch.manual_seed(0)
            t3 = T3().eval()
            params = SamplingParams(temperature=0.8, cfg_weight=0.5, min_p=0.05, top_p=1.0,
                                    repetition_penalty=1.2, max_new_tokens=8)
            prefix = torch.randn(1, 34, t3.cfg.hidden_size)
            text = torch.randint(3, 200, (1, 40))
            with torch.inference_mode():
                embeds, bos = llama_prefix_embeds(t3, prefix, text, True)
                decoder = StaticLlamaDecoder(t3, params, embeds.shape[1], torch.Generator().manual_seed(0))
                decoder.prefill(embeds, bos)
                decoder.step()                      # warm (lazy buffers)
            result[layers] = _count(decoder.step)
            prefill_tokens = embeds.shape[1]
            result[f"prefill_{layers}"] = _count(partial(decoder.prefill, embeds, bos)) + (prefill_tokens,)
    finally:
        config.clear()
        config.update(saved)
    (ops1, flops1), (ops2, flops2) = result[1], result[2]
    return {"ops_fixed": 2 * ops1 - ops2, "ops_per_layer": ops2 - ops1,
            "flops_fixed": 2 * flops1 - flops2, "flops_per_layer": flops2 - flops1, "rows": 2,
            "prefill": {"tokens": result["prefill_1"][2], "rows": 2,
                        "ops_fixed": 2 * result["prefill_1"][0] - result["prefill_2"][0],
                        "ops_per_layer": result["prefill_2"][0] - result["prefill_1"][0],
                        "flops_per_layer": result["prefill_2"][1] - result["prefill_1"][1]}}


def _fit(frames: list[int], values: list[int], degree: int) -> list[float]:
    """Least-squares coefficients [a, b(, c)] of a + b*f (+ c*f**2)."""
    f = np.asarray(frames, dtype=float)
    design = np.stack([f ** k for k in range(degree + 1)], axis=1)
    coef, *_ = np.linalg.lstsq(design, np.asarray(values, dtype=float), rcond=None)
    return [float(c) for c in coef]


def s3gen_counts(frame_counts: tuple[int, ...] = (116, 300, 540)) -> dict:
    """Encoder, one estimator call (CFG pair) and HiFT of the real S3Gen, at several frame counts."""
    from chatterbox.models.s3gen import S3Gen

    torch.manual_seed(0)
    s3gen = S3Gen().eval()
    # Weight norm's parametrization fails under the counting modes; folding it in changes no count
    # that matters (it is one small op per conv, absent from a deployed, folded model too).
    for module in s3gen.mel2wav.modules():
        if torch.nn.utils.parametrize.is_parametrized(module):
            for name in list(module.parametrizations):
                torch.nn.utils.parametrize.remove_parametrizations(module, name)
    flow = s3gen.flow
    estimator = flow.decoder.estimator
    per: dict[str, list[tuple[int, int]]] = {"encoder": [], "estimator": [], "hift": []}
    with torch.inference_mode():
        spks = flow.spk_embed_affine_layer(torch.randn(2, 192))
    for frames in frame_counts:
        tokens = frames // 2
        token = torch.randint(0, 6561, (1, tokens))
        lens = torch.tensor([tokens])
        per["encoder"].append(_count(partial(flow.encoder, flow.input_embedding(token), lens)))
        x = torch.randn(2, 80, frames)
        mask = torch.ones(2, 1, frames)
        mu = torch.randn(2, 80, frames)
        cond = torch.randn(2, 80, frames)
        t = torch.rand(2)
        per["estimator"].append(_count(partial(estimator, x, mask, mu, t, spks, cond)))
        mel = torch.randn(1, 80, min(frames, 64))      # HiFT sees only a chunk's frames (+ overlap)
        per["hift"].append(_count(partial(s3gen.mel2wav.inference, speech_feat=mel,
                                          cache_source=torch.zeros(1, 1, 0))))
    hift_frames = [min(f, 64) for f in frame_counts]
    # The FLOP counter misses the estimator's masked SDPA (diffusers' AttnProcessor2_0): add
    # QK^T and AV analytically, 4 x inner_dim x frames^2 per attention block and batch row.
    from diffusers.models.attention_processor import Attention

    attention = [m for m in estimator.modules() if isinstance(m, Attention)]
    estimator_fit = _fit(frame_counts, [f for _, f in per["estimator"]], 2)
    estimator_fit[2] += 2 * sum(4 * m.inner_dim for m in attention)
    return {
        "frames": list(frame_counts),
        "params": {"encoder": sum(p.numel() for p in flow.encoder.parameters()),
                   "estimator": sum(p.numel() for p in estimator.parameters()),
                   "hift": sum(p.numel() for p in s3gen.mel2wav.parameters())},
        "raw": {k: v for k, v in per.items()},
        "ops": {k: round(float(np.mean([o for o, _ in v]))) for k, v in per.items()},
        "encoder_flops": _fit(frame_counts, [f for _, f in per["encoder"]], 2),
        "estimator_attention_blocks": len(attention),
        "estimator_flops": estimator_fit,
        "hift_flops_per_frame": float(np.mean([f / n for (_, f), n in zip(per["hift"], hift_frames, strict=True)])),
    }


def main() -> None:
    torch.set_num_threads(1)
    threading.stack_size(64 * 2**20)
    print(json.dumps({"t3_step": t3_step_counts()}), flush=True)
    print(json.dumps({"s3gen": s3gen_counts(), "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
