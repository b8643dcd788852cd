"""One turn ("context"): its explicit life cycle, its phrases and what has been spoken of them.

OPEN -> ENDED -> DONE, or CANCELLED from OPEN or ENDED. The session owns every transition; the
context only keeps the books (phrases waiting, the one being spoken, text spoken, samples sent).
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass, field

from stream.core.normalizer import NormalizerOptions, normalize
from stream.core.phrase_audio import PhraseAudio
from stream.core.protocol import GenerationSettings, VoiceSpec
from stream.core.segmenter import PhraseCutter
from stream.core.synthesis import Voice


class ContextState(enum.Enum):
    OPEN = "open"
    ENDED = "ended"          # `end` received; remaining phrases are still being spoken
    DONE = "done"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Phrase:
    index: int
    text: str                # exactly as received: reported to the client
    speak: str               # normalized for the engine; "" means nothing to say


def finite(value: float) -> float:
    """Round a timing for the wire; NaN/inf never leave the server."""
    return round(value, 2) if math.isfinite(value) else 0.0


@dataclass
class Context:
    id: str
    voice: VoiceSpec | None
    generation: GenerationSettings
    cutter: PhraseCutter
    normalizer: NormalizerOptions
    opened_at: float
    engine_voice: Voice
    audio: PhraseAudio
    output_rate: int
    state: ContextState = ContextState.OPEN
    characters: int = 0
    phrases: deque[Phrase] = field(default_factory=deque)   # cut, not yet being spoken
    phrases_made: int = 0
    spoken: list[str] = field(default_factory=list)          # texts of phrases whose audio was all sent
    in_flight: Phrase | None = None                           # the phrase being spoken now
    jobs: dict[int, int] = field(default_factory=dict)        # phrase index -> job id (current, prefetched)
    seq: int = 0
    samples_sent: int = 0
    first_audio_at: float | None = None

    @property
    def finished_input(self) -> bool:
        return self.state is not ContextState.OPEN

    def take(self, texts: list[str]) -> list[Phrase]:
        """Queue phrases the cutter released, normalized for the engine."""
        made = []
        for text in texts:
            phrase = Phrase(self.phrases_made, text, normalize(text, self.normalizer))
            self.phrases_made += 1
            self.phrases.append(phrase)
            made.append(phrase)
        return made

    def audio_ms(self) -> float:
        return self.samples_sent * 1000.0 / self.output_rate if self.output_rate else 0.0

    def audio_ahead_s(self, now: float) -> float:
        """Audio sent but not yet played by a real-time listener who started at the first byte."""
        if self.first_audio_at is None:
            return 0.0
        return max(0.0, self.audio_ms() / 1000.0 - (now - self.first_audio_at))

    def ttfa_ms(self) -> float | None:
        return None if self.first_audio_at is None else finite((self.first_audio_at - self.opened_at) * 1000)

    def remaining_text(self) -> str:
        parts = [self.in_flight.text] if self.in_flight else []
        parts += [p.text for p in self.phrases]
        return "".join(parts) + self.cutter.pending

    def nothing_left_to_say(self) -> bool:
        """No phrase after the one in flight will make a sound, and no more text can come."""
        return self.finished_input and not self.cutter.pending and not any(p.speak for p in self.phrases)
