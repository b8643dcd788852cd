"""Where Piper's synthesis calls begin and end inside a phrase.

Piper's VITS model renders its whole input in one pass, so a phrase's first audio costs the
synthesis of its whole first sentence. A turn's first phrase is therefore split once more, after
the first pause mark of its first sentence ("Hmm, | that recipe serves four."): the first call
covers only the words up to the mark. It is split nowhere else, because only there does a listener
expect a break: the mark stays at the end of the first unit, so it is voiced as a clause end, and
the join is the model's own trailing and leading near-silence (measured 160-230 ms on the voice,
where one call pauses 140-350 ms at the same comma), with no click (both edges below -80 dBFS).
What is said and how the phrase ends do not change.

The split is taken only when the first unit's audio lasts long enough to cover the rest's synthesis
at the engine's measured pace (`CallPace`): on a loaded machine a short "Yes," followed by a long
clause would otherwise play and then leave the listener waiting mid-phrase.
"""

from __future__ import annotations

from collections.abc import Callable

PAUSE_MARKS = frozenset(",;:")
COVER = 0.8  # the first unit's audio must outlast the rest's expected synthesis by this margin


class CallPace:
    """Piper's real-time factor on this machine, now (wall seconds per audio second of a call, load
    included), as a moving average over recent calls."""

    def __init__(self, rtf: float = 0.25, weight: float = 0.2) -> None:
        self.rtf = rtf
        self._weight = weight

    def observe(self, audio_s: float, wall_s: float) -> None:
        if audio_s > 0:
            self.rtf += self._weight * (wall_s / audio_s - self.rtf)

    def covers(self, first: list[str], rest: list[str]) -> bool:
        """Would `first`'s audio outlast the synthesis of `rest` (with the margin)? Audio length is
        proportional to the phonemes, so their counts stand for both units' durations."""
        return self.rtf * len(rest) <= COVER * len(first)


def synthesis_units(sentences: list[list[str]], first_in_context: bool,
                    worth_splitting: Callable[[list[str], list[str]], bool] = lambda first, rest: True,
                    ) -> list[list[str]]:
    """Phonemes per Piper call: one per sentence, the first split after its first pause mark when
    the phrase opens a context, words follow the mark and `worth_splitting(first, rest)` agrees."""
    units = [s for s in sentences if _voiced(s)]
    if not (first_in_context and units):
        return units
    first = units[0]
    for i, phoneme in enumerate(first):
        if phoneme in PAUSE_MARKS and _voiced(first[:i]):
            rest = first[i + 1:]
            while rest and not rest[0].strip():
                rest = rest[1:]
            if _voiced(rest) and worth_splitting(first[:i + 1], rest):
                return [first[:i + 1], rest, *units[1:]]
            break
    return units


def _voiced(phonemes: list[str]) -> bool:
    return any(p.isalpha() for p in phonemes)
