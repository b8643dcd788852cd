"""TTFA and gaps at one session, voicewire side by side with its baselines in the same run.

    python -m benchmarks.ttfa --engine piper
    python -m benchmarks.ttfa --engine piper --peer --passes 2      # with RealtimeTTS, issue 15
    python -m benchmarks.ttfa --engine chatterbox --token-budget 40 --kinds chat,npc --replies 8

Per reply, in this order: the token-streamed turn over the websocket to a server in its own process,
then baseline (a) and baseline (b) with the same engine in this process, on the same token schedule,
and with `--peer` baseline (c), RealtimeTTS on the same loaded Piper voice, and RealtimeTTS's stock
PiperEngine, both fed the same deltas on the same schedule in real time; so every ratio is measured
pairwise on one machine within seconds. `--passes 2` runs the corpus twice (new jitter each pass).
Records `uptime` before and after, prints the peer's settings, writes results/ttfa-ENGINE.json
(every turn), results/ttfa-ENGINE.png and results/ttfa-ENGINE.md (the tables for docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence

from clients import VoicewireClient

from . import options
from .baselines import sentence_at_a_time, whole_reply
from .corpus import Reply, select
from .engines import EngineSpec, OneShot, load_one_shot
from .measure import buffer_label, summarize
from .report import (
    REPORT_VERSION,
    machine,
    now_utc,
    pairwise,
    path_summary,
    plot_ttfa,
    to_plain,
    uptime,
    write_json,
)
from .scenario import Pacing, TurnRecord, keepalive, schedule, stream_turn
from .server import ServerProcess
from .tables import ttfa_markdown

TARGET_VS_A = 0.10  # chatterbox: median client TTFA <= 0.10x (a); piper: per-reply median on `long` replies
TARGET_VS_C_P50 = 0.70  # piper: per-reply TTFA ratio to RealtimeTTS, median
TARGET_VS_C_P90 = 0.90  # ... and 90th percentile
TARGET_PHRASE_CHATTERBOX = 0.25  # chatterbox: streamed first audio <= 0.25x generate() on the same phrase
TARGET_BUFFER_MS = 100
PATHS = ("voicewire", "baseline_a", "baseline_b", "baseline_c", "baseline_c_stock")


async def run_turns(
    url: str,
    spec: EngineSpec,
    one_shot: OneShot,
    peers: Sequence,
    replies: Sequence[Reply],
    pacing: Pacing,
    buffers_s: tuple[float, ...],
    seed: int,
    warmup: int,
    passes: int = 1,
) -> list[TurnRecord]:
    turns: list[TurnRecord] = []
    order = [(None, r) for r in replies[:warmup]] + [(p, r) for p in range(passes) for r in replies]
    async with await VoicewireClient.connect(url) as client:
        for i, (run, reply) in enumerate(order):
            sched = schedule(reply.text, pacing, seed + i)
            ours = await stream_turn(client, reply, sched, pacing, spec.generation, buffers_s)
            async with keepalive(client):
                a = await asyncio.to_thread(whole_reply, reply, sched, one_shot, buffers_s, ours.phrases)
                b = await asyncio.to_thread(sentence_at_a_time, reply, sched, one_shot, buffers_s)
                began = time.perf_counter()
                await asyncio.to_thread(one_shot.synthesize, ours.first_phrase.strip(), 1)
                ours.extra["first_phrase_one_call_ms"] = (time.perf_counter() - began) * 1000
                others = [await asyncio.to_thread(peer.turn, reply, sched, buffers_s) for peer in peers]
            row = [ours, a, b, *others]
            if run is not None:
                for t in row:
                    t.run = run
                turns += row
            print(
                f"{reply.id:8s} "
                + "   ".join(f"{_SHORT[t.path]} {t.ttfa_ms or float('nan'):6.0f} ms" for t in row)
                + ("   [warm-up]" if run is None else f"   [pass {run + 1}]"),
                flush=True,
            )
    return turns


_SHORT = {
    "voicewire": "voicewire",
    "baseline_a": "(a)",
    "baseline_b": "(b)",
    "baseline_c": "(c)",
    "baseline_c_stock": "stock",
}


def build_report(
    spec: EngineSpec,
    pacing: Pacing,
    buffers_s: tuple[float, ...],
    turns: list[TurnRecord],
    started: str,
    env: dict,
    peers: dict[str, dict] | None = None,
) -> dict:
    by_path = {p: [t for t in turns if t.path == p] for p in PATHS if any(t.path == p for t in turns)}
    ours = by_path["voicewire"]
    summary = {p: path_summary(ts) for p, ts in by_path.items()}
    ratios = {}
    for path, tag in (
        ("baseline_a", "a"),
        ("baseline_b", "b"),
        ("baseline_c", "c"),
        ("baseline_c_stock", "stock"),
    ):
        if path in by_path:
            ratios[f"ttfa_vs_{tag}"] = pairwise(ours, by_path[path])
            ratios[f"ttfb_vs_{tag}"] = pairwise(ours, by_path[path], "ttfb_ms")
    ratios["first_phrase_synth_vs_one_call"] = summarize(
        t.synth_ms / t.extra["first_phrase_one_call_ms"]
        for t in ours
        if t.synth_ms and t.extra.get("first_phrase_one_call_ms")
    )
    kinds = sorted({t.kind for t in ours})
    by_kind = {
        kind: {
            tag: pairwise([t for t in ours if t.kind == kind], [t for t in by_path[path] if t.kind == kind])
            for path, tag in (("baseline_a", "a"), ("baseline_c", "c"))
            if path in by_path
        }
        for kind in kinds
    }
    if "baseline_c" in by_path:
        slower = pairwise(ours, by_path["baseline_c"])
        slower["slower_replies"] = sum(
            1
            for t in ours
            for c in by_path["baseline_c"]
            if (c.reply, c.run) == (t.reply, t.run) and t.ttfa_ms and c.ttfa_ms and t.ttfa_ms > c.ttfa_ms
        )
        ratios["ttfa_vs_c"] = slower
    targets = _targets(spec, buffers_s, summary, ratios, by_kind)
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
        "passes": max((t.run for t in turns), default=0) + 1,
        "peers": peers or {},
        "summary": summary,
        "ratios": ratios,
        "by_kind": by_kind,
        "targets": targets,
        "breakdown_p50": breakdown,
        "turns": turns,
    }


def _targets(
    spec: EngineSpec, buffers_s: tuple[float, ...], summary: dict, ratios: dict, by_kind: dict
) -> dict:
    """Chatterbox keeps its engine-level targets; Piper is held to issue 15's, where their paths ran."""
    gaps = summary["voicewire"]["gaps"]
    zero_gap = [b for b in sorted(buffers_s) if gaps[buffer_label(b)]["gaps"] == 0]
    targets: dict[str, dict] = {}
    if spec.timing_only:
        targets["ttfa_vs_a"] = {
            "target": TARGET_VS_A,
            "measured": ratios["ttfa_vs_a"]["ratio_of_medians"],
            "per_reply_p50": ratios["ttfa_vs_a"]["p50"],
        }
        targets["zero_gaps_buffer_ms"] = {
            "target": TARGET_BUFFER_MS,
            "measured": round(zero_gap[0] * 1000) if zero_gap else None,
        }
        targets["first_phrase_vs_generate"] = {
            "target": TARGET_PHRASE_CHATTERBOX,
            "measured": ratios["first_phrase_synth_vs_one_call"]["p50"],
        }
    else:
        if "ttfa_vs_c" in ratios:
            targets["ttfa_vs_c_p50"] = {"target": TARGET_VS_C_P50, "measured": ratios["ttfa_vs_c"]["p50"]}
            targets["ttfa_vs_c_p90"] = {"target": TARGET_VS_C_P90, "measured": ratios["ttfa_vs_c"]["p90"]}
        label = buffer_label(TARGET_BUFFER_MS / 1000)
        targets["gapped_turns_100ms"] = {
            "target": 0,
            "measured": gaps[label]["turns_with_gaps"] if label in gaps else None,
        }
        if "long" in by_kind and "a" in by_kind["long"]:
            targets["long_ttfa_vs_a_p50"] = {"target": TARGET_VS_A, "measured": by_kind["long"]["a"]["p50"]}
    for t in targets.values():
        t["met"] = t["measured"] is not None and t["measured"] <= t["target"]
    return targets


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ttfa",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options.add_common(parser)
    parser.add_argument("--warmup", type=int, default=2, help="turns run first and discarded")
    parser.add_argument("--passes", type=int, default=1, help="passes over the corpus (each with new jitter)")
    parser.add_argument(
        "--peer",
        action="store_true",
        help="piper: add baseline (c), RealtimeTTS on the same voice, and its stock PiperEngine (extra 'peer')",
    )
    parser.add_argument(
        "--no-stock", action="store_true", help="with --peer: leave out the stock PiperEngine row"
    )
    args = parser.parse_args(argv)
    if args.peer and args.engine != "piper":
        parser.error("--peer: RealtimeTTS runs on the piper engine only")
    if args.passes < 1:
        parser.error("--passes: at least 1")
    spec, pace, buffers_s = options.engine_spec(args), options.pacing(args), options.buffers(args)
    replies = select(options.kinds(args), args.replies or None)
    started, env = now_utc(), machine()
    env["uptime_before"] = uptime()
    print(f"uptime before: {env['uptime_before']}", flush=True)
    with ServerProcess(spec, wait=False) as server:
        one_shot = load_one_shot(spec)  # while the server loads its own copy
        peers = []
        if args.peer:
            from .peer_realtimetts import peers as make_peers

            peers = make_peers(one_shot.engine, spec.generation, stock=not args.no_stock)
            for peer in peers:
                print(
                    f"{peer.path} settings:\n{json.dumps(peer.settings, indent=1, default=str)}", flush=True
                )
        server.wait_ready()
        try:
            turns = asyncio.run(
                run_turns(
                    server.ws_url,
                    spec,
                    one_shot,
                    peers,
                    replies,
                    pace,
                    buffers_s,
                    args.seed,
                    args.warmup,
                    args.passes,
                )
            )
        finally:
            for peer in peers:
                peer.close()
    env["uptime_after"] = uptime()
    print(f"uptime after: {env['uptime_after']}", flush=True)
    settings = {peer.path: peer.settings for peer in peers}
    report = to_plain(build_report(spec, pace, buffers_s, turns, started, env, settings))
    stem = args.name or f"ttfa-{spec.name}"
    write_json(args.out / f"{stem}.json", report)
    plot_ttfa(args.out / f"{stem}.png", turns, f"TTFA at {pace.tokens_per_second:g} tok/s, {spec.label}")
    tables = ttfa_markdown(report)
    (args.out / f"{stem}.md").write_text(tables + "\n")
    print(tables)
    return report


if __name__ == "__main__":
    main()
