"""A short opening sentence goes out alone, and "!"/"?"/clause openers the moment their mark arrives.

With `release_opener` the first phrase takes a sentence end at any length ("Done.", "Halt!"), and a
plain exclamation, question or clause (once `first_min_words` are in) is released on the delta that
carries its mark, without waiting a token for the next word. Partition and chunking invariance hold
as for every other rule.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given

from stream.core.segmenter import CutterConfig, PhraseCutter
from tests.core.test_segmenter import FAST, SMALL, aheads, run, splits, words

OPENER = replace(SMALL, release_opener=True)
CLAUSES = replace(OPENER, first_min_words=2)  # as Piper: a two-word clause may open a reply
WITHOUT = SMALL


def released_with(config: CutterConfig, tokens: list[str]) -> list[tuple[str, list[str]]]:
    """(token pushed, phrases that push released), token by token."""
    cutter = PhraseCutter(config)
    cutter.set_audio_ahead(2.0)
    return [(token, cutter.push(token, 0.0)) for token in tokens]


def test_an_exclamation_opener_goes_out_with_its_mark() -> None:
    steps = released_with(OPENER, ["Halt", "!", " Who", " goes", " there", "?", " State"])
    assert steps[1] == ("!", ["Halt!"])
    assert [p for _, out in steps for p in out] == ["Halt!", " Who goes there? "]


def test_a_question_opener_in_one_delta_is_cut_at_its_mark() -> None:
    assert run(OPENER, ["Ready? Then let's go."]) == ["Ready?", " Then let's go."]


def test_a_one_word_sentence_with_a_period_still_waits_for_the_next_word() -> None:
    steps = released_with(OPENER, ["Done", ".", " I", " moved", " it"])
    assert steps[1] == (".", []) and steps[2] == (" I", ["Done. "])


def test_without_the_option_a_short_opener_merges_forward() -> None:
    assert run(WITHOUT, ["Halt! Who goes there? State your business."])[0] == "Halt! Who goes there? "


@pytest.mark.parametrize("text", [
    '"Stop!" she said, and ran.',
    "**Halt!** Who goes there?",
    "(Wow!) That was fast.",
    "'Really?' he asked.",
    "Use `run!` to start it.",
    "See example.com/a?b for more.",
])
def test_nothing_opened_before_the_mark_may_be_left_unclosed(text: str) -> None:
    mark = min(text.index(c) for c in "!?" if c in text)
    assert run(OPENER, [text])[0] != text[:mark + 1]


def test_a_quoted_exclamation_is_not_split_inside_its_quotes() -> None:
    assert run(OPENER, ['"Stop!" she said. Then she ran off.'])[0] == '"Stop!" she said. '


def test_only_the_first_phrase_is_released_early() -> None:
    phrases = run(OPENER, ["Sure thing, here. Wait! Now go."], ahead=2.0)
    assert phrases[0] == "Sure thing, here. "
    assert "Wait!" not in phrases  # a later "Wait!" is an ordinary, merged sentence


def test_a_doubled_mark_keeps_the_partition() -> None:
    text = "What?! No way."
    assert "".join(run(OPENER, list(text))) == text and run(OPENER, list(text)) == run(OPENER, [text])


def test_a_clause_opener_goes_out_with_its_comma() -> None:
    steps = released_with(CLAUSES, ["Your", " order", ",", " number", " 48", "213"])
    assert steps[2] == (",", ["Your order,"])


@pytest.mark.parametrize(("text", "first"), [
    ("Hmm, that recipe serves four.", "Hmm, that recipe serves four."),  # one word: below first_min_words
    ("At 10:30, we leave.", "At 10:30, "),                            # digits: decided by the next word
    ("About 1,000 people came, all told.", "About 1,000 people came,"),  # the number's comma is no cut
    ("Open https://example.com now, please.", "Open https://example.com now,"),
    ('"Well, then," she said.', '"Well, then," '),                     # inside a quote: the next word decides
])
def test_only_a_clause_mark_after_a_plain_word_is_taken_at_once(text: str, first: str) -> None:
    assert run(CLAUSES, [text])[0] == first


@FAST
@given(splits(), aheads)
def test_partition_and_chunking_invariance_hold_with_clause_openers(case, ahead) -> None:
    text, deltas = case
    phrases = run(CLAUSES, deltas, ahead)
    assert "".join(phrases) == text and all(phrases)
    assert phrases == run(CLAUSES, [text], ahead) == run(CLAUSES, list(text), ahead)


@FAST
@given(splits(), aheads)
def test_partition_and_chunking_invariance_hold_with_openers(case, ahead) -> None:
    text, deltas = case
    phrases = run(OPENER, deltas, ahead)
    assert "".join(phrases) == text and all(phrases)
    assert phrases == run(OPENER, [text], ahead) == run(OPENER, list(text), ahead)


@FAST
@given(splits(), aheads)
def test_only_the_first_phrase_may_be_shorter_than_min_words(case, ahead) -> None:
    text, deltas = case
    phrases = run(OPENER, deltas, ahead)
    assert all(words(p) >= OPENER.min_words for p in phrases[1:-1])
    assert all(len(p) <= OPENER.hard_chars for p in phrases)
