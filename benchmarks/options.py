"""Command-line options every scenario shares: the engine, the token pacing, buffers and output."""

from __future__ import annotations

import argparse
from pathlib import Path

from .engines import EngineSpec, build_checkpoint
from .report import REPORT_VERSION, RESULTS, now_utc
from .scenario import Pacing

CHECKPOINTS = RESULTS / "tmp"  # git-ignored: random weights are rebuilt, never committed


def add_common(parser: argparse.ArgumentParser) -> None:
    engine = parser.add_argument_group("engine")
    engine.add_argument("--engine", choices=("piper", "chatterbox"), default="piper")
    engine.add_argument("--checkpoint", help="chatterbox: random-weight checkpoint folder (built if absent)")
    engine.add_argument(
        "--token-budget",
        type=int,
        default=40,
        help="chatterbox: speech tokens per phrase, fixed (random weights never stop on their own)",
    )
    engine.add_argument(
        "--reduced-t3",
        action="store_true",
        help="chatterbox: a 2-layer T3 instead of the full 520M one (faster, less representative)",
    )
    engine.add_argument("--device", default="cpu", help="chatterbox: torch device")
    pacing = parser.add_argument_group("LLM token stream")
    pacing.add_argument("--rate", type=float, default=30.0, help="tokens per second (default 30)")
    pacing.add_argument("--jitter", type=float, default=0.3, help="+- fraction of each inter-token interval")
    pacing.add_argument(
        "--first-token-delay-ms",
        type=float,
        default=0.0,
        help="the LLM's own time to first token (before t0, not part of TTFA)",
    )
    out = parser.add_argument_group("measurement and output")
    out.add_argument(
        "--buffers-ms", default="0,100,250", help="jitter-buffer sizes the player simulation runs with"
    )
    out.add_argument("--kinds", default="chat,npc,long", help="corpus kinds to use")
    out.add_argument("--replies", type=int, default=0, help="use only this many replies (0: all)")
    out.add_argument("--seed", type=int, default=1, help="seeds the token jitter (reply i uses seed + i)")
    out.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON and the PNG")
    out.add_argument("--name", help="file name stem (default: scenario-engine)")


def engine_spec(args: argparse.Namespace) -> EngineSpec:
    if args.engine == "piper":
        return EngineSpec()
    folder = Path(args.checkpoint or CHECKPOINTS / f"chatterbox-{'reduced' if args.reduced_t3 else 'full'}")
    checkpoint = build_checkpoint(folder, reduced=args.reduced_t3)
    return EngineSpec(
        name="chatterbox",
        checkpoint=str(checkpoint),
        token_budget=args.token_budget,
        reduced_t3=args.reduced_t3,
        device=args.device,
    )


def pacing(args: argparse.Namespace) -> Pacing:
    return Pacing(args.rate, args.jitter, args.first_token_delay_ms / 1000)


def buffers(args: argparse.Namespace) -> tuple[float, ...]:
    return tuple(float(ms) / 1000 for ms in args.buffers_ms.split(",") if ms.strip())


def report_head(scenario: str, started: str, env: dict, spec: EngineSpec, args: argparse.Namespace) -> dict:
    """The fields a load scenario's report opens with (run, machine, engine, pacing, buffers), the same in
    every scenario so that their JSON files compare field by field."""
    return {
        "scenario": scenario,
        "version": REPORT_VERSION,
        "started": started,
        "finished": now_utc(),
        "machine": env,
        "engine": {"spec": spec, "label": spec.label, "timing_only": spec.timing_only},
        "pacing": pacing(args),
        "buffers_ms": [round(b * 1000) for b in buffers(args)],
    }


def kinds(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(k.strip() for k in args.kinds.split(",") if k.strip())
