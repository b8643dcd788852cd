"""The table-driven corpus: every case must give its expected phrases however the text is streamed.

Each case is replayed whole, one character at a time, as LLM-like tokens, and in fixed 3- and
7-character slices; all must give exactly the marked phrases (see segmenter_cases.py).
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from stream.core.segmenter import CutterConfig
from tests.core.segmenter_cases import CASES
from tests.core.test_segmenter import run

# Pinned here so that retuning the engine defaults does not silently rewrite what the corpus checks.
POLICIES: dict[str, tuple[CutterConfig, float]] = {
    "sentences": (CutterConfig(first_min_words=40, first_max_words=60, min_words=1, soft_chars=400,
                               hard_chars=500, stall_s=1.0, ahead_relaxed_s=5.0, ahead_starving_s=1.0,
                               relaxed_min_chars=0), 2.0),
    "chatterbox": (CutterConfig(first_min_words=5, first_max_words=10, min_words=4, soft_chars=150,
                                hard_chars=250, stall_s=0.5, ahead_relaxed_s=5.0, ahead_starving_s=1.5,
                                relaxed_min_chars=120), 3.0),
    "piper": (CutterConfig(first_min_words=3, first_max_words=8, min_words=2, soft_chars=120,
                           hard_chars=300, stall_s=0.3, ahead_relaxed_s=3.0, ahead_starving_s=0.5,
                           relaxed_min_chars=80), 1.0),
}
_TOKEN = re.compile(r"\s*[^\W\d_]+|\s*\d{1,3}|\s*[^\s\w]|\s*_|\s+")


def stream(policy: str, deltas: list[str]) -> list[str]:
    config, ahead = POLICIES[policy]
    return run(config, deltas, ahead)


def slices(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


def test_corpus_is_large_and_covers_every_category() -> None:
    counts = Counter(category for category, _, _ in CASES)
    assert len(CASES) >= 150
    assert set(counts) == {"assistant", "npc", "markdown", "lists", "numbers", "web", "abbrev", "quotes",
                           "multi", "artefacts", "length"}
    assert min(counts.values()) >= 8


@pytest.mark.parametrize(("category", "policy", "marked"), CASES,
                         ids=[f"{c}-{i:03d}" for i, (c, _, _) in enumerate(CASES)])
def test_corpus_case(category: str, policy: str, marked: str) -> None:
    expected = marked.split("¦")
    text = "".join(expected)
    tokens = _TOKEN.findall(text)
    assert "".join(tokens) == text
    assert stream(policy, [text]) == expected
    assert stream(policy, list(text)) == expected
    assert stream(policy, tokens) == expected
    assert stream(policy, slices(text, 3)) == expected
    assert stream(policy, slices(text, 7)) == expected
