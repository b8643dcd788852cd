"""Where Piper's synthesis calls begin and end inside a phrase.

Piper's VITS model renders its whole input in one pass, so a phrase's first audio costs the
synthesis of its whole first sentence. A turn's first phrase is therefore split once more, after
the first pause mark of its first sentence ("Hmm, | that recipe serves four."): the first call
covers only the words up to the mark. It is split nowhere else, because only there does a listener
expect a break: the mark stays at the end of the first unit, so it is voiced as a clause end, and
the join is the model's own trailing and leading near-silence (measured 160-230 ms on the voice,
where one call pauses 140-350 ms at the same comma), with no click (both edges below -80 dBFS).
What is said and how the phrase ends do not change.
"""

from __future__ import annotations

PAUSE_MARKS = frozenset(",;:")


def synthesis_units(sentences: list[list[str]], first_in_context: bool) -> list[list[str]]:
    """Phonemes per Piper call: one per sentence, the first split after its first pause mark
    when the phrase opens a context and words follow the mark."""
    units = [s for s in sentences if _voiced(s)]
    if not (first_in_context and units):
        return units
    first = units[0]
    for i, phoneme in enumerate(first):
        if phoneme in PAUSE_MARKS and _voiced(first[:i]):
            rest = first[i + 1:]
            while rest and not rest[0].strip():
                rest = rest[1:]
            if _voiced(rest):
                return [first[:i + 1], rest, *units[1:]]
            break
    return units


def _voiced(phonemes: list[str]) -> bool:
    return any(p.isalpha() for p in phonemes)
