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

Shapes in `step` come from the host's own bookkeeping, never from device values: the rows of the
listed groups, and the attention span - the longest row's position rounded up to `span_bucket` -
which the host knows because it counts each group's prefill and steps. Attention reads each row's
first `span` pool positions, masked past the row's own position, so a short request does not pay
for the pool's full length. One scheduler thread owns a `T3Batch` (it is not thread-safe). The
pool holds 2 x layers x rows x max_positions x kv_heads x head_dim values (`kv_bytes`).

With `buckets` (opt-in) a step's rows are padded to a bucket with inert rows (one extra scratch
pool row that no group owns; their tokens are dropped), so its shapes depend only on (bucket,
span); with `cuda_graphs` on CUDA that padded step is captured once per (bucket, span) and
replayed (`batched_graphs.StepGraphs`). Padding never changes a real row's tokens or hidden states.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv

from stream.engines.chatterbox.batch_sampler import sample
from stream.engines.chatterbox.batched_graphs import StepGraphs, bucket_for, check_buckets
from stream.engines.chatterbox.static_decode import llama_prefix_embeds


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


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _validate(settings: RowSettings, rows: int) -> None:
    s = settings
    _check(s.temperature >= 0.0, f"temperature must be >= 0, got {s.temperature}")
    _check(0.0 < s.top_p <= 1.0, f"top_p must be in (0, 1], got {s.top_p}")
    _check(0.0 <= s.min_p <= 1.0, f"min_p must be in [0, 1], got {s.min_p}")
    _check(s.repetition_penalty > 0.0, f"repetition_penalty must be > 0, got {s.repetition_penalty}")
    _check(s.cfg_weight >= 0.0, f"cfg_weight must be >= 0, got {s.cfg_weight}")
    _check(s.max_new_tokens >= 1, f"max_new_tokens must be >= 1, got {s.max_new_tokens}")
    _check((s.cfg_weight > 0.0) == (rows == 2),
           f"prefix_embeds has {rows} row(s) but cfg_weight is {s.cfg_weight}: CFG needs 2 rows, no CFG 1")


def prefix_embeds_for(t3, conditioning_prefix: torch.Tensor, text_tokens: torch.Tensor, cfg: bool) -> torch.Tensor:
    """The (1 or 2, L, dim) prefill input as the package builds it: conditioning (with the emotion
    position), text (zeroed on the CFG row), the doubled start-of-speech embedding."""
    embeds, _ = llama_prefix_embeds(t3, conditioning_prefix, text_tokens, cfg)
    return embeds


@dataclass(frozen=True)
class PrefixKV:
    """Keys and values of a prefix's first `length` positions (one row; every row of a group gets the same).

    By causality a position's keys and values depend only on the positions before it, so the
    voice part of the prefix (speaker and perceiver positions - not the emotion position, which
    follows them and depends on the turn's exaggeration) gives the same KV for every turn of that
    voice: computed once (`export_prefix`), a later group starts from it (`load_prefix`) and
    prefills only the rest.
    """

    keys: tuple[torch.Tensor, ...]     # per layer (length, kv_heads, head_dim)
    values: tuple[torch.Tensor, ...]
    length: int


_PLANS_KEPT = 64   # batch compositions whose device indices are kept


@dataclass
class _Group:
    rows: tuple[int, ...]          # the cond row first, then the CFG row
    prefix: torch.Tensor           # (len(rows), L, dim) on the pool's device and dtype
    prefilled: int = 0             # prefix positions already in the pool
    steps: int = 0                 # decode steps run (one forward each)


@dataclass(frozen=True)
class _Plan:
    """Device index tensors of one step's groups, built on the host once per batch composition."""

    rows: torch.Tensor       # (N,) pool rows run this step
    cond: torch.Tensor       # (G,) each group's cond row
    cond_at: torch.Tensor    # (G,) where the cond row sits in `rows`
    uncond_at: torch.Tensor  # (G,) where the CFG row sits in `rows` (the cond row without CFG)
    group_of: torch.Tensor   # (N,) which group (index into the step's groups) each row belongs to
    packed: torch.Tensor | None = None   # padded steps: the five above as rows of one (5, bucket) tensor

    @classmethod
    def unpacked(cls, packed: torch.Tensor) -> _Plan:
        """The plan whose index tensors are the rows of one (5, bucket) tensor (a padded step's input)."""
        return cls(*packed.unbind(0), packed=packed)


class T3Batch:
    """A fixed pool of `rows` KV rows of `max_positions` positions each over one Llama T3."""

    def __init__(self, t3, *, rows: int, max_positions: int, device: torch.device | str,
                 dtype: torch.dtype, span_bucket: int = 64, buckets: Sequence[int] | None = None,
                 cuda_graphs: bool = False) -> None:
        """`buckets` (row counts) pads every step to a bucket with inert rows; `cuda_graphs` (needs
        `buckets`) replays a captured graph per (bucket, span) on CUDA and runs eagerly elsewhere."""
        _check(rows >= 1, f"rows must be >= 1, got {rows}")
        _check(buckets is not None or not cuda_graphs, "cuda_graphs needs buckets (a graph fixes the rows)")
        _check(max_positions >= 2, f"max_positions must be >= 2, got {max_positions}")
        weight_dtype = t3.speech_emb.weight.dtype
        _check(weight_dtype == dtype, f"dtype {dtype} differs from T3's weights ({weight_dtype}): cast T3 first")
        self.t3 = t3
        self.device = torch.device(device)
        self.dtype = dtype
        self.max_positions = max_positions
        self.span_bucket = span_bucket
        self.buckets = None if buckets is None else check_buckets(buckets, rows)
        self._rows = rows
        physical = rows if buckets is None else rows + 1     # + the scratch row inert padding runs on
        cfg = t3.cfg
        self._heads = cfg.num_attention_heads
        self._kv_heads = cfg.num_key_value_heads
        self._head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self._logit_dtype = torch.promote_types(dtype, torch.float32)
        self._stop = t3.hp.stop_speech_token
        self._start = t3.hp.start_speech_token
        self._speech_positions = t3.speech_pos_emb.emb.num_embeddings
        vocab = t3.hp.speech_tokens_dict_size
        dev = self.device

        def zeros(*shape: int, dtype: torch.dtype = self._logit_dtype) -> torch.Tensor:
            return torch.zeros(*shape, dtype=dtype, device=dev)

        # Zero-filled: a masked pool entry gets weight exactly 0, which only stays 0 if it is finite.
        pool_shape = (physical * max_positions, self._kv_heads, self._head_dim)
        self._keys = [zeros(*pool_shape, dtype=dtype) for _ in t3.tfmr.layers]
        self._values = [zeros(*pool_shape, dtype=dtype) for _ in t3.tfmr.layers]
        self._hidden = zeros(physical, cfg.hidden_size, dtype=dtype)
        self._length = zeros(physical, dtype=torch.long)       # positions written = where the next forward writes
        self._generated = zeros(physical, dtype=torch.long)    # tokens sampled = the sampler's step index
        self._stopped = zeros(physical, dtype=torch.bool)
        self._seen = zeros(physical, vocab, dtype=torch.bool)  # repetition-penalty history (cond rows)
        self._temperature, self._top_p, self._min_p = zeros(physical), zeros(physical), zeros(physical)
        self._penalty, self._cfg_weight = zeros(physical), zeros(physical)
        self._cap = zeros(physical, dtype=torch.long)
        self._seed = zeros(physical, dtype=torch.long)
        # The scratch row (if any) has a token cap of 0 (it always gets the stop token) and neutral settings,
        # so its values stay finite.
        self._scratch = rows
        if physical > rows:
            self._temperature[rows], self._top_p[rows], self._penalty[rows] = 1.0, 1.0, 1.0
        self._free = list(range(rows))
        self._groups: dict[int, _Group] = {}
        self._next_id = 0
        self._plans: dict[tuple[int, ...], _Plan] = {}
        self._graphs = (StepGraphs(self._run_packed, self._inert)
                        if cuda_graphs and self.device.type == "cuda" else None)

    @property
    def rows(self) -> int:
        """Rows in the pool (the scratch row of padded steps not counted)."""
        return self._rows

    @property
    def free_rows(self) -> int:
        """Rows not held by an open group."""
        return len(self._free)

    @property
    def kv_bytes(self) -> int:
        """Bytes the KV pool holds on the device (what sizes `rows` x `max_positions` to a memory budget)."""
        return sum(t.numel() * t.element_size() for t in self._keys + self._values)

    @property
    def row_budget(self) -> int:
        """Rows a scheduler may hand out (the pool size): a request with CFG takes 2, one without 1."""
        return self.rows

    def open(self, prefix_embeds: torch.Tensor, settings: RowSettings, seed: int) -> int:
        """Allocate a group (2 rows when `prefix_embeds` has 2 rows, i.e. CFG, else 1) and return its id.

        Raises `NoFreeRows` when the pool cannot hold it and `ValueError` when the prefix plus the
        token cap does not fit in `max_positions` or the settings are out of range. Nothing runs on
        the device until `prefill`.
        """
        _check(prefix_embeds.dim() == 3 and prefix_embeds.shape[0] in (1, 2)
               and prefix_embeds.shape[2] == self._hidden.shape[1],
               f"prefix_embeds must be (1 or 2, L, {self._hidden.shape[1]}), got {tuple(prefix_embeds.shape)}")
        count, length = prefix_embeds.shape[0], prefix_embeds.shape[1]
        _validate(settings, count)
        _check(length >= 1, "prefix_embeds has no positions")
        # prefix + one forward per sampled token (the last one is never read)
        _check(length + settings.max_new_tokens + 1 <= self.max_positions,
               f"prefix ({length}) + max_new_tokens ({settings.max_new_tokens}) + 1 exceeds "
               f"max_positions ({self.max_positions})")
        _check(settings.max_new_tokens + 1 < self._speech_positions,
               f"max_new_tokens ({settings.max_new_tokens}) exceeds T3's speech positions ({self._speech_positions})")
        _check(-(2**63) <= seed < 2**63, f"seed must fit in 64 signed bits, got {seed}")
        if count > len(self._free):
            raise NoFreeRows(f"the group needs {count} row(s), {len(self._free)} of {self.rows} free")
        rows, self._free = tuple(self._free[:count]), self._free[count:]
        values = ((self._temperature, settings.temperature), (self._top_p, settings.top_p),
                  (self._min_p, settings.min_p), (self._penalty, settings.repetition_penalty),
                  (self._cfg_weight, settings.cfg_weight), (self._cap, settings.max_new_tokens), (self._seed, seed))
        for row in rows:
            for tensor, value in values:
                tensor[row] = value
        group = self._next_id
        self._next_id += 1
        self._groups[group] = _Group(rows, prefix_embeds.to(self.device, self.dtype))
        return group

    def _group(self, group: int) -> _Group:
        if group not in self._groups:
            raise KeyError(f"group {group} is not open")
        return self._groups[group]

    def prefix_length(self, group: int) -> int:
        """Positions in the group's prefix (the `end` of its last prefill chunk)."""
        return self._group(group).prefix.shape[1]

    def last_hidden(self, group: int) -> torch.Tensor:
        """The group's last hidden states (rows, dim): what its next token is sampled from (for checks)."""
        return self._hidden[list(self._group(group).rows)]

    def prefill(self, group: int, start: int, end: int) -> None:
        """Run positions [start, end) of the group's prefix into its KV rows.

        Chunks must follow each other (`start` is where the previous chunk ended, 0 first). The
        chunk that reaches the prefix's end leaves the group ready to `step`: its last hidden state
        is the one the first speech token is sampled from.
        """
        g = self._group(group)
        length = g.prefix.shape[1]
        _check(start == g.prefilled, f"prefill of group {group} must start at {g.prefilled}, got {start}")
        _check(start < end <= length, f"prefill end must be in ({start}, {length}], got {end}")
        with torch.inference_mode():
            rows = self._index(list(g.rows))
            positions = torch.arange(start, end, device=self.device).expand(len(g.rows), -1)
            hidden = self._forward(g.prefix[:, start:end], rows, positions, self._span(end))
            if end == length:
                self._hidden.index_copy_(0, rows, hidden[:, -1])
                self._length.index_fill_(0, rows, length)
                self._generated.index_fill_(0, rows, 0)
                self._stopped.index_fill_(0, rows, False)
                self._seen.index_fill_(0, rows, False)
                self._seen[:, self._start].index_fill_(0, rows, True)   # the package's history starts at BOS
        g.prefilled = end

    def export_prefix(self, group: int, length: int) -> PrefixKV:
        """A copy of the group's first `length` prefix positions' KV (they must be prefilled already)."""
        g = self._group(group)
        _check(0 < length <= g.prefilled, f"length must be in (0, {g.prefilled}] (prefilled positions), got {length}")
        row = g.rows[0]

        def part(pool: torch.Tensor) -> torch.Tensor:
            return pool.view(-1, self.max_positions, *pool.shape[1:])[row, :length].clone()

        with torch.inference_mode():
            return PrefixKV(tuple(map(part, self._keys)), tuple(map(part, self._values)), length)

    def load_prefix(self, group: int, kv: PrefixKV) -> None:
        """Start a fresh group from `kv` instead of prefilling its first `kv.length` positions.

        The caller vouches that the group's prefix starts with the positions `kv` was computed from
        (the same voice, T3 and dtype); the next `prefill` chunk starts at `kv.length`.
        """
        g = self._group(group)
        _check(g.prefilled == 0, f"load_prefix needs a fresh group; group {group} has {g.prefilled} positions")
        _check(0 < kv.length < g.prefix.shape[1],
               f"kv.length must be in (0, {g.prefix.shape[1]}) (the prefix's length), got {kv.length}")
        _check(len(kv.keys) == len(self._keys) and kv.keys[0].shape[1:] == self._keys[0].shape[1:],
               "kv does not come from this T3 (layers or heads differ)")
        with torch.inference_mode():
            slots = (self._index(list(g.rows))[:, None] * self.max_positions
                     + torch.arange(kv.length, device=self.device)).reshape(-1)
            for pools, parts in ((self._keys, kv.keys), (self._values, kv.values)):
                for pool, part in zip(pools, parts, strict=True):
                    pool.index_copy_(0, slots, part.to(pool).repeat(len(g.rows), 1, 1))
        g.prefilled = kv.length

    def _index(self, values: list[int] | list[list[int]]) -> torch.Tensor:
        """A host-built index on the device: pinned and non-blocking on CUDA, so no stream sync."""
        index = torch.tensor(values, dtype=torch.long)
        if self.device.type == "cuda":
            return index.pin_memory().to(self.device, non_blocking=True)
        return index.to(self.device)

    def _span(self, positions: int) -> int:
        """Pool positions attention reads: the longest row's, rounded up to a bucket (a host-known shape)."""
        return min(self.max_positions, -(-positions // self.span_bucket) * self.span_bucket)

    def _plan(self, groups: tuple[int, ...]) -> _Plan:
        plan = self._plans.get(groups)
        if plan is None:
            rows, cond_at, uncond_at, group_of = [], [], [], []
            for i, group in enumerate(groups):
                members = self._groups[group].rows
                cond_at.append(len(rows))
                uncond_at.append(len(rows) + len(members) - 1)
                rows.extend(members)
                group_of.extend([i] * len(members))
            cond = [rows[i] for i in cond_at]
            if self.buckets is None:
                plan = _Plan(*(self._index(v) for v in (rows, cond, cond_at, uncond_at, group_of)))
            else:
                plan = _Plan.unpacked(self._index(self._padded(rows, cond, cond_at, uncond_at, group_of)))
            if len(self._plans) >= _PLANS_KEPT:     # paused subsets must not grow the cache without bound
                self._plans.clear()
            self._plans[groups] = plan
        return plan

    def _padded(self, rows: list[int], cond: list[int], cond_at: list[int], uncond_at: list[int],
                group_of: list[int]) -> list[list[int]]:
        """The plan's lists padded to the rows bucket: inert rows (the scratch row) and inert groups
        (bucket - groups of them; one group per row at most) whose cond row is the scratch row. Inert
        rows belong to the first inert group; an inert group reads the logits of the first inert row
        (or of row 0 when the real rows fill the bucket: reading is harmless, every write of an inert
        group goes to the scratch row)."""
        bucket = bucket_for(len(rows), self.buckets)
        inert_rows, inert_groups = bucket - len(rows), bucket - len(cond)
        first_inert = len(rows) if inert_rows else 0
        return [rows + [self._scratch] * inert_rows, cond + [self._scratch] * inert_groups,
                cond_at + [first_inert] * inert_groups, uncond_at + [first_inert] * inert_groups,
                group_of + [len(cond)] * inert_rows]

    def _inert(self, bucket: int) -> torch.Tensor:
        """A packed plan of `bucket` inert rows and groups (what graph warm-up and capture run on)."""
        scratch = [self._scratch] * bucket
        return self._index([scratch, scratch, [0] * bucket, [0] * bucket, [0] * bucket])

    def step(self, groups: Sequence[int]) -> torch.Tensor:
        """One batched decode step: sample each group's next token, then run that token's forward.

        Returns a (len(groups),) int64 device tensor of the sampled tokens, in `groups` order. A group
        whose token cap is reached (or which has sampled the stop token) gets the stop token: the
        caller closes it. No host sync; shapes depend only on the groups' rows and the attention span
        bucket, both known on the host (with `buckets`: the rows bucket).
        """
        groups = tuple(groups)
        _check(len(set(groups)) == len(groups), f"a group is listed twice in {groups}")
        for group in groups:
            g = self._group(group)
            _check(g.prefilled == g.prefix.shape[1], f"group {group} is not prefilled ({g.prefilled} of "
                   f"{g.prefix.shape[1]} positions)")
        if not groups:
            return torch.empty(0, dtype=torch.long, device=self.device)
        plan = self._plan(groups)
        longest = max(min(self.max_positions, self._groups[gr].prefix.shape[1] + self._groups[gr].steps + 1)
                      for gr in groups)
        span = self._span(longest)
        with torch.inference_mode():
            if self._graphs is not None:
                token = self._graphs(plan.packed, span)
            else:
                token = self._decode(plan, span)
        for group in groups:
            self._groups[group].steps += 1
        return token[:len(groups)]

    def _run_packed(self, packed: torch.Tensor, span: int) -> torch.Tensor:
        return self._decode(_Plan.unpacked(packed), span)

    def _decode(self, plan: _Plan, span: int) -> torch.Tensor:
        """The step on device tensors only (what a CUDA graph captures): sample, embed, forward, update."""
        token = self._sample(plan)
        t3 = self.t3
        step = self._generated.index_select(0, plan.cond)
        speech_pos = (step + 1).clamp(max=self._speech_positions - 1)
        embeds = (t3.speech_emb(token) + t3.speech_pos_emb.emb(speech_pos)).to(self.dtype)
        positions = self._length.index_select(0, plan.rows).clamp(max=self.max_positions - 1)
        hidden = self._forward(embeds.index_select(0, plan.group_of)[:, None], plan.rows, positions[:, None], span)
        self._hidden.index_copy_(0, plan.rows, hidden[:, -1])
        self._length.index_copy_(0, plan.rows, positions + 1)
        self._generated.index_copy_(0, plan.rows, (step + 1).index_select(0, plan.group_of))
        return token

    def _sample(self, plan: _Plan) -> torch.Tensor:
        """The package's logits processing with per-row values, then the counter-based draw."""
        logits = self.t3.speech_head(self._hidden.index_select(0, plan.rows)).to(self._logit_dtype)
        cond, uncond = logits.index_select(0, plan.cond_at), logits.index_select(0, plan.uncond_at)
        logits = cond + self._cfg_weight.index_select(0, plan.cond)[:, None] * (cond - uncond)
        penalty = self._penalty.index_select(0, plan.cond)[:, None]
        penalized = torch.where(logits < 0, logits * penalty, logits / penalty)
        logits = torch.where(self._seen.index_select(0, plan.cond), penalized, logits)
        step = self._generated.index_select(0, plan.cond)
        token = sample(logits, temperature=self._temperature.index_select(0, plan.cond),
                       top_p=self._top_p.index_select(0, plan.cond), min_p=self._min_p.index_select(0, plan.cond),
                       seed=self._seed.index_select(0, plan.cond), step=step)
        done = self._stopped.index_select(0, plan.cond) | (step >= self._cap.index_select(0, plan.cond))
        token = token.masked_fill(done, self._stop)
        self._stopped.index_copy_(0, plan.rows, (done | (token == self._stop)).index_select(0, plan.group_of))
        self._seen.index_put_((plan.cond, token), torch.ones_like(token, dtype=torch.bool))
        return token

    def _forward(self, x: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor, span: int) -> torch.Tensor:
        """The Llama layers over (N, T, dim) inputs of pool `rows` at (N, T) `positions`: keys and values
        written into the pool in place, attention over each row's first `span` pool positions up to
        its own position. Returns the final-norm hidden states (N, T, dim)."""
        tfmr = self.t3.tfmr
        count, length = positions.shape
        heads, kv_heads, head_dim = self._heads, self._kv_heads, self._head_dim
        cos, sin = tfmr.rotary_emb(x, positions)
        visible = torch.arange(span, device=self.device)[None, None, :] <= positions[:, :, None]
        slots = (rows[:, None] * self.max_positions + positions).reshape(-1)
        for layer, keys, values in zip(tfmr.layers, self._keys, self._values, strict=True):
            attn = layer.self_attn
            h = layer.input_layernorm(x)
            q = attn.q_proj(h).view(count, length, heads, head_dim).transpose(1, 2)
            k = attn.k_proj(h).view(count, length, kv_heads, head_dim).transpose(1, 2)
            v = attn.v_proj(h).view(count, length, kv_heads, head_dim)
            q, k = apply_rotary_pos_emb(q, k, cos, sin)
            keys.index_copy_(0, slots, k.transpose(1, 2).reshape(-1, kv_heads, head_dim))
            values.index_copy_(0, slots, v.reshape(-1, kv_heads, head_dim))
            pool_k = keys.view(-1, self.max_positions, kv_heads, head_dim)[:, :span].index_select(0, rows)
            pool_v = values.view(-1, self.max_positions, kv_heads, head_dim)[:, :span].index_select(0, rows)
            groups = heads // kv_heads
            out = F.scaled_dot_product_attention(
                q, repeat_kv(pool_k.transpose(1, 2), groups), repeat_kv(pool_v.transpose(1, 2), groups),
                attn_mask=visible[:, None], scale=attn.scaling)
            x = x + attn.o_proj(out.transpose(1, 2).reshape(count, length, heads * head_dim))
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        return tfmr.norm(x)

    def close(self, group: int) -> None:
        """Free the group's rows at once; a later `open` may reuse them."""
        g = self._groups.pop(group, None)
        if g is None:
            raise KeyError(f"group {group} is not open")
        self._free = sorted(self._free + list(g.rows))
        self._plans = {key: plan for key, plan in self._plans.items() if group not in key}
