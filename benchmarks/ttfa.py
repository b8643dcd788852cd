"""TTFA and gaps at one session, voicewire side by side with baselines (a) and (b) in the same run.

    python -m benchmarks.ttfa --engine piper
    python -m benchmarks.ttfa --engine chatterbox --token-budget 40 --kinds chat,npc --replies 8

Per reply, in this order: the token-streamed turn over the websocket to a server in its own process,
then baseline (a) and baseline (b) with the same engine in this process, on the same token schedule;
so every ratio is measured pairwise on one machine within seconds. Writes
results/ttfa-ENGINE.json (every turn) and results/ttfa-ENGINE.png, and prints the tables.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence

from clients import VoicewireClient

from . import options
from .baselines import sentence_at_a_time, whole_reply
from .corpus import Reply, select
from .engines import EngineSpec, OneShot, load_one_shot
from .measure import buffer_label, summarize
from .report import REPORT_VERSION, machine, now_utc, pairwise, path_summary, plot_ttfa, to_plain, write_json
from .scenario import Pacing, TurnRecord, keepalive, schedule, stream_turn
from .server import ServerProcess
from .tables import ttfa_markdown

TARGET_VS_A = 0.10  # piper: median client TTFA <= 0.10x baseline (a)
TARGET_PHRASE_CHATTERBOX = 0.25  # chatterbox: streamed first audio <= 0.25x generate() on the same phrase
TARGET_BUFFER_MS = 100


async def run_turns(
    url: str,
    spec: EngineSpec,
    one_shot: OneShot,
    replies: Sequence[Reply],
    pacing: Pacing,
    buffers_s: tuple[float, ...],
    seed: int,
    warmup: int,
) -> list[TurnRecord]:
    turns: list[TurnRecord] = []
    async with await VoicewireClient.connect(url) as client:
        for i, reply in enumerate([*replies[:warmup], *replies]):
            sched = schedule(reply.text, pacing, seed + i)
            ours = await stream_turn(client, reply, sched, pacing, spec.generation, buffers_s)
            async with keepalive(client):
                a = await asyncio.to_thread(whole_reply, reply, sched, one_shot, buffers_s, ours.phrases)
                b = await asyncio.to_thread(sentence_at_a_time, reply, sched, one_shot, buffers_s)
                began = time.perf_counter()
                await asyncio.to_thread(one_shot.synthesize, ours.first_phrase.strip(), 1)
            ours.extra["first_phrase_one_call_ms"] = (time.perf_counter() - began) * 1000
            if i >= warmup:
                turns += [ours, a, b]
            print(
                f"{reply.id:8s} voicewire {ours.ttfa_ms or float('nan'):7.0f} ms   "
                f"(a) {a.ttfa_ms or 0:7.0f} ms"
                f"   (b) {b.ttfa_ms or 0:7.0f} ms{'   [warm-up]' if i < warmup else ''}",
                flush=True,
            )
    return turns


def build_report(
    spec: EngineSpec,
    pacing: Pacing,
    buffers_s: tuple[float, ...],
    turns: list[TurnRecord],
    started: str,
    env: dict,
) -> dict:
    by_path = {p: [t for t in turns if t.path == p] for p in ("voicewire", "baseline_a", "baseline_b")}
    ours = by_path["voicewire"]
    summary = {p: path_summary(ts) for p, ts in by_path.items()}
    ratios = {
        "ttfa_vs_a": pairwise(ours, by_path["baseline_a"]),
        "ttfa_vs_b": pairwise(ours, by_path["baseline_b"]),
        "ttfb_vs_a": pairwise(ours, by_path["baseline_a"], "ttfb_ms"),
        "ttfb_vs_b": pairwise(ours, by_path["baseline_b"], "ttfb_ms"),
        "first_phrase_synth_vs_one_call": summarize(
            t.synth_ms / t.extra["first_phrase_one_call_ms"]
            for t in ours
            if t.synth_ms and t.extra.get("first_phrase_one_call_ms")
        ),
    }
    zero_gap = [b for b in sorted(buffers_s) if summary["voicewire"]["gaps"][buffer_label(b)]["gaps"] == 0]
    smallest = round(zero_gap[0] * 1000) if zero_gap else None
    targets = {
        "ttfa_vs_a": {
            "target": TARGET_VS_A,
            "measured": ratios["ttfa_vs_a"]["ratio_of_medians"],
            "per_reply_p50": ratios["ttfa_vs_a"]["p50"],
        },
        "zero_gaps_buffer_ms": {"target": TARGET_BUFFER_MS, "measured": smallest},
    }
    if spec.timing_only:
        targets["first_phrase_vs_generate"] = {
            "target": TARGET_PHRASE_CHATTERBOX,
            "measured": ratios["first_phrase_synth_vs_one_call"]["p50"],
        }
    for t in targets.values():
        t["met"] = t["measured"] is not None and t["measured"] <= t["target"]
    breakdown = {
        "text_wait_ms": summary["voicewire"]["text_wait_ms"]["p50"],
        "phrase_to_first_byte_ms": summary["voicewire"]["synth_ms"]["p50"],
        "engine_first_phrase_one_call_ms": summarize(t.extra.get("first_phrase_one_call_ms") for t in ours)[
            "p50"
        ],
        "leading_silence_ms": summary["voicewire"]["leading_silence_ms"]["p50"],
        "network_and_loop_ms": summarize(
            t.ttfb_ms - t.server_ttfa_ms for t in ours if t.server_ttfa_ms is not None
        )["p50"],
        "first_phrase_words": summarize(len(t.first_phrase.split()) for t in ours),
    }
    return {
        "scenario": "ttfa",
        "version": REPORT_VERSION,
        "started": started,
        "finished": now_utc(),
        "machine": env,
        "engine": {"spec": spec, "label": spec.label, "timing_only": spec.timing_only},
        "pacing": pacing,
        "buffers_ms": [round(b * 1000) for b in buffers_s],
        "summary": summary,
        "ratios": ratios,
        "targets": targets,
        "breakdown_p50": breakdown,
        "turns": turns,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ttfa",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options.add_common(parser)
    parser.add_argument("--warmup", type=int, default=2, help="turns run first and discarded")
    args = parser.parse_args(argv)
    spec, pace, buffers_s = options.engine_spec(args), options.pacing(args), options.buffers(args)
    replies = select(options.kinds(args), args.replies or None)
    started, env = now_utc(), machine()
    with ServerProcess(spec, wait=False) as server:
        one_shot = load_one_shot(spec)  # while the server loads its own copy
        server.wait_ready()
        turns = asyncio.run(
            run_turns(server.ws_url, spec, one_shot, replies, pace, buffers_s, args.seed, args.warmup)
        )
    report = to_plain(build_report(spec, pace, buffers_s, turns, started, env))
    stem = args.name or f"ttfa-{spec.name}"
    write_json(args.out / f"{stem}.json", report)
    plot_ttfa(args.out / f"{stem}.png", turns, f"TTFA at {pace.tokens_per_second:g} tok/s, {spec.label}")
    print(ttfa_markdown(report))
    return report


if __name__ == "__main__":
    main()
