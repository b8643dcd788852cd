"""The voice repository: stored voices, their metadata and the original reference clip bytes.

The clip is kept as uploaded, not the prepared conditioning, so a voice survives a model upgrade:
new weights re-prepare it from the clip (once per clip and model, thanks to the engine's cache).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class StoredVoice:
    id: str
    name: str
    format: str                  # container as libsndfile names it (WAV, FLAC, OGG, MP3)
    sample_rate: int
    seconds: float
    content_sha256: str          # of the decoded audio (the engine's conditioning cache key)
    created_at: float            # unix time

    def to_wire(self) -> dict:
        return {"id": self.id, "name": self.name, "format": self.format, "sample_rate": self.sample_rate,
                "seconds": round(self.seconds, 3), "created_at": self.created_at}


class VoiceRepository(ABC):
    """Voices by id or name. Adding or deleting one is announced on the storage's change feed."""

    @abstractmethod
    def add(self, voice: StoredVoice, audio: bytes) -> None:
        """Store a new voice (its id is new) with its clip."""

    @abstractmethod
    def get(self, id_or_name: str) -> StoredVoice | None:
        """A voice by id, else the newest with that name, else None."""

    @abstractmethod
    def audio(self, voice_id: str) -> bytes | None:
        """The clip of a voice as it was uploaded, or None."""

    @abstractmethod
    def list(self) -> list[StoredVoice]:
        """Every voice, oldest first."""

    @abstractmethod
    def delete(self, voice_id: str) -> bool:
        """Delete a voice; False when there is none with that id."""
