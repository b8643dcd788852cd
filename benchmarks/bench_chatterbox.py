"""Chatterbox engine micro-benchmark: time to first chunk (streamed) vs the package's `generate()`,
and voice preparation vs a conditioning-cache hit.

Random weights (the hub is unreachable): the audio is noise-shaped and every number is
timing-only. Both sides generate exactly `--tokens` speech tokens for the same phrase, voice and
seed (random weights almost never sample the stop token, so the budget is the length).

    python -m benchmarks.bench_chatterbox [--reduced] [--tokens 50] [--reps 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.engines import EngineSpec, _package_generate, _t3_size, build_checkpoint
from stream.engines.base import SynthesisRequest
from stream.engines.chatterbox import ChatterboxEngine, StreamTuning
from stream.protocol import GenerationSettings
from stream.settings import Settings
from tests.chatterbox_checkpoint import speechlike_clip

PHRASE = "Sure, I can help with that, the museum opens at nine thirty on weekdays."


def streamed_first_chunk(engine: ChatterboxEngine, seed: int) -> tuple[float, float, float]:
    """(seconds to first chunk, seconds to last chunk, seconds of audio) of one streamed phrase."""
    request = SynthesisRequest(text=PHRASE, voice=engine.default_voice(), generation=GenerationSettings(seed=seed),
                               first_in_context=True)
    start = time.perf_counter()
    first = None
    samples = 0
    for chunk in engine.synthesize(request, threading.Event()):
        first = first if first is not None else time.perf_counter() - start
        samples += len(chunk)
    return first or 0.0, time.perf_counter() - start, samples / engine.sample_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reduced", action="store_true", help="2-layer T3 (tests' reduced_t3) instead of full size")
    parser.add_argument("--tokens", type=int, default=50, help="speech tokens per phrase on both sides")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--checkpoint", help="checkpoint folder (built there on first use)")
    args = parser.parse_args()

    size = "reduced" if args.reduced else "full"
    ckpt = Path(args.checkpoint or Path(tempfile.gettempdir()) / f"voicewire-bench-chatterbox-{size}")
    build_checkpoint(ckpt, reduced=args.reduced)
    spec = EngineSpec(name="chatterbox", checkpoint=str(ckpt), token_budget=args.tokens, reduced_t3=args.reduced,
                      device=args.device)
    data_dir = tempfile.mkdtemp(prefix="voicewire-bench-data-")
    engine = ChatterboxEngine(Settings(model_dir=str(ckpt), device=args.device, data_dir=data_dir),
                              tuning=StreamTuning(max_new_tokens=args.tokens))
    with _t3_size(spec):
        engine.load()
    engine.warmup()
    package = _package_generate(spec)   # warmed up inside

    streamed = [streamed_first_chunk(engine, seed=7 + i) for i in range(args.reps)]
    generate = []
    for _ in range(args.reps):
        start = time.perf_counter()
        audio = package.synthesize(PHRASE, 1)
        generate.append((time.perf_counter() - start, len(audio) / package.sample_rate))

    clip = speechlike_clip(10.0, seed=99)
    prep, memory_hit, disk_hit = [], [], []
    for i in range(args.reps):
        clip_i = clip * (1.0 - 0.01 * i)          # new content each rep: a real preparation
        start = time.perf_counter()
        engine.prepare_voice(clip_i, 24_000, f"b{i}", "bench")
        prep.append(time.perf_counter() - start)
        start = time.perf_counter()
        engine.prepare_voice(clip_i, 24_000, f"b{i}", "bench")
        memory_hit.append(time.perf_counter() - start)
        engine._cache._memory.clear()             # as after a restart: only the disk copy is left
        start = time.perf_counter()
        engine.prepare_voice(clip_i, 24_000, f"b{i}", "bench")
        disk_hit.append(time.perf_counter() - start)

    def ms(values: list[float]) -> float:
        return round(1000 * statistics.median(values), 1)

    report = {
        "label": spec.label,
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "load_average_1m": round(os.getloadavg()[0], 2),
        "torch": __import__("torch").__version__,
        "phrase": PHRASE,
        "tokens": args.tokens,
        "reps": args.reps,
        "streamed_first_chunk_ms": ms([s[0] for s in streamed]),
        "streamed_total_ms": ms([s[1] for s in streamed]),
        "streamed_audio_s": round(streamed[0][2], 2),
        "generate_ms": ms([g[0] for g in generate]),
        "generate_audio_s": round(generate[0][1], 2),
        "first_chunk_speedup": round(statistics.median(g[0] for g in generate) / statistics.median(s[0] for s in streamed), 2),
        "voice_prepare_ms": ms(prep),
        "voice_cache_memory_hit_ms": ms(memory_hit),
        "voice_cache_disk_hit_ms": ms(disk_hit),
        "reference_clip_s": 10.0,
        "watermark": engine.watermark,
        "cfm_steps": 10,
        "first_chunk_tokens": engine.tuning.first_chunk_tokens,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
