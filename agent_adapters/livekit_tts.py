"""voicewire as a LiveKit Agents TTS: `AgentSession(tts=voicewire.TTS(url=...))`.

Streaming and aligned transcripts: each `SynthesizeStream` is one voicewire context on a socket
shared by the TTS (contexts multiplex, so no per-utterance handshake). `push_text` sends `text`,
`flush` sends `flush`, `end_input` sends `end`; phrase events become timed transcript words.
Closing a stream before its `done` (LiveKit does so on interruption) sends `cancel`, and the
shared socket stays up for the next turn.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

from livekit.agents import (
    DEFAULT_API_CONNECT_OPTIONS,
    APIConnectionError,
    APIConnectOptions,
    APIStatusError,
    tts,
)
from livekit.agents.types import NOT_GIVEN, NotGivenOr, TimedString
from livekit.agents.utils import is_given

from clients.client import (
    DEFAULT_URL,
    AudioEvent,
    CancelledEvent,
    ContextStream,
    DoneEvent,
    ErrorEvent,
    PhraseEvent,
    ServerError,
    VoicewireClient,
)

from .phrase_timing import PhraseTimer, WordTime

SERVER_SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)


@dataclass(frozen=True)
class TurnOptions:
    """What a new context is opened with: a voice id/name and the generation settings."""

    voice: Any = None
    generation: dict | None = None


class TTS(tts.TTS):
    def __init__(self, *, url: str = DEFAULT_URL, api_key: str | None = None, sample_rate: int = 24000,
                 voice: Any = None, generation: dict | None = None) -> None:
        if sample_rate not in SERVER_SAMPLE_RATES:
            raise ValueError(f"sample_rate must be one of {SERVER_SAMPLE_RATES}")
        super().__init__(capabilities=tts.TTSCapabilities(streaming=True, aligned_transcript=True),
                         sample_rate=sample_rate, num_channels=1)
        self._url = url
        self._api_key = api_key
        self._opts = TurnOptions(voice, dict(generation) if generation else None)
        self._client: VoicewireClient | None = None
        self._connecting = asyncio.Lock()

    @property
    def provider(self) -> str:
        return "voicewire"

    @property
    def model(self) -> str:
        return self._client.ready_message.model if self._client else "unknown"

    def update_options(self, *, voice: NotGivenOr[Any] = NOT_GIVEN,
                       generation: NotGivenOr[dict | None] = NOT_GIVEN) -> None:
        """Change the voice and/or generation settings for streams opened from now on."""
        if is_given(voice):
            self._opts = replace(self._opts, voice=voice)
        if is_given(generation):
            self._opts = replace(self._opts, generation=dict(generation) if generation else None)

    async def connection(self) -> VoicewireClient:
        """The shared session, opened (or reopened after a drop) on first use."""
        async with self._connecting:
            if self._client is None or self._client.closed:
                try:
                    self._client = await VoicewireClient.connect(self._url, api_key=self._api_key)
                    await self._client.init(output_format={"encoding": "pcm_s16le",
                                                           "sample_rate": self.sample_rate})
                except ServerError as exc:
                    raise APIStatusError(str(exc), status_code=401 if exc.code == "unauthorized" else 503,
                                         retryable=exc.code != "unauthorized") from exc
                except OSError as exc:
                    raise APIConnectionError(f"cannot reach voicewire at {self._url}: {exc}") from exc
            return self._client

    def prewarm(self) -> None:
        asyncio.ensure_future(self.connection())

    def synthesize(self, text: str, *,
                   conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> tts.ChunkedStream:
        return self._synthesize_with_stream(text, conn_options=conn_options)

    def stream(self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> SynthesizeStream:
        return SynthesizeStream(tts=self, conn_options=conn_options)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _timed(words: list[WordTime]) -> list[TimedString]:
    return [TimedString(w.word + " ", start_time=w.start_s, end_time=w.end_s) for w in words]


class SynthesizeStream(tts.SynthesizeStream):
    def __init__(self, *, tts: TTS, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, conn_options=conn_options)
        self._vw_tts = tts
        self._opts = tts._opts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        client = await self._vw_tts.connection()
        ctx = client.context(voice=self._opts.voice, generation=self._opts.generation)
        output_emitter.initialize(request_id=ctx.id, sample_rate=self._vw_tts.sample_rate, num_channels=1,
                                  mime_type="audio/pcm", stream=True)
        output_emitter.start_segment(segment_id=ctx.id)
        finished = False
        sender = asyncio.create_task(self._send_input(ctx))
        try:
            finished = await self._receive(ctx, output_emitter)
            await sender
        except ServerError as exc:
            if exc.code == "connection_closed":
                raise APIConnectionError(f"voicewire: {exc}") from exc
            raise APIStatusError(f"voicewire: {exc}", status_code=500, retryable=False) from exc
        finally:
            if not sender.done():
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
            if not finished and ctx.sent_first_text_at is not None and not client.closed:
                await ctx.cancel()  # interrupted or failed: free the server's context now

    async def _send_input(self, ctx: ContextStream) -> None:
        async for data in self._input_ch:
            if isinstance(data, self._FlushSentinel):
                if ctx.sent_first_text_at is not None:
                    await ctx.flush()
                continue
            self._mark_started()
            await ctx.send_text(data)
        if ctx.sent_first_text_at is None:
            await ctx.send_text("")
        await ctx.end()

    async def _receive(self, ctx: ContextStream, output_emitter: tts.AudioEmitter) -> bool:
        """Forward audio and timed words; True once the context is `done`."""
        timer = PhraseTimer()
        async for event in ctx.events():
            if isinstance(event, AudioEvent):
                output_emitter.push(event.data)
            elif isinstance(event, PhraseEvent):
                output_emitter.push_timed_transcript(_timed(timer.phrase(event.text, event.start_ms)))
            elif isinstance(event, DoneEvent):
                output_emitter.push_timed_transcript(_timed(timer.done(event.audio_ms)))
                output_emitter.end_segment()
                return True
            elif isinstance(event, CancelledEvent):
                return True
            elif isinstance(event, ErrorEvent):
                raise APIStatusError(f"voicewire {event.code}: {event.message}", status_code=400, body=event,
                                     retryable=False)
        return False
