"""What the core hands an engine: one phrase to say, in a prepared voice, with the turn's settings.

These live in the core (not with the engines) because the session decides each request and the
executors carry it; the engines only consume them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stream.core.protocol import GenerationSettings


@dataclass(frozen=True)
class Voice:
    """A prepared voice: `conditioning` is the engine's own payload (opaque to the server)."""

    id: str
    name: str
    conditioning: Any = None


@dataclass(frozen=True)
class SynthesisRequest:
    text: str                               # normalized phrase text, never empty
    voice: Voice
    generation: GenerationSettings
    first_in_context: bool = False          # engines may use a smaller first chunk for TTFA
