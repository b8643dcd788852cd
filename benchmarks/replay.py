"""The corpus replayed offline on its token schedule: where a Piper turn's first audio and its gaps
come from, in numbers that do not depend on how loaded the machine is.

    python -m benchmarks.replay [--rtf 0.05,0.25,0.5] [--json benchmarks/results/replay-piper.json]

Every reply of benchmarks/corpus.py gets the ttfa scenario's token schedule (30 tok/s ±30 %, seed
1 + i) and goes through the cutter, the normalizer, the real Piper engine and the phrase shaper, as
the server would run them; only synthesis *time* is modelled: each Piper call takes RTF × the audio
it returns, calls run one after another in phrase order (the server's prefetch), and a player starts
at the first byte. Per reply:

* **cut**: when the delta that released the first phrase was sent (the text wait);
* **first unit**: audio seconds of the Piper call that makes the first audio; its synthesis time is
  proportional to them (its CPU time is printed too, indicative only on a shared machine);
* **leading silence**: TTFA − TTFB of the shaped turn, by the ttfa scenario's audibility gate;
* at each RTF: **modelled TTFA** (cut + RTF × first unit + leading silence) and **gapped turns**
  with a 0 and a 100 ms player buffer, measured by the same code as the ttfa scenario.

The rows switch the causes of issue 15 on one at a time, from the Piper configuration this work
started from (2026-11-24 defaults) to what the engine ships now. With the `peer` extra installed a
last row models baseline (c): RealtimeTTS's own sentence fragmenter (stream2sentence, with the
arguments `play_async` passes at its defaults) cuts the same schedule, each fragment is one engine
call after another, untrimmed, and the per-reply ratios to it estimate issue 15's targets without
the machine's noise (the real comparison is `python -m benchmarks.ttfa --peer`). Audio is made at
temperature 0 and exaggeration 0, so every number but CPU time is the same on any machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from stream.audio.codecs import PhraseShaper, pause_after
from stream.core.normalizer import normalize
from stream.core.protocol import GenerationSettings
from stream.core.segmenter import CutterConfig, PhraseCutter, SynthesisRate
from stream.core.synthesis import SynthesisRequest

from .corpus import CORPUS, Reply
from .measure import Arrival, TurnAudio, buffer_label, measure_turn, summarize
from .report import RESULTS, machine, now_utc, to_plain, write_json
from .scenario import Pacing, Schedule, schedule

PEER_ROW = "(c) RealtimeTTS 0.8.10 fragments, modelled"
TICK_S = 0.05  # the session re-checks a stalled phrase at least this often
DETERMINISTIC = GenerationSettings(temperature=0.0, exaggeration=0.0)

# Piper's cutter as it was before issue 15 (CutterConfig.for_engine("piper") on 2026-11-24).
BEFORE = CutterConfig(
    first_min_words=2,
    first_max_words=5,
    min_words=2,
    soft_chars=120,
    hard_chars=300,
    stall_s=0.3,
    ahead_relaxed_s=3.0,
    ahead_starving_s=0.5,
    relaxed_min_chars=80,
)


@dataclass(frozen=True)
class Variant:
    name: str
    cutter: CutterConfig
    split_first: bool  # the engine may split a context's first phrase at its first pause
    trim: bool  # the shaper trims the turn's leading silence
    measured_rate: bool  # the session feeds the measured synthesis time per character (SynthesisRate)



def _modelled(metrics) -> dict:
    """What a modelled turn reports, the same for voicewire's replay and the peer's."""
    return {"ttfa_ms": metrics.ttfa_ms, "ttfb_ms": metrics.ttfb_ms,
            "leading_silence_ms": metrics.leading_silence_ms, "gaps_ms": metrics.gaps}

def variants(shipped: CutterConfig) -> list[Variant]:
    opener = replace(BEFORE, release_opener=True)
    prior = replace(opener, synth_s_per_char=shipped.synth_s_per_char)
    return [
        Variant("before (2026-11-24)", BEFORE, False, False, False),
        Variant("+ leading-silence trim", BEFORE, False, True, False),
        Variant("+ opener released at its mark (sentence, !, ?, clause)", opener, False, True, False),
        Variant("+ first phrase split at its first pause (when covered)", opener, True, True, False),
        Variant(f"+ starving rule, prior {shipped.synth_s_per_char:g} s/char", prior, True, True, False),
        Variant("+ starving rule, measured rate fed by the session", prior, True, True, True),
        Variant("shipped Piper policy, as the server runs it", shipped, True, True, True),
    ]


class PiperCalls:
    """The engine's chunks for a phrase, made once and reused by every variant and RTF."""

    def __init__(self) -> None:
        from stream.engines.piper.engine import PiperEngine

        self.engine = PiperEngine()
        self.engine.load()
        self.engine.warmup()
        self.sample_rate = self.engine.sample_rate
        self.normalizer = self.engine.policy.normalizer
        self._cache: dict[tuple[str, bool, float], tuple[list[np.ndarray], float]] = {}

    def __call__(self, text: str, first: bool, rtf: float) -> tuple[list[np.ndarray], float]:
        """Chunks of one phrase, and the CPU milliseconds its first chunk took. A first phrase is
        split or not as the engine decides at the modelled real-time factor, not at this machine's."""
        from stream.engines.piper.units import CallPace

        key = (text, first, rtf if first else 0.0)
        if key not in self._cache:
            self.engine.pace = CallPace(rtf=rtf, weight=0.0)
            request = SynthesisRequest(
                text=text, voice=self.engine.default_voice(), generation=DETERMINISTIC, first_in_context=first
            )
            chunks, cpu_first = [], 0.0
            began = time.process_time()
            for chunk in self.engine.synthesize(request, threading.Event()):
                if not chunks:
                    cpu_first = (time.process_time() - began) * 1000
                chunks.append(chunk)
            self._cache[key] = (chunks, cpu_first)
        return self._cache[key]


@dataclass
class ReplayTurn:
    reply: str
    first_phrase: str
    cut_ms: float
    first_unit_s: float
    first_unit_cpu_ms: float
    phrases: int
    by_rtf: dict[str, dict]  # RTF label -> ttfa_ms, ttfb_ms, leading_silence_ms, gaps per buffer


def replay_turn(
    reply: Reply,
    sched: Schedule,
    variant: Variant,
    rtf: float,
    calls: PiperCalls,
    buffers_s: tuple[float, ...],
) -> tuple[dict, dict]:
    """One reply through cutter, normalizer, engine and shaper with synthesis time = RTF × audio."""
    sr = calls.sample_rate
    cutter = PhraseCutter(variant.cutter)
    shaper = PhraseShaper(sr, trim_leading_silence=variant.trim)
    arrivals: list[Arrival] = []
    pieces: list[np.ndarray] = []
    done: list[tuple[float, int, float]] = []  # (finished at, characters, synthesis seconds) per call
    state = {"free": 0.0, "phrases": 0, "cut": None, "first": "", "unit_s": 0.0, "cpu": 0.0}

    def ahead(t: float) -> float:
        if not arrivals or arrivals[0].at_s > t:
            return 0.0
        sent = sum(a.samples for a in arrivals if a.at_s <= t) / sr
        return max(0.0, sent - (t - arrivals[0].at_s))

    def hints(t: float) -> None:
        cutter.set_audio_ahead(ahead(t))
        if variant.measured_rate:
            rate = SynthesisRate()
            for at, chars, secs in done:
                if at <= t:
                    rate.observe(chars, secs)
            if rate.seconds_per_char is not None:
                cutter.set_synthesis_rate(rate.seconds_per_char)

    def cut(text: str, t: float) -> None:
        index = state["phrases"]
        state["phrases"] += 1
        if index == 0:
            state["cut"], state["first"] = t, text
        speak = normalize(text, calls.normalizer)
        if not speak:
            return
        chunks, cpu = calls(speak, variant.split_first and index == 0, rtf)
        start = clock = max(t, state["free"])
        for chunk in chunks:
            clock += rtf * chunk.size / sr
            _deliver(clock, shaper.push(chunk))
        _deliver(clock, shaper.finish(pause_after(text)))
        if index == 0:
            state["unit_s"], state["cpu"] = chunks[0].size / sr, cpu
        done.append((clock, len(speak), clock - start))
        state["free"] = clock

    def _deliver(at: float, samples: np.ndarray) -> None:
        if samples.size:
            arrivals.append(Arrival(at, samples.size))
            pieces.append(samples)

    previous = 0.0
    for delta, offset in zip(sched.deltas, sched.offsets, strict=True):
        t = previous + TICK_S
        while t < offset:
            hints(t)
            for text in cutter.tick(t):
                cut(text, t)
            t += TICK_S
        hints(offset)
        for text in cutter.push(delta, offset):
            cut(text, offset)
        previous = offset
    for text in cutter.end():
        cut(text, previous)
    metrics = measure_turn(TurnAudio(tuple(arrivals), np.concatenate(pieces), sr), buffers_s)
    turn = {
        "cut_ms": state["cut"] * 1000,
        "first_phrase": state["first"],
        "first_unit_s": state["unit_s"],
        "first_unit_cpu_ms": state["cpu"],
        "phrases": state["phrases"],
    }
    return turn, _modelled(metrics)


def peer_fragments(sched: Schedule) -> list[tuple[str, float]]:
    """RealtimeTTS's fragments of a reply with when each is cut: the sent time of the last
    character its fragmenter had read when it yielded the fragment (it reads ahead for context)."""
    import inspect

    import stream2sentence
    from RealtimeTTS import TextToAudioStream

    defaults = {n: p.default for n, p in inspect.signature(TextToAudioStream.play_async).parameters.items()}
    read = [0]

    def chars():
        for ch in sched.text:
            read[0] += 1
            yield ch

    fragments = stream2sentence.generate_sentences(
        chars(),
        context_size=defaults["context_size"],
        context_size_look_overhead=defaults["context_size_look_overhead"],
        minimum_sentence_length=defaults["minimum_sentence_length"],
        minimum_first_fragment_length=defaults["minimum_first_fragment_length"],
        quick_yield_single_sentence_fragment=defaults["fast_sentence_fragment"],
        quick_yield_for_all_sentences=defaults["fast_sentence_fragment_allsentences"],
        quick_yield_every_fragment=defaults["fast_sentence_fragment_allsentences_multiple"],
        cleanup_text_links=True,
        cleanup_text_emojis=True,
        tokenizer="rule-based",
        language="en",
        sentence_fragment_delimiters=defaults["sentence_fragment_delimiters"],
        force_first_fragment_after_words=defaults["force_first_fragment_after_words"],
        fragment_lookahead_words=defaults["fragment_lookahead_words"],
    )
    return [(text.strip(), sched.available_at(read[0])) for text in fragments if text.strip()]


def replay_peer_turn(
    sched: Schedule, rtf: float, calls: PiperCalls, buffers_s: tuple[float, ...]
) -> tuple[dict, dict]:
    """Baseline (c) modelled: its fragments, one engine call after another, no trim, no pauses."""
    sr = calls.sample_rate
    arrivals, pieces, free = [], [], 0.0
    fragments = peer_fragments(sched)
    for text, cut_at in fragments:
        clock = max(cut_at, free)
        for chunk in calls(text, False, rtf)[0]:
            clock += rtf * chunk.size / sr
            arrivals.append(Arrival(clock, chunk.size))
            pieces.append(chunk)
        free = clock
    metrics = measure_turn(TurnAudio(tuple(arrivals), np.concatenate(pieces), sr), buffers_s)
    first, cut_at = fragments[0]
    chunks, cpu = calls(first, False, rtf)
    turn = {
        "cut_ms": cut_at * 1000,
        "first_phrase": first,
        "first_unit_s": chunks[0].size / sr,
        "first_unit_cpu_ms": cpu,
        "phrases": len(fragments),
    }
    return turn, _modelled(metrics)


def run(
    rtfs: tuple[float, ...],
    buffers_s: tuple[float, ...],
    seed: int = 1,
    progress: Callable[[str], None] = print,
) -> dict:
    started = now_utc()
    calls = PiperCalls()
    pacing = Pacing()
    scheds = [(reply, schedule(reply.text, pacing, seed + i)) for i, reply in enumerate(CORPUS)]
    runs: list[tuple[str, Callable[[Reply, Schedule, float], tuple[dict, dict]]]] = [
        (v.name, lambda reply, sched, rtf, v=v: replay_turn(reply, sched, v, rtf, calls, buffers_s))
        for v in variants(calls.engine.policy.cutter)
    ]
    if importlib.util.find_spec("stream2sentence") and importlib.util.find_spec("RealtimeTTS"):
        runs.append((PEER_ROW, lambda reply, sched, rtf: replay_peer_turn(sched, rtf, calls, buffers_s)))
    rows = []
    for name, replay in runs:
        turns = []
        for reply, sched in scheds:
            by_rtf = {}
            for rtf in rtfs:
                turn, by_rtf[f"{rtf:g}"] = replay(reply, sched, rtf)
                if rtf == rtfs[0]:
                    first_rtf_turn = turn
            turns.append({"reply": reply.id, **first_rtf_turn, "by_rtf": by_rtf})
        rows.append({"variant": name, "summary": summarize_variant(turns, rtfs, buffers_s), "turns": turns})
        progress(f"  {name}: done")
    peer = next((r for r in rows if r["variant"] == PEER_ROW), None)
    if peer is not None:
        for row in rows:
            row["summary"]["vs_peer"] = vs_peer(row["turns"], peer["turns"], rtfs)
    return {
        "scenario": "replay",
        "started": started,
        "machine": machine(),
        "pacing": pacing,
        "rtfs": list(rtfs),
        "buffers_ms": [round(b * 1000) for b in buffers_s],
        "generation": {"temperature": 0.0, "exaggeration": 0.0},
        "rows": rows,
    }


def vs_peer(turns: list[dict], peer: list[dict], rtfs: tuple[float, ...]) -> dict:
    """Per-reply modelled TTFA ÷ the modelled RealtimeTTS's, p50 and p90, at each RTF."""
    out = {}
    for rtf in rtfs:
        key = f"{rtf:g}"
        ratios = [
            t["by_rtf"][key]["ttfa_ms"] / p["by_rtf"][key]["ttfa_ms"]
            for t, p in zip(turns, peer, strict=True)
            if t["by_rtf"][key]["ttfa_ms"] and p["by_rtf"][key]["ttfa_ms"]
        ]
        stats = summarize(ratios)
        out[key] = {"p50": stats["p50"], "p90": stats["p90"], "above_1": sum(r > 1 for r in ratios)}
    return out


def summarize_variant(turns: list[dict], rtfs: tuple[float, ...], buffers_s: tuple[float, ...]) -> dict:
    out = {
        "cut_ms": summarize(t["cut_ms"] for t in turns),
        "first_unit_s": summarize(t["first_unit_s"] for t in turns),
        "first_unit_cpu_ms": summarize(t["first_unit_cpu_ms"] for t in turns),
        "leading_silence_ms": summarize(t["by_rtf"][f"{rtfs[0]:g}"]["leading_silence_ms"] for t in turns),
        "first_phrase_words": summarize(len(t["first_phrase"].split()) for t in turns),
        "phrases_per_reply": summarize(t["phrases"] for t in turns),
    }
    for rtf in rtfs:
        key = f"{rtf:g}"
        out[f"rtf_{key}"] = {
            "ttfa_ms": summarize(t["by_rtf"][key]["ttfa_ms"] for t in turns),
            "gapped_turns": {
                buffer_label(b): sum(1 for t in turns if t["by_rtf"][key]["gaps_ms"][buffer_label(b)])
                for b in buffers_s
            },
        }
    return out


def markdown(report: dict) -> str:
    rtfs = [f"{r:g}" for r in report["rtfs"]]
    labels = [f"{b}ms" for b in report["buffers_ms"]]
    head = (
        f"| configuration | first phrase cut p50 / p90 (ms) | first unit audio at RTF {rtfs[0]}, p50 / p90 (s) | "
        "leading silence p50 / p90 (ms) | phrases per reply | "
        + " | ".join(
            f"RTF {r}: modelled TTFA p50 / p90 (ms), gapped turns {' / '.join(labels)}" for r in rtfs
        )
        + " |"
    )
    lines = [head, "|---" + "|---:" * (4 + len(rtfs)) + "|"]
    for row in report["rows"]:
        s = row["summary"]
        cells = [
            f"{s['cut_ms']['p50']:.0f} / {s['cut_ms']['p90']:.0f}",
            f"{s['first_unit_s']['p50']:.2f} / {s['first_unit_s']['p90']:.2f}",
            f"{s['leading_silence_ms']['p50']:.0f} / {s['leading_silence_ms']['p90']:.0f}",
            f"{s['phrases_per_reply']['mean']:.1f}",
        ]
        for r in rtfs:
            m = s[f"rtf_{r}"]
            gaps = " / ".join(str(m["gapped_turns"][lb]) for lb in labels)
            cells.append(f"{m['ttfa_ms']['p50']:.0f} / {m['ttfa_ms']['p90']:.0f}, {gaps}")
        lines.append(f"| {row['variant']} | " + " | ".join(cells) + " |")
    if "vs_peer" in report["rows"][0]["summary"]:
        lines += [
            "",
            "| configuration | "
            + " | ".join(f"RTF {r}: TTFA ÷ (c) model, per-reply p50 / p90 (replies above 1)" for r in rtfs)
            + " |",
            "|---" + "|---:" * len(rtfs) + "|",
        ]
        for row in report["rows"][:-1]:
            v = row["summary"]["vs_peer"]
            cells = [f"{v[r]['p50']:.2f}× / {v[r]['p90']:.2f}× ({v[r]['above_1']})" for r in rtfs]
            lines.append(f"| {row['variant']} | " + " | ".join(cells) + " |")
    cpu = [f"{row['summary']['first_unit_cpu_ms']['p50']:.0f}" for row in report["rows"]]
    lines += [
        "",
        f"First-unit CPU ms p50 per row (process time, indicative only): {', '.join(cpu)}; "
        f"{len(report['rows'][0]['turns'])} replies, load average at start "
        f"{', '.join(f'{x:.1f}' for x in report['machine']['load_avg_at_start'])}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.replay",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rtf", default="0.05,0.25,0.5", help="modelled engine real-time factors")
    parser.add_argument("--buffers-ms", default="0,100", help="player jitter buffers for the gap count")
    parser.add_argument("--seed", type=int, default=1, help="reply i uses seed + i, as the ttfa scenario")
    parser.add_argument("--json", type=Path, default=RESULTS / "replay-piper.json")
    args = parser.parse_args(argv)
    rtfs = tuple(float(x) for x in args.rtf.split(",") if x.strip())
    buffers_s = tuple(float(x) / 1000 for x in args.buffers_ms.split(",") if x.strip())
    report = to_plain(run(rtfs, buffers_s, args.seed))
    write_json(args.json, report)
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
