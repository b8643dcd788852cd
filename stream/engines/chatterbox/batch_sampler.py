"""A counter-based, batch-invariant sampler for the batched T3 step.

Why: with continuous batching a request shares its decode step with whichever requests happen to
be active. A stateful generator (`torch.multinomial` on a `torch.Generator`) hands out draws in
the order rows ask for them, so a request's tokens would depend on its neighbours. Here each
row's randomness is a pure function of (seed, step index, vocab index): an integer hash in int64
tensor ops gives one uniform per vocabulary entry, Gumbel noise turns it into a sample,
`argmax(filtered logits / temperature + Gumbel)` (the Gumbel-max trick draws from the softmax of
the filtered logits). Every operation is row-wise, so a row's token never depends on which other
rows share the batch, and a step needs no host sync and no generator state.

A seed reproduces a request's tokens (and so its audio) only within one sampler: this one and the
package-equal sampler (`torch.multinomial`, `--sampler package`) draw differently from the same
seed.
"""

from __future__ import annotations

import torch


def uniforms(seed: torch.Tensor, step: torch.Tensor, vocab: int) -> torch.Tensor:
    """(rows, vocab) float64 uniforms in (0, 1), a pure function of each row's (seed, step) and the vocab index.

    `seed` and `step` are (rows,) int64 tensors.
    """
    raise NotImplementedError


def sample(logits: torch.Tensor, *, temperature: torch.Tensor, top_p: torch.Tensor, min_p: torch.Tensor,
           seed: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """One token per row from (rows, vocab) logits with per-row settings, all (rows,) tensors.

    The package's order: temperature, then min_p, then top_p, then a draw; greedy (argmax of the
    logits) where temperature is 0. Returns a (rows,) int64 tensor on the logits' device.
    """
    raise NotImplementedError
