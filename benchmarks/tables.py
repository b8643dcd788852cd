"""Markdown tables from a run's JSON, as they go into docs/benchmarks.md.

python -m benchmarks.tables benchmarks/results/ttfa-piper.json benchmarks/results/concurrency-piper.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .measure import summarize

PATH_NAMES = {
    "voicewire": "voicewire (token-streamed)",
    "baseline_a": "(a) whole reply, one call",
    "baseline_b": "(b) sentence at a time",
}


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}×"


def _header(report: dict) -> str:
    m = report["machine"]
    engine = report["engine"]
    pace = report["pacing"]
    flag = " **Timing-only: random weights.**" if engine["timing_only"] else ""
    return (
        f"Run {report['started']} · {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB · "
        f"engine {engine['label']} · {pace['tokens_per_second']:g} tok/s ±{pace['jitter']:.0%} jitter, "
        f"first-token delay {pace['first_delay_s'] * 1000:g} ms · commit {m.get('commit')}.{flag}"
    )


def engine_rtf(report: dict, path: str) -> float | None:
    """Median synthesis seconds per audio second of a baseline's one-shot calls (the engine's own RTF)."""
    values = [
        t["extra"]["synth_s_total"] / t["audio_s"]
        for t in report["turns"]
        if t["path"] == path and t["audio_s"] and "synth_s_total" in t["extra"]
    ]
    return summarize(values)["p50"]


def ttfa_markdown(report: dict) -> str:
    s = report["summary"]
    labels = [f"{b}ms" for b in report["buffers_ms"]]
    lines = [
        _header(report),
        "",
        "| path | turns | TTFA p50 | p90 | p99 | TTFB p50 | leading silence p50 | server `ttfa_ms` p50 | "
        "delivery RTF p50 | engine RTF p50 | "
        + " | ".join(f"gaps, {lb} buffer (turns)" for lb in labels)
        + " |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(labels),
    ]
    for path, name in PATH_NAMES.items():
        p = s[path]
        gaps = " | ".join(f"{p['gaps'][lb]['gaps']} ({p['gaps'][lb]['turns_with_gaps']})" for lb in labels)
        rtf, synth_rtf = p["delivery_rtf"]["p50"], engine_rtf(report, path)
        lines.append(
            f"| {name} | {p['turns']} | {_ms(p['ttfa_ms']['p50'])} | {_ms(p['ttfa_ms']['p90'])} | "
            f"{_ms(p['ttfa_ms']['p99'])} | {_ms(p['ttfb_ms']['p50'])} | "
            f"{_ms(p['leading_silence_ms']['p50'])} | "
            f"{_ms(p['server_ttfa_ms']['p50'])} | {_rtf(rtf)} | {_rtf(synth_rtf)} | {gaps} |"
        )
    r = report["ratios"]
    lines += [
        "",
        "| voicewire ÷ baseline | per-reply p50 | per-reply p90 | ratio of medians |",
        "|---|---:|---:|---:|",
    ]
    for key, name in (
        ("ttfa_vs_a", "TTFA ÷ (a)"),
        ("ttfa_vs_b", "TTFA ÷ (b)"),
        ("ttfb_vs_a", "TTFB ÷ (a)"),
        ("ttfb_vs_b", "TTFB ÷ (b)"),
    ):
        lines.append(
            f"| {name} | {_x(r[key]['p50'])} | {_x(r[key]['p90'])} | {_x(r[key]['ratio_of_medians'])} |"
        )
    phrase = r["first_phrase_synth_vs_one_call"]
    lines.append(
        f"| first phrase: `phrase` → first byte ÷ one engine call on that phrase | {_x(phrase['p50'])} | "
        f"{_x(phrase['p90'])} | – |"
    )
    lines += ["", "| target | wanted | measured | met |", "|---|---:|---:|:---:|"]
    for key, t in report["targets"].items():
        unit = " ms" if key.endswith("_ms") else "×"
        measured = (
            "none of those run"
            if t["measured"] is None
            else (f"{t['measured']:g}{unit}" if unit == " ms" else f"{t['measured']:.3f}×")
        )
        met = "yes" if t["met"] else "**no**"
        lines.append(f"| {key} | ≤ {t['target']:g}{unit} | {measured} | {met} |")
    b = report["breakdown_p50"]
    words = b["first_phrase_words"]
    lines += [
        "",
        "Median per-stage breakdown of voicewire's TTFA: waiting for text (first text sent → `phrase` "
        f"received) {_ms(b['text_wait_ms'])} ms; `phrase` → first audio byte "
        f"{_ms(b['phrase_to_first_byte_ms'])} ms (one engine call on that phrase alone: "
        f"{_ms(b['engine_first_phrase_one_call_ms'])} ms); leading silence "
        f"{_ms(b['leading_silence_ms'])} ms; network and event loops (client TTFB − server `ttfa_ms`) "
        f"{_ms(b['network_and_loop_ms'])} ms. First phrase: {words['p50']:.0f} words p50 "
        f"({words['p90']:.0f} p90).",
    ]
    return "\n".join(lines)


def concurrency_markdown(report: dict) -> str:
    labels = [f"{b}ms" for b in report["buffers_ms"]]
    lines = [
        _header(report),
        "",
        "| sessions | turns | TTFA p50 | TTFA p95 | TTFB p95 | delivery RTF p95 | "
        + " | ".join(f"gaps/min, {lb} buffer" for lb in labels)
        + " | server CPU mean | machine CPU mean |",
        "|---:|---:|---:|---:|---:|---:|" + "---:|" * len(labels) + "---:|---:|",
    ]
    for lv in report["levels"]:
        gaps = " | ".join(f"{lv['gaps'][lb]['per_minute']:.2f} ({lv['gaps'][lb]['gaps']})" for lb in labels)
        cpu = lv["cpu"]
        rtf = lv["delivery_rtf"]["p95"]
        lines.append(
            f"| {lv['sessions']} | {lv['turns']} | {_ms(lv['ttfa_ms']['p50'])} | "
            f"{_ms(lv['ttfa_ms']['p95'])} | "
            f"{_ms(lv['ttfb_ms']['p95'])} | {'–' if rtf is None else f'{rtf:.2f}'} | {gaps} | "
            f"{_pct(cpu['server_mean'])} | {_pct(cpu['machine_mean'])} |"
        )
    best = report["capacity"]
    lines += [
        "",
        f"Largest N with zero gaps ({best['buffer']} buffer) and p95 TTFA ≤ {best['bound_ms']:g} ms: "
        f"**{best['sessions'] if best['sessions'] is not None else 'none of those run'}**.",
    ]
    return "\n".join(lines)


def _rtf(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.tables",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("reports", nargs="+", type=Path)
    for path in parser.parse_args(argv).reports:
        report = json.loads(path.read_text())
        render = ttfa_markdown if report["scenario"] == "ttfa" else concurrency_markdown
        print(f"<!-- {path.name} -->\n{render(report)}\n")


if __name__ == "__main__":
    main()
