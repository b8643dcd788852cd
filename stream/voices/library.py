"""Resolving the `voice` of a turn to a prepared engine `Voice`, and managing stored voices.

A turn names a voice by id or name, sends an inline reference clip, or names none (the engine
default). Stored voices live in the server database (`voice_store`); their prepared conditioning
is cached by the engine, keyed by clip content, so resolving a known voice after the first time
costs a dictionary lookup here, and after a restart a disk read in the engine's cache.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict

from stream.audio.reference import ReferenceClip, decode_base64, decode_clip
from stream.core.errors import ProtocolError, Unsupported, VoiceNotFound
from stream.core.protocol import InlineVoice, VoiceSpec
from stream.engines.base import Engine, Voice
from stream.engines.chatterbox.conditioning_cache import audio_digest
from stream.settings import Settings
from stream.storage.sqlite import Database
from stream.voices.store import StoredVoice, VoiceStore


class VoiceLibrary:
    """The voices a server can speak with."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self._store: VoiceStore | None = None
        self._store_lock = threading.Lock()
        self._prepared: OrderedDict[str, Voice] = OrderedDict()

    @property
    def store(self) -> VoiceStore:
        """The database-backed store, opened on first use (servers that never touch voices create no file)."""
        with self._store_lock:
            if self._store is None:
                self._store = VoiceStore(Database(self.settings.database_path))
            return self._store

    def _require_cloning(self, field: str, context_id: str | None = None) -> None:
        if not self.engine.capabilities.voice_cloning:
            raise Unsupported(f"{field}: the {self.engine.name} engine cannot clone voices", context_id=context_id)

    def _remember(self, key: str, voice: Voice) -> Voice:
        self._prepared[key] = voice
        self._prepared.move_to_end(key)
        while len(self._prepared) > max(1, self.settings.voice_cache_size):
            self._prepared.popitem(last=False)
        return voice

    async def _prepare(self, clip: ReferenceClip, voice_id: str, name: str) -> Voice:
        return await asyncio.to_thread(self.engine.prepare_voice, clip.audio, clip.sample_rate, voice_id, name)

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
            clip = decode_clip(decode_base64(spec.reference_audio, "voice.reference_audio"), self.settings.limits,
                               "voice.reference_audio")
            digest = audio_digest(clip.audio, clip.sample_rate)
            if (voice := self._prepared.get(f"inline:{digest}")) is not None:
                return voice
            voice = await self._prepare(clip, f"inline-{digest[:12]}", "inline")
            return self._remember(f"inline:{digest}", voice)
        if (voice := self._prepared.get(spec)) is not None:
            self._prepared.move_to_end(spec)
            return voice
        if self.engine.capabilities.voice_cloning:
            stored = await asyncio.to_thread(self.store.get, spec)
            if stored is not None:
                data = await asyncio.to_thread(self.store.audio, stored.id)
                if data is not None:
                    clip = decode_clip(data, self.settings.limits, "voice")
                    voice = await self._prepare(clip, stored.id, stored.name)
                    self._remember(stored.id, voice)
                    return self._remember(spec, voice)
        try:
            default = self.engine.default_voice()
        except VoiceNotFound:
            default = None
        if default is not None and spec in (default.id, default.name):
            return default
        raise VoiceNotFound(f"voice: no voice with id or name {spec!r}")

    async def add(self, data: bytes, name: str | None) -> StoredVoice:
        """Validate, prepare (so a bad clip fails now, not in a turn) and store a voice."""
        self._require_cloning("voice")
        clip = decode_clip(data, self.settings.limits, "file")
        digest = audio_digest(clip.audio, clip.sample_rate)
        stored = await asyncio.to_thread(self.store.add, name=name, audio=data, format=clip.format,
                                         sample_rate=clip.sample_rate, seconds=clip.seconds, content_sha256=digest)
        try:
            voice = await self._prepare(clip, stored.id, stored.name)
        except BaseException:
            await asyncio.to_thread(self.store.delete, stored.id)
            raise
        self._remember(stored.id, voice)
        return stored

    async def list(self) -> list[StoredVoice]:
        if not self.engine.capabilities.voice_cloning:
            return []
        return await asyncio.to_thread(self.store.list)

    async def delete(self, voice_id: str) -> None:
        if not self.engine.capabilities.voice_cloning or not await asyncio.to_thread(self.store.delete, voice_id):
            raise VoiceNotFound(f"voice: no stored voice with id {voice_id!r}")
        for key in [k for k, v in self._prepared.items() if v.id == voice_id]:
            del self._prepared[key]
