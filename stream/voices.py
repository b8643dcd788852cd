"""Resolving the `voice` of a turn to a prepared engine `Voice`.

A turn names a voice by id or name, sends an inline reference clip, or names none (the session
default, else the engine default).
"""

from __future__ import annotations

from .engines.base import Engine, Voice
from .errors import Unsupported, VoiceNotFound
from .protocol import InlineVoice, VoiceSpec
from .settings import Settings


class VoiceLibrary:
    """The voices a server can speak with."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    async def resolve(self, spec: VoiceSpec | None, context_id: str | None = None) -> Voice:
        default = self.engine.default_voice()
        if spec is None or spec in (default.id, default.name, "default"):
            return default
        if isinstance(spec, InlineVoice):
            if not self.engine.capabilities.voice_cloning:
                raise Unsupported(
                    f"voice.reference_audio: the {self.engine.name} engine cannot clone voices",
                    context_id=context_id,
                )
        raise VoiceNotFound(f"voice: no voice with id or name {spec!r}", context_id=context_id)
