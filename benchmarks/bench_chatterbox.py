"""Chatterbox engine micro-benchmark: time to first chunk (streamed) vs the package's `generate()`,
where the streamed path spends that time, and voice preparation vs a conditioning-cache hit.

Random weights (the hub is unreachable): the audio is noise-shaped and every number is
timing-only. Random weights almost never sample the stop token, so both sides generate exactly
`--tokens` speech tokens for the same phrase, voice and seed. The default budget is the phrase's
natural length: what a real model would say it in (characters at a conversational speaking rate,
times 25 speech tokens per second), because `generate()` cost grows with the phrase and the
streamed first chunk does not. Streamed and `generate()` runs alternate, pair by pair, so load
changes on a shared machine hit both sides alike.

The checkpoint's built-in voice, which both sides use, is 10 s long by default (`--voice-seconds`):
real reference clips are about that long, and every streamed flush re-runs S3Gen's flow over the
whole prompt (516 mel frames for 10 s against 116 for a 2 s clip), so a short voice flatters it.

`--fast-path` instead compares the engine's T3 fast path (`StreamTuning(static_decode=True)`: the
static-cache step, the voice-prefix KV, read-back one step behind) with today's dynamic-cache loop
(`static_decode=False`, `sampling.llama_tokens`) on the same loaded weights, phrase, seed and token
budget: time to the first chunk, and ms per token of the T3 token iterator alone, pair by pair with
the order swapped every pair. Both sides draw with the package sampler, so their tokens must be equal
for a seed; the benchmark asserts it (otherwise the comparison would not be like for like).

    python -m benchmarks.bench_chatterbox [--reduced] [--tokens N] [--reps 3] [--device cpu]
                                          [--voice-seconds 10] [--fast-path] [--json F]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import torch

from benchmarks.engines import EngineSpec, _package_generate, _t3_size
from stream.core.protocol import GenerationSettings
from stream.engines.base import SynthesisRequest
from stream.engines.chatterbox import ChatterboxEngine, StreamTuning
from stream.engines.chatterbox.decoding import run_flow, run_vocoder
from stream.engines.chatterbox.watermark import StreamingWatermarker
from stream.settings import Settings
from tests.chatterbox_checkpoint import build_checkpoint, speechlike_clip

PHRASE = "Sure, I can help with that, the museum opens at nine thirty on weekdays."
SPEECH_TOKENS_PER_S = 25     # S3 speech tokens per second of audio
CHARS_PER_S = 14.0           # conversational English, about 150 words a minute
VOICE_SECONDS = 10.0         # a typical reference clip
FAST_PATH_JSON = "benchmarks/results/chatterbox-fast-path-cpu.json"


def natural_tokens(text: str) -> int:
    """Speech tokens a real model would take for `text` at a conversational rate."""
    return round(SPEECH_TOKENS_PER_S * len(text) / CHARS_PER_S)


def streamed(engine: ChatterboxEngine, seed: int) -> dict:
    """Seconds to the first chunk and to the last, and seconds of audio, of one streamed phrase."""
    request = SynthesisRequest(text=PHRASE, voice=engine.default_voice(), generation=GenerationSettings(seed=seed),
                               first_in_context=True)
    start = time.perf_counter()
    first = None
    samples = 0
    for chunk in engine.synthesize(request, threading.Event()):
        first = first if first is not None else time.perf_counter() - start
        samples += len(chunk)
    return {"first_chunk_s": first or 0.0, "total_s": time.perf_counter() - start,
            "audio_s": samples / engine.sample_rate}


def first_chunk_stages(engine: ChatterboxEngine, seed: int) -> dict:
    """The streamed first chunk, stage by stage: the engine's own token loop, decoder and watermarker,
    run in the order `ChatterboxEngine._stream` runs them, each timed on its own."""
    request = SynthesisRequest(text=PHRASE, voice=engine.default_voice(), generation=GenerationSettings(seed=seed),
                               first_in_context=True)
    token_gen, acoustic_gen = engine._generators(seed)
    budget = engine.tuning.max_new_tokens
    decoder = engine.phrase_decoder(request.voice, request.generation, acoustic_gen, budget)
    want = engine.tuning.first_chunk_tokens
    stages: dict[str, float] = {}
    start = time.perf_counter()
    tokens = engine.speech_tokens(request, threading.Event(), generator=token_gen, max_new_tokens=budget)
    count = 0
    for token in tokens:
        count += 1
        if count == 1:
            stages["prefill_and_first_token_s"] = time.perf_counter() - start
        decoder.add(token)
        if decoder.ready_tokens() >= want:
            break
    tokens.close()
    stages["tokens_to_first_flush"] = count
    stages["later_tokens_s"] = time.perf_counter() - start - stages["prefill_and_first_token_s"]
    with torch.inference_mode():  # PhraseDecoder.flush, a stage at a time
        mark = time.perf_counter()
        flow_request = decoder.begin_flush(final=False)
        mel = run_flow(decoder.flow, [flow_request])[0]
        stages["flow_s"] = time.perf_counter() - mark
        mark = time.perf_counter()
        vocoded = run_vocoder(decoder.hift, [decoder.vocoder_request(mel)])[0]
        audio = decoder.end_flush(False, vocoded)
        stages["vocoder_s"] = time.perf_counter() - mark
    if engine.watermark:
        mark = time.perf_counter()
        StreamingWatermarker(engine.loaded.tts.watermarker, engine.sample_rate).push(audio)
        stages["watermark_s"] = time.perf_counter() - mark
    stages["sum_s"] = time.perf_counter() - start
    stages["flow_frames"] = int(decoder.ref["prompt_feat"].shape[1] + mel.shape[2])
    return stages


def flush_cost(voice_seconds: tuple[float, ...], reps: int, device: str, cfm_steps: int = 10) -> dict:
    """Median seconds of one first-chunk flow pass (8 + 3 tokens) per reference-voice length.

    S3Gen is the package's class with random weights; the voices are `speechlike_clip`s prepared
    through `embed_ref`, so the prompt is as long as a real voice of that length. Lengths alternate
    within each rep, so load changes hit all alike.
    """
    from chatterbox.models.s3gen import S3Gen

    from stream.engines.chatterbox.decoding import PhraseDecoder

    torch.manual_seed(0)
    s3gen = S3Gen().to(device).eval()
    refs = {s: s3gen.embed_ref(speechlike_clip(s, seed=5), 24_000, device=device) for s in voice_seconds}
    times: dict[float, list[float]] = {s: [] for s in voice_seconds}
    for rep in range(reps + 1):                    # the first rep warms up and is dropped
        for s in voice_seconds:
            decoder = PhraseDecoder(s3gen, refs[s], generator=torch.Generator(device=device).manual_seed(rep),
                                    max_tokens=64, cfm_steps=cfm_steps)
            for token in range(11):
                decoder.add(100 + token)
            with torch.inference_mode():
                start = time.perf_counter()
                run_flow(decoder.flow, [decoder.begin_flush(final=False)])
                if rep:
                    times[s].append(time.perf_counter() - start)
    return {f"{s:g}s": {"prompt_frames": int(refs[s]["prompt_feat"].shape[1]),
                        "flow_ms": round(1000 * statistics.median(times[s]), 1)} for s in voice_seconds}


def first_chunk(engine: ChatterboxEngine, seed: int) -> float:
    """Seconds to the first streamed chunk of the phrase; the rest of the phrase is not synthesized."""
    request = SynthesisRequest(text=PHRASE, voice=engine.default_voice(), generation=GenerationSettings(seed=seed),
                               first_in_context=True)
    start = time.perf_counter()
    chunks = engine.synthesize(request, threading.Event())
    next(chunks)
    elapsed = time.perf_counter() - start
    chunks.close()
    return elapsed


def t3_loop(engine: ChatterboxEngine, seed: int, tokens: int) -> tuple[dict, list[int]]:
    """The engine's T3 token iterator run to exhaustion for `tokens` new tokens, no flushes: seconds
    to the first token (prefill), total seconds, ms per token, and the tokens."""
    request = SynthesisRequest(text=PHRASE, voice=engine.default_voice(), generation=GenerationSettings(seed=seed),
                               first_in_context=True)
    token_gen, _ = engine._generators(seed)
    start = time.perf_counter()
    first = None
    drawn = []
    for token in engine.speech_tokens(request, threading.Event(), generator=token_gen, max_new_tokens=tokens):
        first = first if first is not None else time.perf_counter() - start
        drawn.append(token)
    total = time.perf_counter() - start
    return {"first_token_s": first or 0.0, "t3_s": total, "tokens": len(drawn),
            "ms_per_token": 1000 * total / max(1, len(drawn))}, drawn


def uptime() -> str:
    """`uptime`'s line (load averages), or the 1-minute load average where the command is missing."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"load average: {os.getloadavg()[0]:.2f}"


def fast_path(engine: ChatterboxEngine, spec: EngineSpec, args: argparse.Namespace) -> dict:
    """Fast path vs today's loop on one loaded engine, alternating pair by pair (see the module docstring)."""
    base = engine.tuning
    sides = {"fast": dataclasses.replace(base, static_decode=True), "loop": dataclasses.replace(base, static_decode=False)}
    for tuning in sides.values():              # warm each side's path (the voice-prefix KV included)
        engine.tuning = tuning
        t3_loop(engine, seed=0, tokens=4)
    uptime_before = uptime()
    pairs = []
    for i in range(args.reps):
        seed = 7 + i
        order = ("fast", "loop") if i % 2 == 0 else ("loop", "fast")
        pair: dict = {"seed": seed, "order": list(order)}
        for name in order:
            engine.tuning = sides[name]
            pair[name] = {"first_chunk_s": first_chunk(engine, seed)}
        drawn = {}
        for name in order:
            engine.tuning = sides[name]
            t3, drawn[name] = t3_loop(engine, seed, args.tokens)
            pair[name].update(t3)
        if drawn["fast"] != drawn["loop"]:
            raise AssertionError(f"pair {i} (seed {seed}): the fast path's tokens differ from the loop's, "
                                 "so the comparison is not like for like")
        pair["tokens_equal"] = True
        pair["ratio_first_chunk"] = pair["fast"]["first_chunk_s"] / pair["loop"]["first_chunk_s"]
        pair["ratio_ms_per_token"] = pair["fast"]["ms_per_token"] / pair["loop"]["ms_per_token"]
        pairs.append(pair)
    engine.tuning = base
    uptime_after = uptime()

    def side(name: str) -> dict:
        runs = [p[name] for p in pairs]
        return {"first_chunk_ms": round(1000 * statistics.median(r["first_chunk_s"] for r in runs), 1),
                "first_chunk_ms_each": [round(1000 * r["first_chunk_s"], 1) for r in runs],
                "first_token_ms": round(1000 * statistics.median(r["first_token_s"] for r in runs), 1),
                "ms_per_token": round(statistics.median(r["ms_per_token"] for r in runs), 2),
                "ms_per_token_each": [round(r["ms_per_token"], 2) for r in runs]}

    return {
        "label": spec.label,
        "timing_only": True,
        "comparison": "fast path (static_decode=True) vs today's loop (static_decode=False), serial engine path",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "uptime": {"before": uptime_before, "after": uptime_after},
        "torch": torch.__version__,
        "phrase": PHRASE,
        "tokens": args.tokens,
        "reps": args.reps,
        "voice_seconds": args.voice_seconds,
        "sampler": engine.settings.sampler,
        "watermark": engine.watermark,
        "first_chunk_tokens": base.first_chunk_tokens,
        "tokens_equal": all(p["tokens_equal"] for p in pairs),
        "fast": side("fast"),
        "loop": side("loop"),
        "ratio_first_chunk_median": round(statistics.median(p["ratio_first_chunk"] for p in pairs), 3),
        "ratio_ms_per_token_median": round(statistics.median(p["ratio_ms_per_token"] for p in pairs), 3),
        "pairs": pairs,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reduced", action="store_true", help="2-layer T3 (tests' reduced_t3) instead of full size")
    parser.add_argument("--tokens", type=int, default=natural_tokens(PHRASE),
                        help="speech tokens per phrase on both sides (default: the phrase's natural length, "
                             f"{natural_tokens(PHRASE)})")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--checkpoint", help="checkpoint folder (built there on first use)")
    parser.add_argument("--voice-seconds", type=float, default=VOICE_SECONDS,
                        help=f"length of the checkpoint's built-in voice, used by both sides (default {VOICE_SECONDS:g})")
    parser.add_argument("--flush-cost", action="store_true",
                        help="only time the first flush's flow pass for a 2 s and a 10 s voice (S3Gen alone)")
    parser.add_argument("--fast-path", action="store_true",
                        help="only the T3 fast path (static_decode) vs today's loop: first chunk and ms/token "
                             f"(report also written to {FAST_PATH_JSON} unless --json)")
    parser.add_argument("--json", help="also write the report here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.flush_cost:
        load_start = os.getloadavg()[0]
        report = {"label": "CPU, random weights, timing-only" if args.device == "cpu" else "random weights, timing-only",
                  "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  "device": args.device, "cfm_steps": 10, "reps": args.reps,
                  "first_flush": flush_cost((2.0, 10.0), args.reps, args.device)}
        report["load_average_1m"] = {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)}
        report["ratio_10s_vs_2s"] = round(report["first_flush"]["10s"]["flow_ms"] / report["first_flush"]["2s"]["flow_ms"], 2)
        text = json.dumps(report, indent=2)
        print(text)
        if args.json:
            Path(args.json).write_text(text + "\n")
        return
    size = "reduced" if args.reduced else "full"
    ckpt = Path(args.checkpoint or Path(tempfile.gettempdir())
                / f"voicewire-bench-chatterbox-{size}-voice{args.voice_seconds:g}s")
    if not (ckpt / "conds.pt").is_file():
        with _t3_size(EngineSpec(name="chatterbox", reduced_t3=args.reduced)):
            build_checkpoint(ckpt, voice_seconds=args.voice_seconds)
    spec = EngineSpec(name="chatterbox", checkpoint=str(ckpt), token_budget=args.tokens, reduced_t3=args.reduced,
                      device=args.device)
    data_dir = tempfile.mkdtemp(prefix="voicewire-bench-data-")
    engine = ChatterboxEngine(Settings(model_dir=str(ckpt), device=args.device, data_dir=data_dir),
                              tuning=StreamTuning(max_new_tokens=args.tokens))
    with _t3_size(spec):
        engine.load()
    engine.warmup()
    if args.fast_path:
        text = json.dumps(fast_path(engine, spec, args), indent=2)
        print(text)
        Path(args.json or FAST_PATH_JSON).write_text(text + "\n")
        return
    package = _package_generate(spec)   # warmed up inside
    load_at_start = os.getloadavg()[0]

    pairs = []
    for i in range(args.reps):
        def generate() -> dict:
            start = time.perf_counter()
            audio = package.synthesize(PHRASE, 1)
            return {"total_s": time.perf_counter() - start, "t3_s": package.stages["t3_s"],
                    "audio_s": len(audio) / package.sample_rate}

        if i % 2 == 0:
            ours, theirs = streamed(engine, seed=7 + i), generate()
        else:
            theirs, ours = generate(), streamed(engine, seed=7 + i)
        pairs.append({"streamed": ours, "generate": theirs, "ratio": ours["first_chunk_s"] / theirs["total_s"]})
    stages = [first_chunk_stages(engine, seed=7 + i) for i in range(args.reps)]

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

    def ms(values) -> float:
        return round(1000 * statistics.median(values), 1)

    report = {
        "label": spec.label,
        "timing_only": True,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "load_average_1m": {"start": round(load_at_start, 2), "end": round(os.getloadavg()[0], 2)},
        "torch": __import__("torch").__version__,
        "phrase": PHRASE,
        "tokens": args.tokens,
        "reps": args.reps,
        "streamed_first_chunk_ms": ms(p["streamed"]["first_chunk_s"] for p in pairs),
        "streamed_total_ms": ms(p["streamed"]["total_s"] for p in pairs),
        "streamed_audio_s": round(pairs[0]["streamed"]["audio_s"], 2),
        "generate_ms": ms(p["generate"]["total_s"] for p in pairs),
        "generate_audio_s": round(pairs[0]["generate"]["audio_s"], 2),
        # the package's T3.inference (eager attention, forced by output_attentions) vs our token loop
        "generate_t3_ms_per_token": round(1000 * statistics.median(p["generate"]["t3_s"] for p in pairs) / args.tokens, 1),
        "streamed_t3_ms_per_token": round(statistics.median(s["later_tokens_s"] / max(1, s["tokens_to_first_flush"] - 1)
                                                            for s in stages) * 1000, 1),
        "first_chunk_vs_generate": round(statistics.median(p["ratio"] for p in pairs), 3),
        "first_chunk_stages_ms": {key: ms(s[key] for s in stages) for key in stages[0] if key.endswith("_s")},
        "tokens_to_first_flush": stages[0]["tokens_to_first_flush"],
        "first_flush_flow_frames": stages[0]["flow_frames"],
        "voice_prepare_ms": ms(prep),
        "voice_cache_memory_hit_ms": ms(memory_hit),
        "voice_cache_disk_hit_ms": ms(disk_hit),
        "reference_clip_s": 10.0,
        "voice_seconds": args.voice_seconds,
        "watermark": engine.watermark,
        "cfm_steps": engine.tuning.cfm_steps or 10,
        "first_chunk_tokens": engine.tuning.first_chunk_tokens,
        "pairs": pairs,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
