"""CPU benchmark of issue 13: the batching executor against the serial one, in the same run.

Full-size T3 (the package's 520M Llama) with **random weights** (the hub is unreachable): the audio
is noise-shaped and every number is timing-only. Each point submits one phrase per session, all at
once (a context's first phrase, priority 0), with a fixed budget of 32 speech tokens per phrase
(random weights almost never sample the stop token), to one executor built by
`Engine.create_executor` from the same loaded engine under the server's `--batching` flag: `serial`
(off) is the thread pool with one worker, one phrase at a time, as before batching; `batched` (on)
is the batching executor, its KV pool sized for every session of the largest point. Session counts
1, 4, 8 and 16; two passes, the executors' order alternating per point and pass, so load changes on
a shared machine hit both alike.

To fit 30 minutes on a 2-core CPU the built-in voice is 2 s (a 10 s voice's flow pass costs 3.3x as
much here, and S3Gen would swamp T3, whose decode is what batching changes most) and flushes take 5
CFM steps; both executors run the same settings, and `--voice-seconds 10 --cfm-steps 10` gives the
engine's defaults at several times the runtime.

Per point: aggregate speech tokens per second (audio made / wall time, 960 samples per token) and
per-session TTFA (submit -> first chunk) p50/p95; the batched/serial ratios; `uptime` before and
after. Decode is memory-bound, so one batched step over many rows costs little more than one row's,
which shows on a CPU too; only ratios are claimed. Keep it under 30 minutes: run it alone.

    python -m benchmarks.batching                          # full-size T3 (~20-30 min, alone on the machine)
    python -m benchmarks.batching --quick                  # reduced T3, 12 tokens, 1-2 sessions: a smoke test
    python -m benchmarks.batching --executors serial       # one executor only
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks import corpus
from benchmarks.engines import EngineSpec, _t3_size
from benchmarks.report import RESULTS, machine, now_utc, uptime, write_json
from stream.core.protocol import GenerationSettings
from stream.engines.base import SynthesisRequest
from stream.inference.executor import Executor
from stream.inference.pool import InferencePool

SAMPLES_PER_TOKEN = 960          # 24 kHz, 25 speech tokens per second
EXECUTORS = ("batched", "serial")


@dataclass
class _Sink:
    """One request's arrivals, timed from the point's start."""

    t0: float
    first_s: float | None = None
    end_s: float | None = None
    samples: int = 0
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def chunk(self, samples: np.ndarray) -> None:
        if self.first_s is None and samples.size:
            self.first_s = time.perf_counter() - self.t0
        self.samples += int(samples.size)

    def finished(self, error: BaseException | None) -> None:
        self.end_s = time.perf_counter() - self.t0
        self.error = error
        self.done.set()


def phrases(count: int) -> list[str]:
    """A different first sentence per session (the corpus's assistant and NPC lines)."""
    lines = [r.text.split(". ")[0].rstrip(".") + "." for r in corpus.select(("chat", "npc"))]
    return [lines[i % len(lines)] for i in range(count)]


def make_executor(engine, kind: str) -> Executor:
    """The engine's executor under the server's `--batching on|off` flag: `serial` is the thread pool
    with one worker (one phrase at a time), `batched` the batching executor (never the pool)."""
    engine.settings.batching = kind == "batched"
    executor = engine.create_executor(1)
    if kind == "batched" and isinstance(executor, InferencePool):
        executor.shutdown()
        raise SystemExit("batched: this engine's create_executor returns the thread pool (no batching "
                         "executor in this build); run with --executors serial")
    return executor


def run_point(engine, executor: Executor, sessions: int, seed: int, timeout_s: float) -> dict:
    """All sessions submit at once; wait for every phrase to finish."""
    voice = engine.default_voice()
    t0 = time.perf_counter()
    sinks = []
    for i, text in enumerate(phrases(sessions)):
        sink = _Sink(t0)
        request = SynthesisRequest(text=text, voice=voice, generation=GenerationSettings(seed=seed + i),
                                   first_in_context=True)
        executor.submit(request, sink, priority=0, deadline=None)
        sinks.append(sink)
    for sink in sinks:
        if not sink.done.wait(max(0.0, timeout_s - (time.perf_counter() - t0))):
            raise TimeoutError(f"{sessions} sessions: a phrase did not finish within {timeout_s:g} s")
        if sink.error is not None:
            raise RuntimeError(f"{sessions} sessions: a phrase failed") from sink.error
    wall = max(s.end_s for s in sinks)
    ttfa = sorted(s.first_s for s in sinks if s.first_s is not None)
    tokens = sum(s.samples for s in sinks) / SAMPLES_PER_TOKEN
    return {"sessions": sessions, "wall_s": round(wall, 3), "tokens": round(tokens, 1),
            "tokens_per_s": round(tokens / wall, 2),
            "ttfa_p50_ms": round(1000 * statistics.median(ttfa), 1) if ttfa else None,
            "ttfa_p95_ms": round(1000 * _p95(ttfa), 1) if ttfa else None}


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(np.ceil(0.95 * len(ordered))) - 1))]


def summarize(runs: list[dict], kinds: tuple[str, ...], counts: tuple[int, ...]) -> list[dict]:
    """Per session count: the mean over passes of each executor's figures, and batched/serial ratios."""
    rows = []
    for n in counts:
        row: dict = {"sessions": n}
        for kind in kinds:
            mine = [r for r in runs if r["executor"] == kind and r["sessions"] == n]
            for key in ("tokens_per_s", "ttfa_p50_ms", "ttfa_p95_ms"):
                values = [r[key] for r in mine if r[key] is not None]
                row[f"{kind}_{key}"] = round(statistics.mean(values), 1) if values else None
        if set(kinds) == set(EXECUTORS) and row["serial_tokens_per_s"]:
            row["tokens_per_s_ratio"] = round(row["batched_tokens_per_s"] / row["serial_tokens_per_s"], 2)
            row["ttfa_p95_ratio"] = round(row["batched_ttfa_p95_ms"] / row["serial_ttfa_p95_ms"], 2)
        rows.append(row)
    return rows


def markdown(rows: list[dict], kinds: tuple[str, ...]) -> str:
    head = ["sessions"] + [f"{k} {m}" for k in kinds for m in ("tokens/s", "TTFA p50 ms", "TTFA p95 ms")]
    ratios = set(kinds) == set(EXECUTORS)
    if ratios:
        head += ["tokens/s ratio (batched/serial)", "TTFA p95 ratio"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [str(row["sessions"])] + [str(row[f"{k}_{m}"]) for k in kinds
                                          for m in ("tokens_per_s", "ttfa_p50_ms", "ttfa_p95_ms")]
        if ratios:
            cells += [f"{row['tokens_per_s_ratio']}x", f"{row['ttfa_p95_ratio']}x"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load(args: argparse.Namespace, counts: tuple[int, ...]):
    from stream.engines.chatterbox import ChatterboxEngine, StreamTuning
    from stream.settings import Settings

    size = "reduced" if args.quick else "full"
    ckpt = Path(args.checkpoint or Path(tempfile.gettempdir())
                / f"voicewire-bench-chatterbox-{size}-voice{args.voice_seconds:g}s")
    spec = EngineSpec(name="chatterbox", checkpoint=str(ckpt), token_budget=args.tokens, reduced_t3=args.quick,
                      device=args.device)
    if not (ckpt / "conds.pt").is_file():
        from tests.chatterbox_checkpoint import build_checkpoint

        with _t3_size(spec):
            build_checkpoint(ckpt, voice_seconds=args.voice_seconds)
    # The KV pool holds every session of the largest point at once (a CFG request is 2 rows).
    settings = Settings(engine="chatterbox", model_dir=str(ckpt), device=args.device, batch_rows=2 * max(counts),
                        data_dir=tempfile.mkdtemp(prefix="voicewire-batching-"))
    tuning = StreamTuning(max_new_tokens=args.tokens, cfm_steps=args.cfm_steps)
    engine = ChatterboxEngine(settings, tuning=tuning)
    with _t3_size(spec):
        engine.load()
    engine.warmup()
    return engine, spec


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="reduced T3 (2 layers), 12 tokens, 2 CFM steps, 1-2 sessions: a smoke test")
    parser.add_argument("--sessions", type=int, nargs="+", help="session counts (default 1 4 8 16; quick 1 2)")
    parser.add_argument("--tokens", type=int, help="speech tokens per phrase (default 32; quick 12)")
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--executors", default=",".join(EXECUTORS), help="comma-separated: batched,serial")
    parser.add_argument("--voice-seconds", type=float, default=2.0, help="built-in voice length (default 2)")
    parser.add_argument("--cfm-steps", type=int, help="CFM steps per flush (default 5; quick 2)")
    parser.add_argument("--checkpoint", help="random-weight checkpoint folder (built there on first use)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per point")
    parser.add_argument("--json", type=Path, default=None, help="default benchmarks/results/batching-cpu[-quick].json")
    args = parser.parse_args(argv)
    args.tokens = args.tokens or (12 if args.quick else 32)
    args.cfm_steps = args.cfm_steps or (2 if args.quick else 5)
    counts = tuple(args.sessions or ((1, 2) if args.quick else (1, 4, 8, 16)))
    kinds = tuple(k.strip() for k in args.executors.split(",") if k.strip())
    if not kinds or any(k not in EXECUTORS for k in kinds):
        parser.error(f"--executors: choose from {', '.join(EXECUTORS)}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = args.json or RESULTS / f"batching-cpu{'-quick' if args.quick else ''}.json"

    report: dict = {"scenario": "batching", "date": now_utc(), "machine": machine(), "uptime_before": uptime(),
                    "timing_only": True}
    engine, spec = load(args, counts)
    report["engine"] = spec.label
    report["settings"] = {"tokens": args.tokens, "voice_seconds": args.voice_seconds, "passes": args.passes,
                          "cfm_steps": engine.tuning.cfm_steps, "batch_rows": engine.settings.batch_rows,
                          "sessions": list(counts), "executors": list(kinds), "threads": args.threads}
    executors = {kind: make_executor(engine, kind) for kind in kinds}
    runs: list[dict] = []
    started = time.perf_counter()
    try:
        for p in range(args.passes):
            for j, n in enumerate(counts):
                order = kinds if (p + j) % 2 == 0 else tuple(reversed(kinds))
                for kind in order:
                    result = run_point(engine, executors[kind], n, seed=1000 * p + 10 * n, timeout_s=args.timeout)
                    runs.append({"pass": p, "executor": kind, **result})
                    print(f"pass {p} {kind:7s} {n:3d} sessions: {result['tokens_per_s']:7.2f} tokens/s, TTFA p50 "
                          f"{result['ttfa_p50_ms']} ms p95 {result['ttfa_p95_ms']} ms (wall {result['wall_s']} s)",
                          flush=True)
    finally:
        for executor in executors.values():
            executor.shutdown()
    rows = summarize(runs, kinds, counts)
    report.update(runs=runs, summary=rows, runtime_s=round(time.perf_counter() - started, 1),
                  uptime_after=uptime())
    write_json(out, report)
    print(markdown(rows, kinds))
    print(f"wrote {out} ({report['runtime_s']} s); uptime before: {report['uptime_before']}; "
          f"after: {report['uptime_after']}")


if __name__ == "__main__":
    main()
