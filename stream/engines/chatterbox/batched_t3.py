"""The batched Chatterbox (Llama) T3 runner: a fixed KV pool, per-row positions, one decode step for all.

`static_decode.StaticLlamaDecoder` runs one phrase over transformers' `StaticCache`, whose rows
all sit at the same position. Continuous batching needs rows that join and leave at any step,
so this module runs its own forward over the package's Llama weights (the layers' projections,
RMSNorms and MLP, the package's rotary embedding with per-row position ids, and
`scaled_dot_product_attention` with a per-row length mask) on a KV pool of fixed rows x
positions. A request is a *group* of rows: two with CFG (the cond row, and the row with zeroed
text the package builds), one without. `open` takes rows, `prefill` runs the group's prefix in
chunks (so a long prefix never stalls the decoding rows: the scheduler interleaves chunks with
steps), `step` samples every listed group's next token and runs its forward in one batch, and
`close` frees the rows at once.

Per-request settings (temperature, top_p, min_p, repetition penalty with a per-row presence
mask, cfg_weight, token cap) live in per-row tensors, so a step never branches on a value and a
captured graph never needs another capture for other settings; exaggeration only changes the
prefix. Sampling is `batch_sampler` (counter-based), so a request's tokens do not depend on its
neighbours in the batch. `step` writes keys/values in place at each row's position with index
ops and never reads a device value on the host.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


class NoFreeRows(RuntimeError):
    """`open` found fewer free rows in the KV pool than the group needs (2 with CFG, else 1)."""


@dataclass(frozen=True)
class RowSettings:
    """One request's generation settings; they become per-row tensor values, never Python branches."""

    temperature: float
    top_p: float
    min_p: float
    repetition_penalty: float
    cfg_weight: float
    max_new_tokens: int


def prefix_embeds_for(t3, conditioning_prefix: torch.Tensor, text_tokens: torch.Tensor, cfg: bool) -> torch.Tensor:
    """The (1 or 2, L, dim) prefill input as the package builds it: conditioning (with the emotion
    position), text (zeroed on the CFG row), the doubled start-of-speech embedding."""
    raise NotImplementedError


class T3Batch:
    """A fixed pool of `rows` KV rows of `max_positions` positions each over one Llama T3."""

    def __init__(self, t3, *, rows: int, max_positions: int, device: torch.device | str,
                 dtype: torch.dtype) -> None:
        raise NotImplementedError

    @property
    def rows(self) -> int:
        """Rows in the pool."""
        raise NotImplementedError

    @property
    def free_rows(self) -> int:
        """Rows not held by an open group."""
        raise NotImplementedError

    @property
    def row_budget(self) -> int:
        """Rows a scheduler may hand out (the pool size): a request with CFG takes 2, one without 1."""
        raise NotImplementedError

    def open(self, prefix_embeds: torch.Tensor, settings: RowSettings, seed: int) -> int:
        """Allocate a group (2 rows when `prefix_embeds` has 2 rows, i.e. CFG, else 1) and return its id.

        Raises `NoFreeRows` when the pool cannot hold it and `ValueError` when the prefix plus the
        token cap does not fit in `max_positions` or the settings are out of range. Nothing runs on
        the device until `prefill`.
        """
        raise NotImplementedError

    def prefix_length(self, group: int) -> int:
        """Positions in the group's prefix (the `end` of its last prefill chunk)."""
        raise NotImplementedError

    def prefill(self, group: int, start: int, end: int) -> None:
        """Run positions [start, end) of the group's prefix into its KV rows.

        Chunks must follow each other (`start` is where the previous chunk ended, 0 first). The
        chunk that reaches the prefix's end leaves the group ready to `step`: its last hidden state
        is the one the first speech token is sampled from.
        """
        raise NotImplementedError

    def step(self, groups: Sequence[int]) -> torch.Tensor:
        """One batched decode step: sample each group's next token, then run that token's forward.

        Returns a (len(groups),) int64 device tensor of the sampled tokens, in `groups` order. A group
        whose token cap is reached (or which has sampled the stop token) gets the stop token. No
        host sync; shapes depend only on the number of groups and rows.
        """
        raise NotImplementedError

    def close(self, group: int) -> None:
        """Free the group's rows at once; a later `open` may reuse them."""
        raise NotImplementedError
