"""CUDA graphs of the batched T3 decode step, one per (rows bucket, attention-span bucket).

Why: an eager step of the 30-layer T3 launches about a thousand small kernels, so on a GPU it is
bound by the host, not the device. A captured graph replays them all with one launch. A graph
fixes every shape and every address, so `T3Batch` (with `buckets`) pads each step's row list to a
bucket (a CFG request is 2 rows) with *inert* rows - a scratch pool row no group owns, whose
results are discarded - and packs the step's index tensors into one (5, bucket) tensor. Here each
(bucket, span) gets a fixed copy of that tensor: a replay copies the step's indices into it and
replays the graph. The attention span is bucketed already (`T3Batch.span_bucket`), so a phrase
crosses a few span buckets; each graph is captured on first use (warm-up and capture run inert
steps: every row is the scratch row, so no request's state moves) and all share one memory pool.
Capture needs CUDA; elsewhere `T3Batch` runs the same padded step eagerly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

LARGEST_BUCKET = 128   # 32 sessions x a prefetched phrase x CFG


def default_buckets(rows: int) -> tuple[int, ...]:
    """Powers of two from 2 up to the first that holds `rows` (a pool of 32 rows: 2, 4, 8, 16, 32)."""
    if rows < 1:
        raise ValueError(f"rows must be >= 1, got {rows}")
    buckets = [2]
    while buckets[-1] < rows:
        buckets.append(buckets[-1] * 2)
    return tuple(buckets)


def check_buckets(buckets: Sequence[int], rows: int) -> tuple[int, ...]:
    """`buckets` sorted; a clear error unless they are positive and the largest holds the pool's `rows`."""
    ordered = tuple(sorted(set(buckets)))
    if not ordered or ordered[0] < 1:
        raise ValueError(f"buckets must be positive row counts, got {tuple(buckets)}")
    if ordered[-1] < rows:
        raise ValueError(f"the largest bucket ({ordered[-1]}) must hold the pool's {rows} rows")
    return ordered


def bucket_for(count: int, buckets: Sequence[int]) -> int:
    """The smallest bucket that holds `count` rows (`buckets` sorted)."""
    for bucket in buckets:
        if bucket >= count:
            return bucket
    raise ValueError(f"{count} rows exceed the largest bucket ({buckets[-1]})")


class StepGraphs:
    """Captured decode steps keyed by (rows bucket, span); `step(packed, span)` is the eager step.

    `inert(bucket)` gives a packed index tensor whose rows are all the scratch row: warm-up and
    capture run on it, so capturing never changes a request's KV, history or counters.
    """

    def __init__(self, step: Callable[[torch.Tensor, int], torch.Tensor],
                 inert: Callable[[int], torch.Tensor], warmup: int = 2) -> None:
        self._step = step
        self._inert = inert
        self._warmup = warmup
        self._pool = torch.cuda.graph_pool_handle()
        self._graphs: dict[tuple[int, int], tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}

    @property
    def captured(self) -> list[tuple[int, int]]:
        """The (rows bucket, span) keys captured so far."""
        return sorted(self._graphs)

    def _capture(self, bucket: int, span: int) -> tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]:
        packed = self._inert(bucket)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(self._warmup):      # kernels chosen and the allocator settled before capture
                self._step(packed, span)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        # thread_local: other threads' CUDA work (a flush, the watermark stage) may go on during capture
        with torch.cuda.graph(graph, pool=self._pool, capture_error_mode="thread_local"):
            token = self._step(packed, span)
        return graph, packed, token

    def __call__(self, packed: torch.Tensor, span: int) -> torch.Tensor:
        """Replay the step for these indices; the (bucket,) tokens are a copy, safe past the next replay."""
        key = (packed.shape[1], span)
        if key not in self._graphs:
            self._graphs[key] = self._capture(*key)
        graph, inputs, token = self._graphs[key]
        inputs.copy_(packed)
        graph.replay()
        return token.clone()
