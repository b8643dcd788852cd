"""voicewire as a pipecat TTS service: `VoicewireTTSService(url=...)` in place of any websocket TTS.

One socket per service; one voicewire context per LLM turn (pipecat reuses the context id within
a turn). LLM tokens go out as they come (the server cuts phrases, so no client-side sentence
aggregation is needed), the turn's `end` goes out when pipecat flushes it, and an interruption
sends `cancel`. Phrase events become pipecat word timestamps, so the assistant's context holds
only what was actually played. Voice and generation settings are per turn: a
`TTSUpdateSettingsFrame` mid-turn closes the current context and opens the rest of the turn in a
new one with the new settings.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from pipecat.frames.frames import ErrorFrame, Frame, TTSAudioRawFrame, TTSStoppedFrame
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.services.settings import TTSSettings
from pipecat.services.tts_service import TextAggregationMode, WebsocketTTSService
from pipecat.utils.types import NOT_GIVEN, NotGiven
from websockets.protocol import State

from clients.client import DEFAULT_URL, audio_bytes, read_frame
from stream.core.server_messages import (
    AudioMessage,
    CancelledMessage,
    DoneMessage,
    ErrorMessage,
    PhraseMessage,
    ReadyMessage,
)

from .phrase_timing import PhraseTimer

GENERATION_FIELDS = ("exaggeration", "temperature", "cfg_weight", "min_p", "top_p", "repetition_penalty", "seed",
                     "speed")
SERVER_SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
KEEPALIVE_INTERVAL_S = 30.0
# pipecat ends an audio context that gets no item for this long. voicewire ends every context
# explicitly (`done`/`cancelled`/`error`), and a later turn's audio legitimately waits behind the
# earlier one (contexts are spoken in order), so pipecat's 3 s guess would drop real audio on a busy
# or slow (CPU) engine.
STOP_FRAME_TIMEOUT_S = 15.0


def _unset() -> Any:
    return field(default_factory=lambda: NOT_GIVEN)


@dataclass
class VoicewireTTSSettings(TTSSettings):
    """Runtime-updatable voicewire settings; each applies from the next turn (context) on."""

    exaggeration: float | None | NotGiven = _unset()
    temperature: float | None | NotGiven = _unset()
    cfg_weight: float | None | NotGiven = _unset()
    min_p: float | None | NotGiven = _unset()
    top_p: float | None | NotGiven = _unset()
    repetition_penalty: float | None | NotGiven = _unset()
    seed: int | None | NotGiven = _unset()
    speed: float | None | NotGiven = _unset()


class VoicewireTTSService(WebsocketTTSService):
    """Streaming TTS over voicewire's `/v1/stream` websocket."""

    Settings = VoicewireTTSSettings
    _settings: VoicewireTTSSettings

    def __init__(self, *, url: str = DEFAULT_URL, api_key: str | None = None, sample_rate: int | None = None,
                 text_aggregation_mode: TextAggregationMode = TextAggregationMode.TOKEN,
                 settings: VoicewireTTSSettings | None = None, **kwargs: Any) -> None:
        store = VoicewireTTSSettings(model=None, voice=None, language=None,
                                     **{name: None for name in GENERATION_FIELDS})
        if settings is not None:
            store.apply_update(settings)
        kwargs.setdefault("stop_frame_timeout_s", STOP_FRAME_TIMEOUT_S)
        super().__init__(text_aggregation_mode=text_aggregation_mode, push_text_frames=False,
                         push_start_frame=True, sample_rate=sample_rate, settings=store, **kwargs)
        self._url = url
        self._api_key = api_key
        self._wire_rate = 0  # the rate voicewire sends; differs from the pipeline's only if unsupported
        self._receive_task = None
        self._opened: set[str] = set()  # contexts this socket has opened on the server and not finished
        self._timers: dict[str, PhraseTimer] = {}

    def can_generate_metrics(self) -> bool:
        return True

    async def setup(self, setup: FrameProcessorSetup) -> None:
        await super().setup(setup)
        await self._connect()

    async def _connect(self) -> None:
        await super()._connect()
        await self._connect_websocket()
        if self._websocket and not self._receive_task:
            self._receive_task = self.create_task(self._receive_task_handler(self._report_error))
        self._create_keepalive_task(KEEPALIVE_INTERVAL_S)

    async def _disconnect(self) -> None:
        await super()._disconnect()
        await self._cancel_keepalive_task()
        if self._receive_task:
            await self.cancel_task(self._receive_task)
            self._receive_task = None
        await self._disconnect_websocket()

    async def _connect_websocket(self) -> None:
        """Open the socket and ask for the pipeline's sample rate (or the engine's, resampled here)."""
        if self._websocket and self._websocket.state is State.OPEN:
            return
        try:
            headers = {"x-api-key": self._api_key} if self._api_key else None
            self._websocket = await self._websocket_connect(self._url, additional_headers=headers,
                                                            max_size=2**24)
            await self._expect_ready("the session")
            wanted = self.sample_rate if self.sample_rate in SERVER_SAMPLE_RATES else None
            output_format = {"encoding": "pcm_s16le", **({"sample_rate": wanted} if wanted else {})}
            await self._websocket.send(json.dumps({"type": "init", "output_format": output_format}))
            self._wire_rate = (await self._expect_ready("init")).output_format.sample_rate
            self._opened.clear()
            self._timers.clear()
            await self._call_event_handler("on_connected")
        except Exception as exc:
            self._websocket = None
            await self.push_error(error_msg=f"voicewire connection failed: {exc}", exception=exc)
            await self._call_event_handler("on_connection_error", f"{exc}")

    async def _expect_ready(self, what: str) -> ReadyMessage:
        message = read_frame(await self._websocket.recv())
        if not isinstance(message, ReadyMessage):
            why = message.message if isinstance(message, ErrorMessage) else getattr(message, "type", "unknown")
            raise ConnectionError(f"voicewire refused {what}: {why}")
        return message

    async def _disconnect_websocket(self) -> None:
        try:
            await self.stop_all_metrics()
            if self._websocket:
                await self._websocket.close()
        finally:
            self._websocket = None
            await self._call_event_handler("on_disconnected")

    async def _send(self, message: dict) -> None:
        if self._websocket is None:
            raise ConnectionError("voicewire websocket is not connected")
        await self._websocket.send(json.dumps(message))

    async def _send_keepalive(self) -> None:
        await self._send({"type": "keepalive"})

    def _turn_settings(self) -> dict:
        """Voice and generation for a context's first message, from the current settings."""
        settings = self._settings
        generation = {name: getattr(settings, name) for name in GENERATION_FIELDS
                      if getattr(settings, name) is not None}
        if settings.language:
            generation["language"] = str(settings.language)
        first: dict = {}
        if settings.voice:
            first["voice"] = settings.voice
        if generation:
            first["generation"] = generation
        return first

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        """Send one piece of the turn's text; audio arrives on the receive task."""
        try:
            if not self._websocket or self._websocket.state is not State.OPEN:
                await self._connect()
            message = {"type": "text", "context_id": context_id, "text": text}
            if context_id not in self._opened:
                message.update(self._turn_settings())
                self._opened.add(context_id)
                self._timers[context_id] = PhraseTimer()
            await self._send(message)
            await self.start_tts_usage_metrics(text)
            yield None
        except Exception as exc:
            yield ErrorFrame(error=f"voicewire send failed: {exc}")

    async def flush_audio(self, context_id: str | None = None) -> None:
        """The LLM turn is complete: `end` its context so the server finishes and answers `done`."""
        context_id = context_id or self.get_active_audio_context_id()
        if context_id in self._opened and self._websocket:
            await self._send({"type": "end", "context_id": context_id})

    async def on_audio_context_interrupted(self, context_id: str) -> None:
        """Barge-in: the server stops generating within one chunk; later audio for it is dropped."""
        await self.stop_all_metrics()
        if context_id in self._opened and self._websocket:
            self._opened.discard(context_id)
            self._timers.pop(context_id, None)
            await self._send({"type": "cancel", "context_id": context_id})
        await super().on_audio_context_interrupted(context_id)

    async def _update_settings(self, delta: TTSSettings) -> dict[str, Any]:
        """Settings are locked per voicewire context, so a change mid-turn rotates the context."""
        changed = await super()._update_settings(delta)
        if changed and self._turn_context_id:
            await self._push_sequencer_frames(
                await self._aggregated_frame_sequencer.finalize(self._turn_context_id), self._turn_context_id)
            if self.audio_context_available(self._turn_context_id):
                await self.flush_audio(context_id=self._turn_context_id)
            self._turn_context_id = None
            self._turn_context_id = self.create_context_id()
        return changed

    async def _add_words(self, context_id: str, words: list) -> None:
        if words:
            await self.add_word_timestamps([(w.word, w.start_s) for w in words], context_id)

    async def _receive_messages(self) -> None:
        async for raw in self._websocket:
            message = read_frame(raw)
            if isinstance(message, ErrorMessage) and (message.context_id is None or message.fatal):
                await self.push_error(error_msg=f"voicewire {message.code}: {message.message}")
                continue
            context_id = getattr(message, "context_id", None)
            if context_id is None or not self.audio_context_available(context_id):
                continue  # audio of an interrupted turn: never played (and ready, or types unknown here)
            if isinstance(message, AudioMessage):
                audio = audio_bytes(message)
                if self._wire_rate != self.sample_rate:
                    audio = await self._resampler.resample(audio, self._wire_rate, self.sample_rate)
                await self.append_to_audio_context(
                    context_id, TTSAudioRawFrame(audio, self.sample_rate, 1, context_id=context_id))
            elif isinstance(message, PhraseMessage) and context_id in self._timers:
                words = self._timers[context_id].phrase(message.text, message.start_ms)
                await self._add_words(context_id, words)
            elif isinstance(message, DoneMessage):
                timer = self._timers.pop(context_id, None)
                if timer is not None:
                    await self._add_words(context_id, timer.done(message.audio_ms))
                self._opened.discard(context_id)
                await self.append_to_audio_context(context_id, TTSStoppedFrame(context_id=context_id))
                await self.remove_audio_context(context_id)
            elif isinstance(message, CancelledMessage | ErrorMessage):
                if isinstance(message, ErrorMessage):
                    await self.push_error(error_msg=f"voicewire {message.code}: {message.message}")
                self._opened.discard(context_id)
                self._timers.pop(context_id, None)
                await self.append_to_audio_context(context_id, TTSStoppedFrame(context_id=context_id))
                await self.remove_audio_context(context_id)
