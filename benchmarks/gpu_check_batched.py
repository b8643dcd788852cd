"""gpu_check's batched-step stages (issue 13): `T3Batch`'s decode step by rows, eager and CUDA graph.

Run from `benchmarks.gpu_check` on the T3 it has cast to bfloat16 (random weights, timing-only):
  - on CUDA, `batched_graph_equals_eager`: a 7-row batch (3 CFG requests + 1 without, padded to
    the 8-row bucket) gives the same tokens from the replayed graphs as from the eager padded step;
  - on a CPU, `batched_padded_equals_unpadded_float64`: the same batch at float64, padded vs
    unpadded, same tokens and hidden states (the exactness the padding relies on);
  - `batched_step_<dtype>`: ms per decode step at 2/8/32/64/128 rows (CFG requests, 2 rows each;
    `--quick`: 2 and 8), eager and (on CUDA) graph. Each figure is a second pass over the same
    positions, so graph captures (one per rows bucket and span bucket) happen in the first.
Imports only torch and our chatterbox modules (the GPU machine has no chatterbox package; gpu_check
makes the package's model code importable first).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import torch

from stream.engines.chatterbox.batched_graphs import default_buckets
from stream.engines.chatterbox.batched_t3 import RowSettings, T3Batch, prefix_embeds_for
from stream.engines.chatterbox.loading import cast_t3

ROWS = (2, 8, 32, 64, 128)
QUICK_ROWS = (2, 8)
CHECK_STEPS = 32


def _settings(cfg: bool, steps: int) -> RowSettings:
    return RowSettings(temperature=0.8, top_p=1.0, min_p=0.05, repetition_penalty=1.2,
                       cfg_weight=0.5 if cfg else 0.0, max_new_tokens=steps)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _batch(t3, rows: int, positions: int, *, padded: bool = True, graphs: bool = False) -> T3Batch:
    return T3Batch(t3, rows=rows, max_positions=positions, device=t3.speech_emb.weight.device,
                   dtype=t3.speech_emb.weight.dtype, buckets=default_buckets(rows) if padded else None,
                   cuda_graphs=graphs)


def _open(batch: T3Batch, embeds: torch.Tensor, count: int, steps: int) -> list[int]:
    """`count` CFG requests of one prefix (different seeds): the first prefilled, the rest start from its
    KV (all but the last position) and prefill that position, as a voice-prefix cache would."""
    length = embeds.shape[1]
    groups = [batch.open(embeds, _settings(True, steps), seed=0)]
    batch.prefill(groups[0], 0, length)
    kv = batch.export_prefix(groups[0], length - 1)
    for seed in range(1, count):
        groups.append(batch.open(embeds, _settings(True, steps), seed=seed))
        batch.load_prefix(groups[-1], kv)
        batch.prefill(groups[-1], length - 1, length)
    return groups


def _ms_per_step(batch: T3Batch, embeds: torch.Tensor, rows: int, steps: int) -> float:
    """ms per step of a second pass of `steps` steps over rows // 2 CFG requests (the first warms)."""
    elapsed = 0.0
    for _ in range(2):
        groups = _open(batch, embeds, rows // 2, steps)
        _sync(batch.device)
        start = time.perf_counter()
        for _ in range(steps):
            batch.step(groups)
        _sync(batch.device)
        elapsed = time.perf_counter() - start
        for group in groups:
            batch.close(group)
    return round(1000 * elapsed / steps, 3)


def _mixed_run(batch: T3Batch, t3, prefix: torch.Tensor, text: torch.Tensor, steps: int) -> tuple[list, torch.Tensor]:
    """Tokens of every step and the final hidden states of 3 CFG requests and 1 without (7 rows)."""
    groups = []
    for seed, cfg in enumerate((True, False, True, True)):
        embeds = prefix_embeds_for(t3, prefix, text[:, : text.shape[1] - 2 * seed], cfg)
        groups.append(batch.open(embeds, _settings(cfg, steps), seed=seed))
        batch.prefill(groups[-1], 0, embeds.shape[1])
    tokens = torch.stack([batch.step(groups) for _ in range(steps)])
    return tokens.tolist(), torch.cat([batch.last_hidden(g) for g in groups]).float().cpu()


def _compare(make: Callable[[bool], T3Batch], t3, prefix, text, steps: int) -> dict:
    """`make(False)` vs `make(True)` on the mixed batch: same tokens, largest hidden-state difference."""
    base_tokens, base_hidden = _mixed_run(make(False), t3, prefix, text, steps)
    tokens, hidden = _mixed_run(make(True), t3, prefix, text, steps)
    return {"ok": tokens == base_tokens, "steps": steps, "rows": 7, "bucket": 8,
            "max_hidden_diff": float((hidden - base_hidden).abs().max())}


def batched_stages(report, t3, prefix: torch.Tensor, text: torch.Tensor, quick: bool, tokens: int) -> None:
    """Add the batched-step stages to gpu_check's `report` (its `stage(name, result)` writes the JSON)."""
    device = t3.speech_emb.weight.device
    dtype = t3.speech_emb.weight.dtype
    cuda = device.type == "cuda"
    steps = min(tokens, CHECK_STEPS)
    with torch.inference_mode():
        length = prefix_embeds_for(t3, prefix, text, True).shape[1]
        positions = length + max(tokens, steps) + 2
        if cuda:
            report.stage("batched_graph_equals_eager", {"dtype": str(dtype), **_compare(
                lambda graphs: _batch(t3, 8, positions, graphs=graphs), t3, prefix, text, steps)})
        else:
            exact = copy.deepcopy(t3)
            cast_t3(exact, torch.float64)
            report.stage("batched_padded_equals_unpadded_float64", _compare(
                lambda padded: _batch(exact, 8, positions, padded=padded), exact, prefix, text, steps))
            del exact
        embeds = prefix_embeds_for(t3, prefix, text, True)
        by_rows = {}
        for rows in QUICK_ROWS if quick else ROWS:
            by_rows[str(rows)] = {"eager_ms": _ms_per_step(_batch(t3, rows, positions), embeds, rows, tokens)}
            if cuda:
                by_rows[str(rows)]["graph_ms"] = _ms_per_step(_batch(t3, rows, positions, graphs=True),
                                                              embeds, rows, tokens)
            report.stage(f"batched_step_{str(dtype).removeprefix('torch.')}",
                         {"ms_per_step_by_rows": by_rows, "steps": tokens, "prefix_positions": length,
                          "rows_are": "CFG requests x 2", "includes_capture": False})
