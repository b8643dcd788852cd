"""Two commits of voicewire side by side: the same token streams against each one's server, reply
by reply, alternating which goes first, on one machine within seconds of each other.

    python -m benchmarks.ab_commits --baseline 44bb99e              # that commit vs this work tree
    python -m benchmarks.ab_commits --baseline 44bb99e --passes 2 --candidate HEAD

Each side is the real `voicewire serve --engine piper` of its own checkout (a git worktree for a
revision), run as its own process from its own tree. Per reply, client-side speech-onset TTFA is
measured on both and reported as the candidate/baseline ratio; `uptime` is recorded before and
after. Writes results/ab-piper.json and prints the markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from clients import VoicewireClient

from .corpus import select
from .measure import summarize
from .report import RESULTS, machine, now_utc, uptime, write_json
from .scenario import Pacing, TurnRecord, schedule, stream_turn
from .server import HOST, free_port

ROOT = Path(__file__).resolve().parent.parent
GENERATION = {"exaggeration": 0.5, "temperature": 0.667}


@contextlib.contextmanager
def checkout(rev: str | None) -> Iterator[Path]:
    """The tree of `rev` as a temporary git worktree, or this work tree for None."""
    if rev is None:
        yield ROOT
        return
    path = Path(tempfile.mkdtemp(prefix="voicewire-ab-"))
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(path), rev], cwd=ROOT, check=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False)


@contextlib.contextmanager
def serve(tree: Path, log: Path) -> Iterator[str]:
    """`voicewire serve --engine piper` of `tree` (imported from that tree, not the installed one)."""
    port = free_port()
    entry = "stream.cli" if (tree / "stream" / "cli.py").exists() else "stream.server.cli"
    env = {**os.environ, "PYTHONPATH": str(tree), "VOICEWIRE_DATA_DIR": tempfile.mkdtemp(prefix="voicewire-ab-data-")}
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", entry, "serve", "--engine", "piper", "--port", str(port)],
                                cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            until = time.monotonic() + 300
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server of {tree} exited:\n{log.read_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://{HOST}:{port}/healthz", timeout=1).status_code == 200:
                        break
                if time.monotonic() > until:
                    raise RuntimeError(f"server of {tree} not up:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
            yield f"ws://{HOST}:{port}/v1/stream"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


async def one_turn(url: str, reply, sched, pacing: Pacing) -> TurnRecord:
    async with await VoicewireClient.connect(url) as client:
        return await stream_turn(client, reply, sched, pacing, GENERATION, (0.0, 0.1))


async def run(urls: dict[str, str], replies: list, passes: int, pacing: Pacing, seed: int) -> list[dict]:
    rows = []
    for url in urls.values():  # warm each server once, outside the measurement
        reply = replies[0]
        await one_turn(url, reply, schedule(reply.text, pacing, seed), pacing)
    for run_index in range(passes):
        for i, reply in enumerate(replies):
            sched = schedule(reply.text, pacing, seed + 1000 * run_index + i)
            order = list(urls) if (i + run_index) % 2 == 0 else list(reversed(urls))
            turns = {name: await one_turn(urls[name], reply, sched, pacing) for name in order}
            rows.append({"reply": reply.id, "kind": reply.kind, "run": run_index, "first": order[0],
                         **{f"{name}_ttfa_ms": turns[name].ttfa_ms for name in urls},
                         **{f"{name}_gapped": bool(turns[name].gaps_ms.get("100ms")) for name in urls}})
            print(f"{reply.id:24s} " + "  ".join(f"{n} {turns[n].ttfa_ms:7.1f} ms" for n in urls), flush=True)
    return rows


def table(rows: list[dict], baseline: str, candidate: str) -> str:
    ratios = [r["candidate_ttfa_ms"] / r["baseline_ttfa_ms"] for r in rows
              if r["candidate_ttfa_ms"] and r["baseline_ttfa_ms"]]
    stats = {side: summarize(r[f"{side}_ttfa_ms"] for r in rows) for side in ("baseline", "candidate")}
    ratio = summarize(ratios)
    gapped = {side: sum(r[f"{side}_gapped"] for r in rows) for side in ("baseline", "candidate")}
    return "\n".join([
        "| | turns | TTFA p50 ms | TTFA p90 ms | gapped turns (100 ms buffer) |",
        "|---|---|---|---|---|",
        f"| baseline `{baseline}` | {len(rows)} | {stats['baseline']['p50']:.0f} | {stats['baseline']['p90']:.0f} "
        f"| {gapped['baseline']} |",
        f"| candidate `{candidate}` | {len(rows)} | {stats['candidate']['p50']:.0f} | "
        f"{stats['candidate']['p90']:.0f} | {gapped['candidate']} |",
        f"| **candidate / baseline, per reply** | {len(ratios)} | **{ratio['p50']:.2f}x** | {ratio['p90']:.2f}x | |",
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ab_commits", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="git revision to compare against")
    parser.add_argument("--candidate", default=None, help="git revision (default: this work tree)")
    parser.add_argument("--passes", type=int, default=1)
    parser.add_argument("--tokens-per-second", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--replies", type=int, default=None, help="only the first N replies (a smoke run)")
    args = parser.parse_args(argv)
    pacing = Pacing(tokens_per_second=args.tokens_per_second, jitter=0.3)
    revs = {"baseline": args.baseline, "candidate": args.candidate}
    load_before = uptime()
    with checkout(args.baseline) as base_tree, checkout(args.candidate) as cand_tree, \
            serve(base_tree, RESULTS / "tmp" / "ab-baseline.log") as base_url, \
            serve(cand_tree, RESULTS / "tmp" / "ab-candidate.log") as cand_url:
        rows = asyncio.run(run({"baseline": base_url, "candidate": cand_url}, select(limit=args.replies), args.passes,
                               pacing, args.seed))
    load_after = uptime()
    described = {k: subprocess.run(["git", "rev-parse", "--short", v or "HEAD"], cwd=ROOT, capture_output=True,
                                   text=True).stdout.strip() + ("" if v else "+work tree") for k, v in revs.items()}
    report = {"date": now_utc(), "machine": machine(), "uptime_before": load_before, "uptime_after": load_after,
              "revisions": described, "pacing": vars(pacing), "turns": rows}
    write_json(RESULTS / "ab-piper.json", report)
    print(f"\nuptime before: {load_before}\nuptime after:  {load_after}\n")
    print(table(rows, described["baseline"], described["candidate"]))


if __name__ == "__main__":
    main()
