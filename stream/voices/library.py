"""Resolving the `voice` of a turn to a prepared engine `Voice`, and managing stored voices.

A turn names a voice by id or name, sends an inline reference clip, or names none (the engine
default). Stored voices live in the storage's `VoiceRepository`; their prepared conditioning is
cached by the engine, keyed by clip content, so resolving a known voice after the first time costs
a dictionary lookup here, and after a restart a disk read in the engine's cache.

Two caches, both bounded by `voice_cache_size`: inline clips by content (a clip's conditioning never
goes stale), and stored voices by the id or name a turn used. The second follows the storage's
change feed: a voice deleted here or by another process stops resolving within
`PROPAGATION_BOUND_S`, and a voice added anywhere can take a name over.

Everything slow (reading the database, decoding a clip, hashing it, preparing it) runs off the
event loop, so one long clip never stalls the other sessions' audio.
"""

from __future__ import annotations

import asyncio
import secrets
import time

from stream.audio.reference import ReferenceClip, audio_digest, decode_base64, decode_clip
from stream.core.errors import ProtocolError, Unsupported, VoiceNotFound
from stream.core.protocol import InlineVoice, VoiceSpec
from stream.engines.base import Engine, Voice
from stream.settings import Settings
from stream.storage import Change, SharedRecordCache, Storage, StoredVoice, Topic


class VoiceLibrary:
    """The voices a server can speak with."""

    def __init__(self, engine: Engine, settings: Settings, storage: Storage) -> None:
        self.engine = engine
        self.settings = settings
        self._voices = storage.voices
        self._inline: SharedRecordCache[str, Voice] = SharedRecordCache(settings.voice_cache_size)
        self._stored: SharedRecordCache[str, Voice] = SharedRecordCache(settings.voice_cache_size)
        storage.changes.subscribe(self._on_change)

    def _on_change(self, change: Change) -> None:
        if change.topic is Topic.VOICES:   # the changed voice, and every name: a new voice can take one over
            self._stored.drop(lambda key, voice: change.item is None or voice.id == change.item or key != voice.id)

    def _require_cloning(self, field: str, context_id: str | None = None) -> None:
        if not self.engine.capabilities.voice_cloning:
            raise Unsupported(f"{field}: the {self.engine.name} engine cannot clone voices", context_id=context_id)

    async def _prepare(self, clip: ReferenceClip, voice_id: str, name: str) -> Voice:
        return await asyncio.to_thread(self.engine.prepare_voice, clip.audio, clip.sample_rate, voice_id, name)

    async def decode(self, reference_audio: str, field: str) -> ReferenceClip:
        """A base64 (or data: URI) clip, decoded and validated off the event loop; errors name `field`."""
        return await asyncio.to_thread(
            lambda: decode_clip(decode_base64(reference_audio, field), self.settings.limits, field))

    async def clone(self, clip: ReferenceClip) -> Voice:
        """The voice of a clip that is not stored (inline or fetched), prepared once per clip content."""
        digest = await asyncio.to_thread(audio_digest, clip.audio, clip.sample_rate)
        if (voice := self._inline.get(digest)) is not None:
            return voice
        token = self._inline.token()
        return self._inline.put(digest, await self._prepare(clip, f"inline-{digest[:12]}", "inline"), token)

    async def resolve(self, spec: VoiceSpec | None, context_id: str | None = None) -> Voice:
        try:
            return await self._resolve(spec)
        except ProtocolError as exc:
            if exc.context_id is None and context_id is not None:
                exc.context_id = context_id
            raise

    async def _resolve(self, spec: VoiceSpec | None) -> Voice:
        if spec is None or spec == "default":
            return self.engine.default_voice()
        if isinstance(spec, InlineVoice):
            self._require_cloning("voice.reference_audio")
            return await self.clone(await self.decode(spec.reference_audio, "voice.reference_audio"))
        if (voice := self._stored.get(spec)) is not None:
            return voice
        if self.engine.capabilities.voice_cloning:
            token = self._stored.token()
            found = await asyncio.to_thread(self._load, spec)
            if found is not None:
                stored, clip = found
                voice = await self._prepare(clip, stored.id, stored.name)
                self._stored.put(stored.id, voice, token)
                return self._stored.put(spec, voice, token)
        try:
            default = self.engine.default_voice()
        except VoiceNotFound:
            default = None
        if default is not None and spec in (default.id, default.name):
            return default
        raise VoiceNotFound(f"voice: no voice with id or name {spec!r}")

    def _load(self, spec: str) -> tuple[StoredVoice, ReferenceClip] | None:
        stored = self._voices.get(spec)
        data = self._voices.audio(stored.id) if stored is not None else None
        if stored is None or data is None:
            return None
        return stored, decode_clip(data, self.settings.limits, "voice")

    def _decode_upload(self, data: bytes) -> tuple[ReferenceClip, str]:
        clip = decode_clip(data, self.settings.limits, "file")
        return clip, audio_digest(clip.audio, clip.sample_rate)

    async def add(self, data: bytes, name: str | None) -> StoredVoice:
        """Validate, prepare (so a bad clip fails now, not in a turn) and store a voice."""
        self._require_cloning("voice")
        clip, digest = await asyncio.to_thread(self._decode_upload, data)
        voice_id = "v_" + secrets.token_hex(8)
        stored = StoredVoice(voice_id, name or voice_id, clip.format, clip.sample_rate, clip.seconds, digest,
                             time.time())
        await asyncio.to_thread(self._voices.add, stored, data)
        token = self._stored.token()
        try:
            voice = await self._prepare(clip, stored.id, stored.name)
        except BaseException:
            await asyncio.to_thread(self._voices.delete, stored.id)
            raise
        self._stored.put(stored.id, voice, token)
        return stored

    async def list(self) -> list[StoredVoice]:
        if not self.engine.capabilities.voice_cloning:
            return []
        return await asyncio.to_thread(self._voices.list)

    async def delete(self, voice_id: str) -> None:
        """Delete a stored voice; this process's cache forgets it before this returns (the change feed)."""
        if not self.engine.capabilities.voice_cloning or not await asyncio.to_thread(self._voices.delete, voice_id):
            raise VoiceNotFound(f"voice: no stored voice with id {voice_id!r}")
