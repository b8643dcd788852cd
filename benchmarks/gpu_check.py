"""GPU check of the Chatterbox T3 fast path (issue 12), prepared for a session with a lent GPU.

What it checks and times, random weights (timing-only, never speech), original Llama T3:
  1. correctness: static-cache eager tokens == dynamic-cache loop tokens (fp32, same seed);
     CUDA-graph replay tokens == eager static tokens; bf16 logits finite and close to fp32;
  2. timings: prefill (conditioning + text, CFG rows) and ms per decode step, eager vs CUDA
     graph, fp32 and bf16; T3 real-time factor = ms/step / 40 ms (25 speech tokens per second);
  3. voice-prefix KV: prefill from the voice's cached keys/values == a full prefill (logits, tokens);
  4. Turbo (GPT-2 T3): static tokens == dynamic-loop tokens (fp32), graph == eager on CUDA; ms per
     token of the dynamic loop and ms per step of the static step, eager and graphed.
S3Gen (flow + HiFT) and the watermark are not timed here yet, so this is not the first-audio
figure; it is the T3 share of it. The report is rewritten after every stage, so a timeout keeps
what finished. No network and no `chatterbox-tts` install are needed: the package's model source
(and einops) travel in `build/gpu_carry/` (make it with `--prepare-carry` on a machine that has
the package; about 2 MiB) and are imported without running the package's `__init__`, which would
pull in librosa, perth and the S3 tokenizer.

    python -m benchmarks.gpu_check --prepare-carry                  # here, once
    python -m benchmarks.gpu_check --device cuda --json $OUT/gpu_check.json   # on the GPU machine
    python -m benchmarks.gpu_check --device cpu --quick             # the same checks, reduced, on a CPU
    python -m benchmarks.gpu_check --device cpu --quick --sessions 1,2   # plus sessions through the engine's executor
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import platform
import shutil
import statistics
import sys
import threading
import time
import types
from pathlib import Path

CARRY = Path(__file__).resolve().parent.parent / "build" / "gpu_carry"
SPEECH_TOKEN_MS = 40.0    # 25 speech tokens per second of audio


def prepare_carry() -> None:
    """Copy the installed package's source and einops into build/gpu_carry (ignored by git)."""
    CARRY.mkdir(parents=True, exist_ok=True)
    for name in ("chatterbox", "einops"):
        source = Path(importlib.util.find_spec(name).origin).parent
        shutil.rmtree(CARRY / name, ignore_errors=True)
        shutil.copytree(source, CARRY / name, ignore=shutil.ignore_patterns("__pycache__"))
    size = sum(f.stat().st_size for f in CARRY.rglob("*") if f.is_file())
    print(f"{CARRY}: {size / 2**20:.1f} MiB")


def _import_model_code() -> None:
    """Make `chatterbox.models.t3` importable without the package's `__init__` (and its audio deps)."""
    if importlib.util.find_spec("chatterbox") is not None and "chatterbox" not in sys.modules:
        try:
            import chatterbox  # noqa: F401 - the installed package, when it and its deps are here
            return
        except ImportError:
            sys.modules.pop("chatterbox", None)
    if CARRY.is_dir():
        sys.path.insert(0, str(CARRY))
        root = CARRY / "chatterbox"
    else:
        root = Path(importlib.util.find_spec("chatterbox").origin).parent
    shim = types.ModuleType("chatterbox")
    shim.__path__ = [str(root)]
    sys.modules["chatterbox"] = shim


class Report:
    def __init__(self, path: str | None, meta: dict) -> None:
        self.path, self.data = path, {**meta, "stages": {}}

    def stage(self, name: str, result: dict) -> None:
        self.data["stages"][name] = result
        print(json.dumps({name: result}))
        if self.path:
            Path(self.path).write_text(json.dumps(self.data, indent=2) + "\n")


def _t3(quick: bool, gpt: bool):
    import torch
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.llama_configs import LLAMA_CONFIGS
    from chatterbox.models.t3.modules.t3_config import T3Config

    saved = {k: dict(v) for k, v in LLAMA_CONFIGS.items()}
    if quick:
        LLAMA_CONFIGS["Llama_520M"].update(num_hidden_layers=2, intermediate_size=1024)
        LLAMA_CONFIGS["GPT2_medium"].update(n_layer=2, n_embd=256, hidden_size=256, n_head=4)
    try:
        torch.manual_seed(0)
        if not gpt:
            return T3().eval()
        hp = T3Config(text_tokens_dict_size=50276)      # the hyperparameters Turbo's from_local sets
        hp.llama_config_name, hp.speech_tokens_dict_size, hp.input_pos_emb = "GPT2_medium", 6563, None
        hp.speech_cond_prompt_len, hp.use_perceiver_resampler, hp.emotion_adv = 375, False, False
        return T3(hp).eval()
    finally:
        for k, v in saved.items():
            LLAMA_CONFIGS[k].clear()
            LLAMA_CONFIGS[k].update(v)


def _inputs(t3, device):
    import torch

    from stream.engines.chatterbox.conditioning import t3_prefix, with_emotion

    hp = t3.hp
    gen = torch.Generator().manual_seed(1)
    speaker = torch.randn(1, hp.speaker_embed_size, generator=gen).to(device)
    prompt = torch.randint(0, 6561, (1, hp.speech_cond_prompt_len), generator=gen).to(device)
    prefix = with_emotion(t3, t3_prefix(t3, speaker, prompt), 0.5)
    text = torch.randint(3, 200, (1, 30), generator=gen)
    text = torch.cat([torch.tensor([[hp.start_text_token]]), text, torch.tensor([[hp.stop_text_token]])], 1)
    return prefix, text.to(device)


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _time_steps(t3, prefix, text, params, device: str, graph: bool, reps: int) -> dict:
    """Prefill ms and median ms per decode step of the static path (Llama's, or Turbo's for a GPT-2 T3)."""
    import torch

    from stream.engines.chatterbox.static_decode import StaticLlamaDecoder, llama_prefix_embeds, make_step
    from stream.engines.chatterbox.static_turbo import StaticTurboDecoder, turbo_prefix_embeds

    prefill, per_step = [], []
    with torch.inference_mode():
        for rep in range(reps):
            gen = torch.Generator(device=device).manual_seed(rep)
            _sync(device)
            start = time.perf_counter()
            if t3.is_gpt:
                embeds, bos = turbo_prefix_embeds(t3, prefix, text)
                decoder = StaticTurboDecoder(t3, params, embeds.shape[1], gen)
            else:
                embeds, bos = llama_prefix_embeds(t3, prefix, text, params.cfg_weight > 0)
                decoder = StaticLlamaDecoder(t3, params, embeds.shape[1], gen)
            step = make_step(decoder, embeds, bos, graph)
            _sync(device)
            prefill.append(time.perf_counter() - start)
            start = time.perf_counter()
            for _ in range(params.max_new_tokens):
                step()
            _sync(device)
            per_step.append((time.perf_counter() - start) / params.max_new_tokens)
    ms_step = 1000 * statistics.median(per_step)
    return {"prefill_ms": round(1000 * statistics.median(prefill), 2), "ms_per_step": round(ms_step, 3),
            "t3_rtf": round(ms_step / SPEECH_TOKEN_MS, 4), "includes_capture": graph}


def _prefix_kv_check(t3, prefix, text, params) -> dict:
    """Prefill from the voice's cached KV (all positions before the emotion one) vs a full prefill."""
    import torch

    from stream.engines.chatterbox.conditioning import prefix_kv
    from stream.engines.chatterbox.static_decode import StaticLlamaDecoder, llama_prefix_embeds

    kv = prefix_kv(t3, prefix[:, :-1])
    logits = []
    with torch.inference_mode():
        embeds, bos = llama_prefix_embeds(t3, prefix, text, params.cfg_weight > 0)
        for cached in (None, kv):
            decoder = StaticLlamaDecoder(t3, params, embeds.shape[1], torch.Generator(device=prefix.device), cached)
            state = decoder.prefill(embeds, bos)
            logits.append(t3.speech_head(state.hidden).float())
    diff = float((logits[0] - logits[1]).abs().max())
    return {"ok": diff <= 1e-4, "max_abs_logit_diff": diff, "voice_positions": kv.length,
            "prefill_positions": embeds.shape[1]}


def _sessions_stages(report: Report, args: argparse.Namespace, counts: tuple[int, ...]) -> None:
    """N sessions at once through the engine's own executor (batching on where it applies), 10 s voice,
    random weights: TTFA p50/p95 per N (`benchmarks.batching.run_point`). The lent GPU machine has no
    S3Gen or Perth dependencies (diffusers, conformer, librosa, resemble-perth...), so there this
    stage records what is missing instead of failing the check."""
    from benchmarks import batching
    from stream.engines.base import EngineLoadError

    options = argparse.Namespace(quick=args.quick, device=args.device, tokens=args.tokens or 32, voice_seconds=10.0,
                                 cfm_steps=None, checkpoint=None)
    try:
        engine, _ = batching.load(options, counts)
    except (ImportError, EngineLoadError) as exc:
        report.stage("sessions", {"skipped": f"the engine cannot load here: {exc}"})
        return
    executor = engine.create_executor(1)
    try:
        for n in counts:
            report.stage(f"sessions_{n}", {**batching.run_point(engine, executor, n, seed=11, timeout_s=600),
                                           "executor": type(executor).__name__})
    finally:
        executor.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="reduced T3 (2 layers): a CPU/CI smoke run")
    parser.add_argument("--tokens", type=int, default=None, help="decode steps per timing (default 100; quick 12)")
    parser.add_argument("--json", help="write the report here after every stage")
    parser.add_argument("--prepare-carry", action="store_true", help="fill build/gpu_carry and exit")
    parser.add_argument("--sessions", help="also N,... concurrent sessions through engine.create_executor "
                        "(TTFA p50/p95; needs the whole chatterbox-tts stack, S3Gen and Perth included)")
    args = parser.parse_args()
    if args.prepare_carry:
        prepare_carry()
        return
    _import_model_code()
    import torch
    import transformers

    from stream.engines.chatterbox.conditioning import prefix_kv
    from stream.engines.chatterbox.loading import cast_t3
    from stream.engines.chatterbox.sampling import SamplingParams, llama_tokens, turbo_tokens
    from stream.engines.chatterbox.static_decode import llama_tokens_static
    from stream.engines.chatterbox.static_turbo import turbo_tokens_static

    device = args.device
    tokens = args.tokens or (12 if args.quick else 100)
    reps = 2 if args.quick else 5
    report = Report(args.json, {
        "label": "random weights, timing-only",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": torch.cuda.get_device_name() if device == "cuda" else f"cpu ({platform.processor() or platform.machine()})",
        "torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
        "t3": "reduced (2 layers)" if args.quick else "full size (520M Llama / GPT-2 medium)",
        "tokens": tokens,
    })
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    params = SamplingParams(temperature=0.8, cfg_weight=0.5, min_p=0.05, top_p=1.0, repetition_penalty=1.2,
                            max_new_tokens=tokens)
    t3 = _t3(args.quick, gpt=False).to(device)
    prefix, text = _inputs(t3, device)

    def run(loop, t3_, prefix_, **kw) -> list[int]:
        gen = torch.Generator(device=device).manual_seed(7)
        return list(loop(t3_, prefix_, text, params, gen, threading.Event(), **kw))

    dynamic = run(llama_tokens, t3, prefix)
    static = run(llama_tokens_static, t3, prefix, cuda_graph=False)
    report.stage("static_equals_dynamic_fp32", {"ok": static == dynamic, "tokens": len(static)})
    voice_kv = prefix_kv(t3, prefix[:, :-1])
    report.stage("prefix_kv_fp32", {**_prefix_kv_check(t3, prefix, text, params),
                                    "tokens_equal": run(llama_tokens_static, t3, prefix, voice_kv=voice_kv) == static})
    if device == "cuda":
        graphed = run(llama_tokens_static, t3, prefix, cuda_graph=True)
        report.stage("graph_equals_eager_fp32", {"ok": graphed == static})
    report.stage("original_fp32_eager", _time_steps(t3, prefix, text, params, device, False, reps))
    if device == "cuda":
        report.stage("original_fp32_graph", _time_steps(t3, prefix, text, params, device, True, reps))

    with torch.inference_mode():
        reference = t3.speech_head(t3.tfmr(inputs_embeds=torch.cat([prefix, prefix], 0)).last_hidden_state).float()
    cast_t3(t3, torch.bfloat16)
    prefix16 = prefix.to(torch.bfloat16)
    with torch.inference_mode():
        low = t3.speech_head(t3.tfmr(inputs_embeds=torch.cat([prefix16, prefix16], 0)).last_hidden_state).float()
    rel = float((low - reference).norm() / reference.norm())
    report.stage("bf16_logits", {"finite": bool(torch.isfinite(low).all()), "relative_error_vs_fp32": round(rel, 4)})
    report.stage("original_bf16_eager", _time_steps(t3, prefix16, text, params, device, False, reps))
    if device == "cuda":
        report.stage("original_bf16_graph", _time_steps(t3, prefix16, text, params, device, True, reps))
    from benchmarks.gpu_check_batched import batched_stages  # T3Batch's step by rows (issue 13)

    batched_stages(report, t3, prefix16, text, args.quick, tokens)
    del t3

    turbo = _t3(args.quick, gpt=True).to(device)
    turbo_prefix, _ = _inputs(turbo, device)
    turbo_params = SamplingParams(temperature=0.8, cfg_weight=0.0, min_p=0.0, top_p=0.95, repetition_penalty=1.2,
                                  max_new_tokens=tokens)

    def run_turbo(loop, **kw) -> list[int]:
        gen = torch.Generator(device=device).manual_seed(7)
        return list(loop(turbo, turbo_prefix, text, turbo_params, gen, threading.Event(), **kw))

    turbo_static = run_turbo(turbo_tokens_static, cuda_graph=False)
    report.stage("turbo_static_equals_dynamic_fp32", {"ok": turbo_static == run_turbo(turbo_tokens),
                                                      "tokens": len(turbo_static)})
    if device == "cuda":
        report.stage("turbo_graph_equals_eager_fp32", {"ok": run_turbo(turbo_tokens_static) == turbo_static})
        cast_t3(turbo, torch.bfloat16)
        turbo_prefix = turbo_prefix.to(torch.bfloat16)
    gen = torch.Generator(device=device).manual_seed(7)
    _sync(device)
    start = time.perf_counter()
    made = sum(1 for _ in turbo_tokens(turbo, turbo_prefix, text, turbo_params, gen, threading.Event()))
    _sync(device)
    elapsed = time.perf_counter() - start
    dtype = str(next(turbo.parameters()).dtype)
    report.stage("turbo_dynamic_eager", {"ms_per_token_incl_prefill": round(1000 * elapsed / max(1, made), 3),
                                         "tokens": made, "dtype": dtype})
    report.stage("turbo_static_eager", {**_time_steps(turbo, turbo_prefix, text, turbo_params, device, False, reps),
                                        "dtype": dtype})
    if device == "cuda":
        report.stage("turbo_static_graph", {**_time_steps(turbo, turbo_prefix, text, turbo_params, device, True, reps),
                                            "dtype": dtype})
    if args.sessions:
        _sessions_stages(report, args, tuple(int(n) for n in args.sessions.split(",")))
    if args.json:
        print(f"report: {args.json}")


if __name__ == "__main__":
    main()
