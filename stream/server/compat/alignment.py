"""Character timing for ElevenLabs-style `alignment`, derived from voicewire's phrase timing.

The engines report when each phrase starts (`phrase.start_ms`) and how much audio each message
carries, not when each character is spoken. The approximation: a phrase's characters are spread
over its audio at the connection's observed pace (audio ms per character of finished phrases,
60 ms to begin with); the message that ends a phrase takes whatever characters remain. Each
message's characters are laid evenly over that message's audio, with times relative to the
message's own start, because clients advance their clock by each message's span (docs/compat.md).
A message whose phrase has no characters left carries one space, so the client's clock still moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

INITIAL_MS_PER_CHAR = 60.0


@dataclass
class Pace:
    """Audio milliseconds per character over a connection's finished phrases."""

    audio_ms: float = 0.0
    characters: int = 0

    def ms_per_char(self) -> float:
        return self.audio_ms / self.characters if self.characters else INITIAL_MS_PER_CHAR


@dataclass
class PhraseAligner:
    """One context's characters, handed out message by message."""

    pace: Pace
    text: str = ""
    start_ms: float = 0.0
    given: int = 0

    def phrase(self, text: str, start_ms: float) -> None:
        """A new phrase starts at `start_ms`; characters of the last one not yet handed out lead it."""
        self.text, self.start_ms, self.given = self.text[self.given:] + text, start_ms, 0

    def take(self, start_ms: float, duration_ms: float, ends_phrase: bool,
             pad: bool = True) -> tuple[list[str], list[int], list[int]]:
        """(chars, charStartTimesMs, charDurationsMs) for a message of audio [start, start + duration);
        with `pad`, a message with no characters left carries one space (see the module docstring)."""
        end_in_phrase = start_ms + duration_ms - self.start_ms
        due = len(self.text) if ends_phrase else min(len(self.text), int(end_in_phrase / self.pace.ms_per_char()))
        due = max(due, min(self.given + 1, len(self.text)))
        chars = list(self.text[self.given:due]) or ([" "] if pad else [])
        self.given = due
        if ends_phrase and self.text:
            self.pace.audio_ms += end_in_phrase
            self.pace.characters += len(self.text)
            self.text = ""
        if not chars:
            return [], [], []
        edges = [round(i * duration_ms / len(chars)) for i in range(len(chars) + 1)]
        return chars, edges[:-1], [b - a for a, b in pairwise(edges)]
