"""Cost of phrase cutting and normalization, and how long the first phrase makes a listener wait.

Replays every reply of the benchmark corpus as LLM-like tokens (a word with its leading space, a
number, a punctuation mark) through a fresh PhraseCutter per reply, exactly as the session drives it
(set_audio_ahead before every push, then end), and reports:

* µs per delta (push call) and per character: the cutter's cost next to model inference;
* µs per normalize() call on the phrases it produced;
* first-phrase latency per engine: tokens and words consumed before the first phrase is released,
  the wait that means at 30 tokens/s, and its share of "wait for the whole reply" at that rate.

Run: python benchmarks/bench_segmenter.py [--repeat N]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.corpus import CORPUS  # noqa: E402
from stream.core.normalizer import NormalizerOptions, normalize  # noqa: E402
from stream.core.segmenter import CutterConfig, PhraseCutter  # noqa: E402
from stream.engines.chatterbox.policy import POLICY as CHATTERBOX_POLICY  # noqa: E402
from stream.engines.piper.policy import POLICY as PIPER_POLICY  # noqa: E402

TOKENS_PER_S = 30.0
_TOKEN = re.compile(r"\s*[A-Za-z']+|\s*\d{1,3}|\s*[^\sA-Za-z\d]|\s+")


def llm_tokens(text: str) -> list[str]:
    """Split like a BPE tokenizer roughly does: leading-space words, short digit groups, punctuation."""
    tokens = _TOKEN.findall(text)
    assert "".join(tokens) == text
    return tokens


def first_phrase(config: CutterConfig, tokens: list[str]) -> tuple[int, str]:
    """Tokens pushed until the first phrase came out (all of them if only `end` released it)."""
    cutter = PhraseCutter(config)
    for n, token in enumerate(tokens, 1):
        out = cutter.push(token, n / TOKENS_PER_S)
        if out:
            return n, out[0]
    return len(tokens), cutter.end()[0]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_cost(config: CutterConfig, replies: list[list[str]], repeat: int) -> tuple[float, float, list[str]]:
    deltas = sum(len(tokens) for tokens in replies) * repeat
    chars = sum(len(t) for tokens in replies for t in tokens) * repeat
    phrases: list[str] = []
    start = time.perf_counter_ns()
    for _ in range(repeat):
        phrases.clear()
        for tokens in replies:
            cutter = PhraseCutter(config)
            for n, token in enumerate(tokens):
                cutter.set_audio_ahead(2.0)
                phrases += cutter.push(token, n / TOKENS_PER_S)
            phrases += cutter.end()
    elapsed_us = (time.perf_counter_ns() - start) / 1000
    return elapsed_us / deltas, elapsed_us / chars, list(phrases)


def bench_normalize(phrases: list[str], options: NormalizerOptions, repeat: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(repeat):
        for phrase in phrases:
            normalize(phrase, options)
    return (time.perf_counter_ns() - start) / 1000 / (len(phrases) * repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="passes over the corpus for the timings")
    args = parser.parse_args()
    replies = [llm_tokens(reply.text) for reply in CORPUS]
    print(f"corpus: {len(replies)} replies, {sum(map(len, replies))} tokens, "
          f"{sum(len(r.text) for r in CORPUS)} characters; Python {sys.version.split()[0]}")
    for engine, policy in (("chatterbox", CHATTERBOX_POLICY), ("piper", PIPER_POLICY)):
        config = policy.cutter
        per_delta, per_char, phrases = bench_cost(config, replies, args.repeat)
        norm_us = bench_normalize(phrases, policy.normalizer, max(1, args.repeat // 4))
        firsts = [first_phrase(config, tokens) for tokens in replies]
        n_tokens = [n for n, _ in firsts]
        n_words = [len(text.split()) for _, text in firsts]
        shares = [n / len(tokens) for (n, _), tokens in zip(firsts, replies, strict=True)]
        print(f"\n{engine}: {per_delta:.2f} µs/delta, {per_char:.3f} µs/char, "
              f"normalize {norm_us:.1f} µs/phrase, {len(phrases) / len(replies):.1f} phrases/reply")
        print(f"  first phrase, tokens: median {statistics.median(n_tokens):.0f}, "
              f"p90 {percentile(n_tokens, 0.9):.0f}, max {max(n_tokens)}")
        print(f"  first phrase, words:  median {statistics.median(n_words):.0f}, "
              f"p90 {percentile(n_words, 0.9):.0f}, max {max(n_words)}")
        wait_ms = [1000 * n / TOKENS_PER_S for n in n_tokens]
        print(f"  text wait at {TOKENS_PER_S:.0f} tok/s: median {statistics.median(wait_ms):.0f} ms, "
              f"p90 {percentile(wait_ms, 0.9):.0f} ms; share of the whole reply: "
              f"median {statistics.median(shares):.0%}, p90 {percentile(shares, 0.9):.0%}")


if __name__ == "__main__":
    main()
