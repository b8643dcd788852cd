"""A named analytic cost model of one H100 (SXM, 80 GB) running Chatterbox's GPU pieces.

**Analytic, not measured.** No GPU has timed these pieces yet; every duration here is computed from
the device's datasheet numbers, the model's real sizes and kernel counts, and a few stated
assumptions. `simulate_gpu.py` drives the batching policy with it; its sensitivity table shows how
the conclusions move when each parameter is halved or doubled.

Each piece costs, conservatively, the sum of three floors (a kernel cannot start before it is
launched, and HBM traffic and math overlap only partly, so the sum is an upper-side estimate):

    kernels x per-kernel floor  +  bytes moved / (HBM bandwidth x efficiency)  +  FLOPs / (bf16 peak x efficiency)

- **T3 decode step** (one batched step over `rows` rows; a session with CFG is 2 rows): its kernels
  replayed from a CUDA graph (the step's kernel count does not depend on the rows: per-row settings
  are tensors); bytes: the bf16 weights once per step plus every row's KV cache read once;
  FLOPs: 2 x parameters per row plus attention over the row's positions.
- **T3 prefill** (a chunk of prefix positions, run eagerly: its shapes vary): eager op floor,
  the weights once, 2 x parameters per position per row.
- **S3Gen flush** of a batch of requests padded to one frame bucket: the flow encoder once, the
  estimator `cfm_steps` times over the CFG pair (batch 2 per request), HiFT over the chunk's new
  frames; kernels from CUDA graphs per bucket (issue 12's plan; `flush_graphs=False` launches them
  eagerly, as the engine still does); FLOPs counted from the real
  modules at several lengths and fitted (quadratic: attention over the prompt).

The watermark runs off the GPU thread (issue 12) and costs the GPU nothing here.

Counted numbers come from `python -m benchmarks.cost_counts` (chatterbox-tts 0.1.7, torch 2.6,
CPU): the counts do not depend on the device. Datasheet: NVIDIA H100 Tensor Core GPU datasheet
(SXM5: 3.35 TB/s HBM3, 989.4 TFLOP/s dense bf16 without sparsity).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace

__all__ = ["H100", "PARAMETERS", "CostModel", "FlushShape"]

MODEL_NAME = "H100-analytic-v1"
LABEL = "simulated: analytic cost model, not measured"


@dataclass(frozen=True)
class CostModel:
    """Every parameter of the model; `PARAMETERS` names each one's source. Seconds, bytes, FLOPs."""

    # --- device: NVIDIA H100 SXM5 datasheet, and stated assumptions ---
    hbm_bytes_per_s: float = 3.35e12
    bf16_flops_per_s: float = 989.4e12
    bandwidth_efficiency: float = 0.8
    compute_efficiency: float = 0.5
    graph_kernel_s: float = 2.0e-6
    eager_op_s: float = 10.0e-6
    host_step_s: float = 0.3e-3
    # --- T3: the package's Llama_520M config and counted kernels ---
    t3_layers: int = 30
    t3_hidden: int = 1024
    t3_intermediate: int = 4096
    t3_speech_vocab: int = 8194
    t3_step_kernels_fixed: int = 63
    t3_step_kernels_per_layer: int = 40
    t3_prefill_ops_fixed: int = 33
    t3_prefill_ops_per_layer: int = 40
    bytes_per_value: int = 2
    # --- S3Gen: counted from the package's modules ---
    encoder_params: int = 37_831_168
    estimator_params: int = 71_302_480
    hift_params: int = 20_806_557
    encoder_kernels: int = 403
    estimator_kernels: int = 1_376
    hift_kernels: int = 804
    encoder_flops: tuple[float, float, float] = (-5.24e6, 5.662e7, 2.253e4)
    estimator_flops: tuple[float, float, float] = (2.019e7, 2.6432e8, 2.29376e5)
    hift_flops_per_frame: float = 6.123e8
    cfm_steps: int = 10
    flush_bucket_frames: int = 32
    flush_graphs: bool = True         # False: the flush's kernels launched eagerly (`eager_op_s` each)

    # ----- T3 -----------------------------------------------------------------------------------
    @property
    def t3_layer_params(self) -> int:
        """Attention (q, k, v, o: 4 x hidden^2, 16 heads of 64, no GQA) + SwiGLU MLP (3 x hidden x intermediate)."""
        return 4 * self.t3_hidden ** 2 + 3 * self.t3_hidden * self.t3_intermediate

    @property
    def t3_params(self) -> int:
        """Parameters read by every decode step: the layers and the speech head."""
        return self.t3_layers * self.t3_layer_params + self.t3_hidden * self.t3_speech_vocab

    @property
    def kv_bytes_per_position(self) -> int:
        """Keys and values of one position of one row, all layers."""
        return 2 * self.t3_layers * self.t3_hidden * self.bytes_per_value

    def _memory_s(self, nbytes: float) -> float:
        return nbytes / (self.hbm_bytes_per_s * self.bandwidth_efficiency)

    def _compute_s(self, flops: float) -> float:
        return flops / (self.bf16_flops_per_s * self.compute_efficiency)

    def t3_step_s(self, rows: int, kv_positions: int) -> float:
        """One batched decode step over `rows` rows whose caches hold `kv_positions` positions in all."""
        if rows <= 0:
            return 0.0
        kernels = self.t3_step_kernels_fixed + self.t3_layers * self.t3_step_kernels_per_layer
        nbytes = self.t3_params * self.bytes_per_value + kv_positions * self.kv_bytes_per_position
        flops = rows * 2 * self.t3_params + 4 * self.t3_layers * self.t3_hidden * kv_positions
        return kernels * self.graph_kernel_s + self._memory_s(nbytes) + self._compute_s(flops)

    def t3_prefill_s(self, positions: int, chunks: int = 1) -> float:
        """Prefill of `positions` prefix positions in all (rows counted: CFG doubles), in `chunks` eager calls."""
        if positions <= 0:
            return 0.0
        ops = chunks * (self.t3_prefill_ops_fixed + self.t3_layers * self.t3_prefill_ops_per_layer)
        nbytes = chunks * self.t3_params * self.bytes_per_value + positions * self.kv_bytes_per_position
        flops = positions * 2 * self.t3_layers * self.t3_layer_params
        return ops * self.eager_op_s + self._memory_s(nbytes) + self._compute_s(flops)

    # ----- S3Gen ----------------------------------------------------------------------------------
    def bucket(self, frames: int) -> int:
        """Flushes are padded to a multiple of `flush_bucket_frames` (one graph per bucket)."""
        return self.flush_bucket_frames * math.ceil(frames / self.flush_bucket_frames)

    def flush_s(self, shapes: Sequence[FlushShape]) -> float:
        """One batched flush: every request padded to the longest bucket, encoder + `cfm_steps`
        estimator passes (CFG pair) + HiFT over each request's new frames."""
        if not shapes:
            return 0.0
        batch = len(shapes)
        frames = self.bucket(max(s.flow_frames for s in shapes))
        kernel_s = self.graph_kernel_s if self.flush_graphs else self.eager_op_s
        hift_frames = sum(s.new_frames for s in shapes)

        def poly(c: tuple[float, float, float], f: float) -> float:
            return c[0] + c[1] * f + c[2] * f * f

        encoder = (self.encoder_kernels * kernel_s
                   + self._memory_s(self.encoder_params * self.bytes_per_value)
                   + self._compute_s(batch * poly(self.encoder_flops, frames)))
        estimator_pass = (self.estimator_kernels * kernel_s
                          + self._memory_s(self.estimator_params * self.bytes_per_value)
                          + self._compute_s(batch * poly(self.estimator_flops, frames)))
        hift = (self.hift_kernels * kernel_s
                + self._memory_s(self.hift_params * self.bytes_per_value)
                + self._compute_s(hift_frames * self.hift_flops_per_frame))
        return encoder + self.cfm_steps * estimator_pass + hift

    # ----- calibration ----------------------------------------------------------------------------
    def fitted_to_gpu_check(self, report: dict) -> CostModel:
        """This model with its two per-kernel floors solved from a `gpu_check` report of a real GPU:
        `graph_kernel_s` from the bf16 CUDA-graph step, `eager_op_s` from the bf16 eager step (the
        time left after this model's bytes and FLOPs, per kernel). Bandwidth and peak stay the
        datasheet's: the report's device (an H200, say) is named in the label by the caller."""
        if "reduced" in str(report.get("t3", "")):
            raise ValueError("gpu_check: a --quick run (reduced T3) cannot calibrate the full-size model")
        stages = report.get("stages", {})
        # gpu_check's inputs: a 34-position conditioning prefix, 32 text tokens + 2 start tokens, CFG rows
        positions = 2 * (34 + 34 + report.get("tokens", 100) / 2)
        kernels = self.t3_step_kernels_fixed + self.t3_layers * self.t3_step_kernels_per_layer
        bare = replace(self, graph_kernel_s=0.0).t3_step_s(2, round(positions))

        def per_kernel(stage: str) -> float:
            try:
                step_s = float(stages[stage]["ms_per_step"]) / 1000
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"gpu_check: stage {stage!r} with ms_per_step is missing") from None
            return max(0.0, step_s - bare) / kernels

        return replace(self, graph_kernel_s=per_kernel("original_bf16_graph"),
                       eager_op_s=per_kernel("original_bf16_eager"))

    # ----- the sensitivity sweep ------------------------------------------------------------------
    def scaled(self, name: str, factor: float) -> CostModel:
        """This model with one parameter multiplied by `factor` (integers rounded, at least 1)."""
        value = getattr(self, name)
        if isinstance(value, tuple):
            return replace(self, **{name: tuple(v * factor for v in value)})
        if isinstance(value, int):
            return replace(self, **{name: max(1, round(value * factor))})
        return replace(self, **{name: value * factor})

    def as_dict(self) -> dict:
        return {"name": MODEL_NAME, "label": LABEL, **{k: (list(v) if isinstance(v, tuple) else v)
                                                       for k, v in asdict(self).items()}}


@dataclass(frozen=True)
class FlushShape:
    """One request's part of a flush: the frames its flow pass covers (prompt + left context + new
    tokens + lookahead, x2 frames per token) and the new frames HiFT vocodes."""

    flow_frames: int
    new_frames: int


_COUNTS = "counted by `python -m benchmarks.cost_counts` on the package's module"
PARAMETERS: dict[str, str] = {
    "hbm_bytes_per_s": "H100 SXM5 datasheet: HBM3 3.35 TB/s",
    "bf16_flops_per_s": "H100 SXM5 datasheet: 989.4 TFLOP/s dense bf16 (no sparsity)",
    "bandwidth_efficiency": "assumption: share of peak HBM bandwidth a streaming kernel reaches",
    "compute_efficiency": "assumption: share of bf16 peak reached by small-batch matmuls",
    "graph_kernel_s": "assumption: floor per kernel replayed from a CUDA graph (small kernels, no host)",
    "eager_op_s": "issue 12: 1 259 aten ops per token eager at 10-15 ms per step, ~10 us per op",
    "host_step_s": "assumption: the scheduler's Python (plan, events, token read-back) per step",
    "t3_layers": "chatterbox 0.1.7 LLAMA_CONFIGS['Llama_520M'].num_hidden_layers",
    "t3_hidden": "Llama_520M hidden_size (16 heads x 64)",
    "t3_intermediate": "Llama_520M intermediate_size",
    "t3_speech_vocab": "T3Config.speech_tokens_dict_size (the speech head's rows)",
    "t3_step_kernels_fixed": f"{_COUNTS} (static step, CFG pair: sampling, embedding, head)",
    "t3_step_kernels_per_layer": f"{_COUNTS} (63 + 30 x 40 = 1 263, issue 12 counted 1 259)",
    "t3_prefill_ops_fixed": _COUNTS,
    "t3_prefill_ops_per_layer": _COUNTS,
    "bytes_per_value": "bf16 weights and KV cache on the GPU (issue 12)",
    "encoder_params": "chatterbox S3Gen flow.encoder (UpsampleConformerEncoder), parameters",
    "estimator_params": "chatterbox S3Gen flow.decoder.estimator (ConditionalDecoder), parameters",
    "hift_params": "chatterbox S3Gen mel2wav (HiFTGenerator), parameters",
    "encoder_kernels": f"{_COUNTS} (one encoder call)",
    "estimator_kernels": f"{_COUNTS} (one estimator call)",
    "hift_kernels": f"{_COUNTS} (one HiFT call)",
    "encoder_flops": f"{_COUNTS}, fitted a + b f + c f^2 over frames f (one request)",
    "estimator_flops": f"{_COUNTS}, fitted a + b f over frames f (CFG pair, one call); c f^2: its 56 "
                       "attention blocks x 4 x 512 x 2, analytic (the counter misses masked SDPA)",
    "hift_flops_per_frame": f"{_COUNTS}, per mel frame vocoded",
    "cfm_steps": "the package's CFM steps for the original model (engine default)",
    "flush_bucket_frames": "assumption: length buckets of the padded flush (engineer B's buckets)",
    "flush_graphs": "issue 12's plan: flushes replayed from CUDA graphs per length bucket (the engine does "
                    "not capture them yet: False is that scenario)",
}
assert set(PARAMETERS) == {f.name for f in fields(CostModel)}, "every parameter needs its source"

H100 = CostModel()
