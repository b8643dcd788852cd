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

_MASK32 = 0xFFFFFFFF
# Keys that separate the three hashed inputs (the 32-bit golden ratio and two odd constants).
_K_SEED, _K_STEP, _K_VOCAB = 0x9E3779B9, 0x85EBCA6B, 0xC2B2AE35


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """x * c mod 2**32 for x < 2**32, split in 16-bit halves so no int64 product overflows."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & _MASK32


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer finalizer (xorshift-multiply, the "lowbias32" constants): every input bit
    flips about half the output bits; a bijection on [0, 2**32)."""
    x = x & _MASK32
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def uniforms(seed: torch.Tensor, step: torch.Tensor, vocab: int) -> torch.Tensor:
    """(rows, vocab) float64 uniforms in (0, 1), a pure function of each row's (seed, step) and the vocab index.

    `seed` and `step` are (rows,) int64 tensors (a seed's 64 bits all count).
    """
    seed = seed.to(torch.int64)
    seed_lo, seed_hi = seed & _MASK32, (seed >> 32) & _MASK32
    key = _mix32(seed_lo ^ _mix32(seed_hi ^ _K_SEED))
    key = _mix32(key ^ _mix32((step.to(torch.int64) & _MASK32) ^ _K_STEP))
    index = torch.arange(vocab, dtype=torch.int64, device=seed.device)
    bits = _mix32(key[:, None] ^ _mix32(index ^ _K_VOCAB)[None, :])
    return (bits.to(torch.float64) + 0.5) / 2.0**32


def _min_p(logits: torch.Tensor, min_p: torch.Tensor) -> torch.Tensor:
    """Drop tokens whose probability is below min_p x the top probability (`MinPLogitsWarper`)."""
    probs = torch.softmax(logits, dim=-1)
    threshold = min_p[:, None] * probs.amax(dim=-1, keepdim=True)
    return logits.masked_fill(probs < threshold, -float("inf"))


def _top_p(logits: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose mass reaches top_p (`TopPLogitsWarper`);
    the most likely token always stays."""
    ordered, order = torch.sort(logits, dim=-1, descending=False)
    cumulative = torch.softmax(ordered, dim=-1).cumsum(dim=-1)
    drop = cumulative <= (1.0 - top_p)[:, None]
    drop[:, -1] = False
    return logits.masked_fill(drop.scatter(1, order, drop), -float("inf"))


def sample(logits: torch.Tensor, *, temperature: torch.Tensor, top_p: torch.Tensor, min_p: torch.Tensor,
           seed: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """One token per row from (rows, vocab) logits with per-row settings, all (rows,) tensors.

    The package's order: temperature, then min_p, then top_p, then a draw; greedy (argmax of the
    logits) where temperature is 0. Returns a (rows,) int64 tensor on the logits' device.
    """
    dtype = logits.dtype
    greedy = temperature <= 0.0
    scale = torch.where(greedy, torch.ones_like(temperature), temperature).to(dtype)
    filtered = _top_p(_min_p(logits / scale[:, None], min_p.to(dtype)), top_p.to(dtype))
    gumbel = -torch.log(-torch.log(uniforms(seed, step, logits.shape[-1])))
    drawn = (filtered.to(torch.float64) + gumbel).argmax(dim=-1)
    return torch.where(greedy, logits.argmax(dim=-1), drawn)
