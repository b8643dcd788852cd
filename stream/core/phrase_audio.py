"""The port through which the session turns engine chunks into client audio.

The core counts samples and orders audio; how chunks are shaped at phrase joins, resampled and
encoded is the audio layer's business, injected as a `PhraseAudio` per context. The websocket
driver's produces encoded bytes at the client's rate; the one-shot HTTP driver's shaped samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class AudioPiece:
    payload: Any       # what the driver sends (encoded bytes, or samples)
    samples: int       # samples at the context's output rate; 0 means nothing to send


class PhraseAudio(Protocol):
    def push(self, chunk: Any) -> AudioPiece:
        """One engine chunk of the phrase being spoken."""

    def end_phrase(self, text: str, last: bool) -> AudioPiece:
        """The phrase's tail: its fade and the pause its punctuation asks for, or the final flush."""


# (encoding, output sample rate) -> a fresh PhraseAudio for one context
PhraseAudioFactory = Callable[[str, int], PhraseAudio]
