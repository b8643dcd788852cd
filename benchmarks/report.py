"""Summaries, pairwise ratios, the machine description, the JSON of a run and its plots."""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import psutil

from .measure import summarize
from .scenario import TurnRecord

RESULTS = Path(__file__).parent / "results"
REPORT_VERSION = 1
_PACKAGES = (
    "piper-tts",
    "onnxruntime",
    "torch",
    "chatterbox-tts",
    "numpy",
    "websockets",
    "uvicorn",
    "realtimetts",
    "stream2sentence",
)


def machine() -> dict:
    """What ran the benchmark: enough to know whether two runs are comparable."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                cwd=Path(__file__).parent,
                check=False,
            ).stdout.strip()
            or None
        )
    except OSError:
        commit = None
    return {
        "cpu": cpu,
        "cores": psutil.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "gpu": None,
        "packages": versions,
        "commit": commit,
        "load_avg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def uptime() -> str:
    """`uptime`'s line (load averages over 1, 5 and 15 minutes), recorded before and after a run."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def now_utc() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def gap_stats(turns: Sequence[TurnRecord], label: str) -> dict:
    """Gaps under one jitter-buffer size: how many, how long, per minute of audio."""
    lengths = [g for t in turns for g in t.gaps_ms.get(label, [])]
    minutes = sum(t.audio_s for t in turns) / 60
    return {
        "turns_with_gaps": sum(1 for t in turns if t.gaps_ms.get(label)),
        "gaps": len(lengths),
        "total_ms": sum(lengths),
        "max_ms": max(lengths, default=0.0),
        "per_minute": len(lengths) / minutes if minutes else 0.0,
    }


def path_summary(turns: Sequence[TurnRecord]) -> dict:
    """p50/p90/p95/p99 of every per-turn number of one path, and its gaps per buffer size."""
    labels = sorted({label for t in turns for label in t.gaps_ms}, key=lambda s: int(s[:-2]))
    return {
        "turns": len(turns),
        "ttfa_ms": summarize(t.ttfa_ms for t in turns),
        "ttfb_ms": summarize(t.ttfb_ms for t in turns),
        "leading_silence_ms": summarize(t.leading_silence_ms for t in turns),
        "text_wait_ms": summarize(t.text_wait_ms for t in turns),
        "synth_ms": summarize(t.synth_ms for t in turns),
        "server_ttfa_ms": summarize(t.server_ttfa_ms for t in turns),
        "delivery_rtf": summarize(t.delivery_rtf for t in turns),
        "audio_s": summarize(t.audio_s for t in turns),
        "gaps": {label: gap_stats(turns, label) for label in labels},
    }


def pairwise(ours: Iterable[TurnRecord], base: Iterable[TurnRecord], metric: str = "ttfa_ms") -> dict:
    """Per-reply ratios ours/base of one metric (same reply, same pass), and the ratio of the medians."""
    by_reply = {(t.reply, t.run): getattr(t, metric) for t in base}
    mine = {(t.reply, t.run): getattr(t, metric) for t in ours}
    ratios = [mine[r] / by_reply[r] for r in mine if r in by_reply and mine[r] and by_reply[r]]
    stats = summarize(ratios)
    ours_p50 = summarize(mine.values())["p50"]
    base_p50 = summarize(by_reply.values())["p50"]
    stats["ratio_of_medians"] = ours_p50 / base_p50 if ours_p50 and base_p50 else None
    return stats


def to_plain(report: dict) -> dict:
    """The report with its dataclasses turned into JSON types, as a reader of the file sees it."""
    return json.loads(json.dumps(report, default=_plain))


def write_json(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


PATH_STYLE = {
    "voicewire": ("voicewire (token-streamed)", "tab:blue"),
    "baseline_a": ("(a) whole reply, one call", "tab:red"),
    "baseline_b": ("(b) sentence at a time", "tab:orange"),
    "baseline_c": ("(c) RealtimeTTS, same Piper voice", "tab:green"),
    "baseline_c_stock": ("RealtimeTTS stock PiperEngine", "tab:gray"),
}


def plot_ttfa(path: Path, turns: Sequence[TurnRecord], title: str) -> None:
    """TTFA distribution of each path (CDF, log time) and the per-reply ratios to each baseline."""
    plt = _pyplot()
    fig, (cdf, ratio) = plt.subplots(1, 2, figsize=(11, 4))
    for name, (label, color) in PATH_STYLE.items():
        values = sorted(t.ttfa_ms for t in turns if t.path == name and t.ttfa_ms is not None)
        if values:
            cdf.step(
                values,
                [(i + 1) / len(values) for i in range(len(values))],
                where="post",
                label=label,
                color=color,
            )
    cdf.set_xscale("log")
    cdf.set_xlabel("client-side TTFA to speech onset (ms, log)")
    cdf.set_ylabel("fraction of turns")
    cdf.grid(alpha=0.3, which="both")
    cdf.legend(fontsize=8)
    ours = {(t.reply, t.run): t.ttfa_ms for t in turns if t.path == "voicewire"}
    bins = np.geomspace(0.01, 10, 31)
    for name in ("baseline_a", "baseline_b", "baseline_c"):
        label, color = PATH_STYLE[name]
        pairs = [
            (ours[t.reply, t.run] / t.ttfa_ms)
            for t in turns
            if t.path == name and t.ttfa_ms and ours.get((t.reply, t.run))
        ]
        if pairs:
            ratio.hist(
                np.clip(pairs, bins[0], bins[-1]),
                bins=bins,
                alpha=0.6,
                color=color,
                label=f"voicewire / {label}",
            )
    ratio.set_xscale("log")
    ratio.axvline(0.10, color="black", linestyle="--", linewidth=1, label="target vs (a): 0.10")
    if any(t.path == "baseline_c" for t in turns):
        ratio.axvline(0.70, color="tab:green", linestyle=":", linewidth=1, label="target vs (c): p50 0.70")
    ratio.set_xlabel("per-reply TTFA ratio (log)")
    ratio.set_ylabel("replies")
    ratio.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_concurrency(path: Path, levels: Sequence[dict], bound_ms: float, title: str) -> None:
    """p95 TTFA, gaps per minute and server CPU against the number of concurrent sessions."""
    plt = _pyplot()
    fig, (ttfa, gaps, cpu) = plt.subplots(1, 3, figsize=(13, 3.8))
    ns = [lv["sessions"] for lv in levels]
    ttfa.plot(ns, [lv["ttfa_ms"]["p95"] for lv in levels], marker="o", label="p95")
    ttfa.plot(ns, [lv["ttfa_ms"]["p50"] for lv in levels], marker=".", linestyle=":", label="p50")
    ttfa.axhline(bound_ms, color="black", linestyle="--", linewidth=1, label=f"bound {bound_ms:g} ms")
    ttfa.set_xlabel("concurrent sessions")
    ttfa.set_ylabel("client-side TTFA (ms)")
    ttfa.legend(fontsize=8)
    for label in levels[0]["gaps"]:
        gaps.plot(ns, [lv["gaps"][label]["per_minute"] for lv in levels], marker="o", label=f"buffer {label}")
    gaps.set_xlabel("concurrent sessions")
    gaps.set_ylabel("gaps per minute of audio")
    gaps.legend(fontsize=8)
    cpu.plot(ns, [100 * (lv["cpu"]["server_mean"] or 0) for lv in levels], marker="o", label="server mean")
    cpu.plot(
        ns,
        [100 * (lv["cpu"]["machine_mean"] or 0) for lv in levels],
        marker=".",
        linestyle=":",
        label="whole machine mean",
    )
    cpu.set_ylim(0, 105)
    cpu.set_xlabel("concurrent sessions")
    cpu.set_ylabel("CPU (% of all cores)")
    cpu.legend(fontsize=8)
    for ax in (ttfa, gaps, cpu):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
