"""Phrase events → word timestamps, for frameworks that align transcripts word by word.

voicewire reports where each phrase starts (`phrase.start_ms`); a phrase ends where the next one
starts, or at the context's `audio_ms`. Words are placed inside that span in proportion to their
character offset: exact at phrase boundaries, an estimate inside a phrase. A phrase's words are
therefore released once its end is known (when the next phrase or `done` arrives), which is
still ahead of playback whenever synthesis runs faster than real time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class WordTime:
    word: str
    start_s: float
    end_s: float


def phrase_words(text: str, start_ms: float, end_ms: float) -> list[WordTime]:
    """Words of one phrase spread over [start_ms, end_ms] by character offset."""
    span = max(end_ms - start_ms, 0.0)
    size = max(len(text), 1)
    return [WordTime(m.group(), (start_ms + span * m.start() / size) / 1000,
                     (start_ms + span * m.end() / size) / 1000) for m in _WORD.finditer(text)]


class PhraseTimer:
    """Per-context: feed phrase events and the final audio length, get timed words back."""

    def __init__(self) -> None:
        self._pending: tuple[str, float] | None = None

    def phrase(self, text: str, start_ms: float) -> list[WordTime]:
        """A new phrase starts: returns the previous phrase's words, now that its end is known."""
        words = self._release(start_ms)
        self._pending = (text, start_ms)
        return words

    def done(self, audio_ms: float) -> list[WordTime]:
        """The context finished with `audio_ms` of audio: returns the last phrase's words."""
        return self._release(audio_ms)

    def _release(self, end_ms: float) -> list[WordTime]:
        if self._pending is None:
            return []
        text, start_ms = self._pending
        self._pending = None
        return phrase_words(text, start_ms, end_ms)
