"""Markdown tables from a run's JSON, as they go into docs/benchmarks.md.

python -m benchmarks.tables benchmarks/results/ttfa-piper.json benchmarks/results/concurrency-piper.json
python -m benchmarks.tables benchmarks/results/replay-piper.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .measure import summarize
from .replay import markdown as replay_markdown

PATH_NAMES = {
    "voicewire": "voicewire (token-streamed)",
    "baseline_a": "(a) whole reply, one call",
    "baseline_b": "(b) sentence at a time",
    "baseline_c": "(c) RealtimeTTS 0.8.10, same Piper voice",
    "baseline_c_stock": "RealtimeTTS stock PiperEngine (reference)",
}
BASELINE_TAGS = {"a": "(a)", "b": "(b)", "c": "(c)", "stock": "stock PiperEngine"}


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}×"


def _header(report: dict) -> str:
    m = report["machine"]
    engine = report["engine"]
    pace = report["pacing"]
    flag = " **Timing-only: random weights.**" if engine["timing_only"] else ""
    passes = f" · {report['passes']} passes over the corpus" if report.get("passes", 1) > 1 else ""
    load = (
        f"\n\n`uptime` before: `{m['uptime_before']}`; after: `{m['uptime_after']}`."
        if m.get("uptime_before") and m.get("uptime_after")
        else ""
    )
    return (
        f"Run {report['started']} · {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB · "
        f"engine {engine['label']} · {pace['tokens_per_second']:g} tok/s ±{pace['jitter']:.0%} jitter, "
        f"first-token delay {pace['first_delay_s'] * 1000:g} ms{passes} · commit {m.get('commit')}.{flag}{load}"
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
        if path not in s:
            continue
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
    for metric in ("ttfa", "ttfb"):
        for tag, name in BASELINE_TAGS.items():
            key = f"{metric}_vs_{tag}"
            if key in r:
                lines.append(
                    f"| {metric.upper()} ÷ {name} | {_x(r[key]['p50'])} | {_x(r[key]['p90'])} | "
                    f"{_x(r[key]['ratio_of_medians'])} |"
                )
    phrase = r["first_phrase_synth_vs_one_call"]
    lines.append(
        f"| first phrase: `phrase` → first byte ÷ one engine call on that phrase | {_x(phrase['p50'])} | "
        f"{_x(phrase['p90'])} | – |"
    )
    if "ttfa_vs_c" in r:
        c = r["ttfa_vs_c"]
        lines += [
            "",
            f"voicewire's TTFA is above RealtimeTTS's on {c['slower_replies']} of {c['n']} replies.",
        ]
    by_kind = report.get("by_kind", {})
    if by_kind:
        tags = [t for t in ("a", "c") if any(t in v for v in by_kind.values())]
        lines += [
            "",
            "| reply kind | "
            + " | ".join(f"TTFA ÷ {BASELINE_TAGS[t]}, per-reply p50 / p90" for t in tags)
            + " |",
            "|---|" + "---:|" * len(tags),
        ]
        for kind, ratios in by_kind.items():
            cells = [f"{_x(ratios[t]['p50'])} / {_x(ratios[t]['p90'])}" if t in ratios else "–" for t in tags]
            lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines += ["", "| target | wanted | measured | met |", "|---|---:|---:|:---:|"]
    for key, t in report["targets"].items():
        lines.append(
            f"| {key} | ≤ {_target(key, t['target'])} | {_target(key, t['measured'])} | "
            f"{'yes' if t['met'] else '**no**'} |"
        )
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
    settings = peer_settings_markdown(report)
    return "\n".join(lines) + (f"\n\n{settings}" if settings else "")


def _target(key: str, value: float | None) -> str:
    if value is None:
        return "none of those run"
    if key.endswith("_ms"):
        return f"{value:g} ms"
    if key.startswith("gapped_turns"):
        return f"{value:g} turns"
    return f"{value:.3f}×"


def peer_settings_markdown(report: dict) -> str:
    """The peer's settings, as run, so a reader can check that nothing was handicapped."""
    peers = report.get("peers") or {}
    if not peers:
        return ""
    blocks = [
        f"{PATH_NAMES.get(path, path)}:\n\n```json\n{json.dumps(s, indent=1)}\n```"
        for path, s in peers.items()
    ]
    return (
        "<details><summary>RealtimeTTS settings in this run</summary>\n\n"
        + "\n\n".join(blocks)
        + "\n\n</details>"
    )


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
        render = {"ttfa": ttfa_markdown, "replay": replay_markdown}.get(
            report["scenario"], concurrency_markdown
        )
        print(f"<!-- {path.name} -->\n{render(report)}\n")


if __name__ == "__main__":
    main()
