"""Concurrency sweep: N agent sessions at once against one server, N = 1, 2, 4, ...

    python -m benchmarks.concurrency --engine piper --sessions 1,2,4,8,16

Each session behaves like a voice agent: it streams a reply at the token rate, its listener hears
the whole turn, thinks, and the next reply starts. Sessions start staggered over `--stagger-ms`.
Per level: p95 TTFA, gaps per minute of audio, delivery RTF and the server's CPU use (psutil, its
own process and the whole machine). Reports the largest N with zero gaps and p95 TTFA under the
bound. Writes results/concurrency-ENGINE.json and .png.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import time
from collections.abc import Sequence

from clients import VoicewireClient

from . import options
from .corpus import Reply, select
from .engines import EngineSpec
from .measure import buffer_label, summarize
from .report import gap_stats, machine, now_utc, plot_concurrency, to_plain, write_json
from .scenario import Pacing, TurnRecord, schedule, stream_turn
from .server import CpuMonitor, ServerProcess
from .tables import concurrency_markdown


async def agent(
    url: str,
    index: int,
    spec: EngineSpec,
    replies: Sequence[Reply],
    pacing: Pacing,
    buffers_s: tuple[float, ...],
    seed: int,
    start_s: float,
    think_s: float,
) -> list[TurnRecord]:
    """One session: its replies one after another, each after the listener heard the previous one."""
    await asyncio.sleep(start_s)
    turns = []
    async with await VoicewireClient.connect(url) as client:
        for j, reply in enumerate(replies):
            began = time.monotonic()
            turn = await stream_turn(
                client,
                reply,
                schedule(reply.text, pacing, seed + 1000 * index + j),
                pacing,
                spec.generation,
                buffers_s,
            )
            turn.session = index
            turns.append(turn)
            if j == len(replies) - 1:
                break
            heard = (
                pacing.first_delay_s
                + (turn.ttfb_ms + sum(turn.gaps_ms[buffer_label(0.0)])) / 1000
                + turn.audio_s
            )
            await asyncio.sleep(max(0.0, began + heard + think_s - time.monotonic()))
    return turns


async def level(
    url: str,
    n: int,
    spec: EngineSpec,
    corpus: Sequence[Reply],
    turns_per_session: int,
    pacing: Pacing,
    buffers_s: tuple[float, ...],
    seed: int,
    stagger_s: float,
    think_s: float,
) -> list[TurnRecord]:
    rng = random.Random(seed + n)
    jobs = []
    for i in range(n):
        replies = [corpus[(i * turns_per_session + j) % len(corpus)] for j in range(turns_per_session)]
        jobs.append(agent(url, i, spec, replies, pacing, buffers_s, seed, rng.uniform(0, stagger_s), think_s))
    return [t for turns in await asyncio.gather(*jobs) for t in turns]


def level_summary(n: int, turns: Sequence[TurnRecord], cpu: dict, wall_s: float) -> dict:
    labels = sorted({lb for t in turns for lb in t.gaps_ms}, key=lambda s: int(s[:-2]))
    return {
        "sessions": n,
        "turns": len(turns),
        "wall_s": wall_s,
        "ttfa_ms": summarize(t.ttfa_ms for t in turns),
        "ttfb_ms": summarize(t.ttfb_ms for t in turns),
        "server_ttfa_ms": summarize(t.server_ttfa_ms for t in turns),
        "delivery_rtf": summarize(t.delivery_rtf for t in turns),
        "audio_s_total": sum(t.audio_s for t in turns),
        "gaps": {lb: gap_stats(turns, lb) for lb in labels},
        "cpu": cpu,
    }


def passes(lv: dict, buffer: str, bound_ms: float) -> bool:
    p95 = lv["ttfa_ms"]["p95"]
    return lv["gaps"][buffer]["gaps"] == 0 and p95 is not None and p95 <= bound_ms


def capacity(levels: Sequence[dict], buffer: str, bound_ms: float) -> dict:
    """The largest N that passes, with every smaller N passing too."""
    best = None
    for lv in sorted(levels, key=lambda lv: lv["sessions"]):
        if not passes(lv, buffer, bound_ms):
            break
        best = lv["sessions"]
    return {"sessions": best, "buffer": buffer, "bound_ms": bound_ms}


async def sweep(server: ServerProcess, spec: EngineSpec, args: argparse.Namespace) -> tuple[list[dict], list]:
    pace, buffers_s = options.pacing(args), options.buffers(args)
    corpus = select(options.kinds(args), args.replies or None)
    buffer = buffer_label(args.capacity_buffer_ms / 1000)
    await level(server.ws_url, 1, spec, corpus, 1, pace, buffers_s, args.seed, 0.0, 0.0)  # warm-up
    levels, turns = [], []
    for n in args.sessions:
        began = time.monotonic()
        with CpuMonitor(server.pid) as cpu:
            got = await level(
                server.ws_url,
                n,
                spec,
                corpus,
                args.turns,
                pace,
                buffers_s,
                args.seed,
                args.stagger_ms / 1000,
                args.think_ms / 1000,
            )
        lv = level_summary(n, got, cpu.summary(), time.monotonic() - began)
        levels.append(lv)
        turns += [{"sessions": n, **dataclasses.asdict(t)} for t in got]
        print(
            f"N={n:3d}  TTFA p50 {lv['ttfa_ms']['p50']:6.0f} ms  p95 {lv['ttfa_ms']['p95']:6.0f} ms  "
            f"gaps({buffer}) {lv['gaps'][buffer]['gaps']:3d}  "
            f"server CPU {100 * (lv['cpu']['server_mean'] or 0):3.0f}%",
            flush=True,
        )
        if not args.full_sweep and not passes(lv, buffer, args.p95_bound_ms):
            break
    return levels, turns


def session_levels(text: str) -> list[int]:
    """`1,2,4` -> [1, 2, 4]; every level is a positive number of sessions."""
    try:
        levels = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--sessions: {text!r} is not a comma-separated list of numbers"
        ) from None
    if not levels or levels[0] < 1:
        raise argparse.ArgumentTypeError(f"--sessions: levels must be 1 or more, got {text!r}")
    return levels


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.concurrency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options.add_common(parser)
    parser.add_argument(
        "--sessions", type=session_levels, default="1,2,4,8,16", help="the levels of the sweep"
    )
    parser.add_argument("--turns", type=int, default=3, help="turns per session and level")
    parser.add_argument("--stagger-ms", type=float, default=2000.0, help="sessions start within this window")
    parser.add_argument(
        "--think-ms", type=float, default=1000.0, help="pause after the listener heard a turn"
    )
    parser.add_argument("--p95-bound-ms", type=float, default=1000.0, help="p95 TTFA bound for the capacity")
    parser.add_argument(
        "--capacity-buffer-ms", type=float, default=100.0, help="jitter buffer for the capacity"
    )
    parser.add_argument("--workers", type=int, default=0, help="server inference threads (0: its default)")
    parser.add_argument("--full-sweep", action="store_true", help="keep going after the first failing level")
    args = parser.parse_args(argv)
    if args.capacity_buffer_ms / 1000 not in options.buffers(args):
        args.buffers_ms += f",{args.capacity_buffer_ms:g}"
    spec = options.engine_spec(args)
    started, env = now_utc(), machine()
    with ServerProcess(spec, workers=args.workers) as server:
        levels, turns = asyncio.run(sweep(server, spec, args))
    report = to_plain(
        options.report_head("concurrency", started, env, spec, args)
        | {
            "settings": {
                "turns_per_session": args.turns,
                "stagger_ms": args.stagger_ms,
                "think_ms": args.think_ms,
                "workers": args.workers,
            },
            "levels": levels,
            "capacity": capacity(levels, buffer_label(args.capacity_buffer_ms / 1000), args.p95_bound_ms),
            "turns": turns,
        }
    )
    stem = args.name or f"concurrency-{spec.name}"
    write_json(args.out / f"{stem}.json", report)
    plot_concurrency(
        args.out / f"{stem}.png",
        report["levels"],
        args.p95_bound_ms,
        f"Concurrency sweep at {args.rate:g} tok/s, {spec.label}",
    )
    print(concurrency_markdown(report))
    return report


if __name__ == "__main__":
    main()
