"""Speak any LLM token stream as one voicewire context, with barge-in that says what was heard.

The LLM and the speech run concurrently: deltas are forwarded the moment the LLM yields them (no
client-side buffering, the server cuts phrases), and audio events are handed to the caller's
player as they arrive. `cancel()` stops both the LLM stream and the synthesis.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from clients.client import (
    AudioEvent,
    CancelledEvent,
    ContextStream,
    DoneEvent,
    ErrorEvent,
    Event,
    PhraseEvent,
    ServerError,
    VoicewireClient,
)


@dataclass
class SpokenReply:
    """How a spoken reply ended: all text the LLM produced and how much of it became audio."""

    context_id: str
    text: str
    cancelled: bool
    text_spoken: str
    text_remaining: str
    audio_ms: float
    ttfa_ms: float | None
    phrases: list[PhraseEvent] = field(default_factory=list)

    def heard_at(self, played_ms: float) -> str:
        """Text whose audio had started playing by `played_ms`: what an interrupted user heard.

        The server only knows what it *sent*; a player knows how far it got, and the phrase
        `start_ms` positions map that back to text (what goes into the LLM's history).
        """
        return "".join(p.text for p in self.phrases if p.start_ms < played_ms)


class ReplySpeech:
    """One LLM reply being spoken. Iterate `events()` for playback, `cancel()` on barge-in."""

    def __init__(self, client: VoicewireClient, deltas: AsyncIterable[str] | Iterable[str],
                 voice: Any = None, generation: dict | None = None, context_id: str | None = None) -> None:
        self.context = client.context(context_id, voice, generation)
        self.text = ""
        self._phrases: list[PhraseEvent] = []
        self._first_audio_at: float | None = None
        self._final: DoneEvent | CancelledEvent | None = None
        self._finished = asyncio.Event()
        self._llm_error: BaseException | None = None
        self._pump = asyncio.create_task(self._forward(deltas))

    @property
    def id(self) -> str:
        return self.context.id

    async def _forward(self, deltas: AsyncIterable[str] | Iterable[str]) -> None:
        ctx: ContextStream = self.context
        try:
            if isinstance(deltas, AsyncIterable):
                async for delta in deltas:
                    await self._send(ctx, delta)
            else:
                for delta in deltas:
                    await self._send(ctx, delta)
            if ctx.sent_first_text_at is None:
                await ctx.send_text("")
            await ctx.end()
        except Exception as exc:  # the LLM failed mid-reply: stop the speech, report it from events()
            self._llm_error = exc
            await self._cancel_context()
        finally:
            if isinstance(deltas, AsyncIterator) and hasattr(deltas, "aclose"):
                await deltas.aclose()  # closes the LLM's HTTP stream too, so it stops generating

    async def _send(self, ctx: ContextStream, delta: str) -> None:
        if delta:
            self.text += delta
            await ctx.send_text(delta)

    async def events(self) -> AsyncIterator[Event]:
        """Audio and phrase events in order, then the final `done` or `cancelled`.

        Raises if the LLM stream failed (after cancelling the context) or the server reported
        a context error.
        """
        try:
            async for event in self.context.events():
                if isinstance(event, ErrorEvent):
                    await self.cancel()
                    raise ServerError(event)
                if isinstance(event, PhraseEvent):
                    self._phrases.append(event)
                elif isinstance(event, AudioEvent) and self._first_audio_at is None:
                    self._first_audio_at = event.received_at
                elif isinstance(event, DoneEvent | CancelledEvent):
                    self._final = event
                yield event
            if self._llm_error is not None:
                raise self._llm_error
        finally:
            self._finished.set()

    async def cancel(self) -> None:
        """Barge-in: stop reading the LLM and tell the server to stop; `events()` ends with `cancelled`."""
        if not self._pump.done():
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        await self._cancel_context()

    async def _cancel_context(self) -> None:
        if self._final is None:
            if self.context.sent_first_text_at is None:
                await self.context.send_text("")  # a context must exist before it can be cancelled
            await self.context.cancel()

    async def wait(self) -> SpokenReply:
        """Drain the events (when no one else is) and summarize the reply."""
        if not self._finished.is_set():
            async for _ in self.events():
                pass
        await asyncio.gather(self._pump, return_exceptions=True)
        final = self._final
        if isinstance(final, CancelledEvent):
            spoken, remaining, audio_ms = final.text_spoken, final.text_remaining, final.audio_ms
        else:
            spoken, remaining, audio_ms = self.text, "", getattr(final, "audio_ms", 0.0)
        sent_at = self.context.sent_first_text_at
        ttfa = None if sent_at is None or self._first_audio_at is None else (self._first_audio_at - sent_at) * 1000
        return SpokenReply(self.id, self.text, isinstance(final, CancelledEvent), spoken, remaining, audio_ms,
                           ttfa, list(self._phrases))


def speak_stream(client: VoicewireClient, deltas: AsyncIterable[str] | Iterable[str], *, voice: Any = None,
                 generation: dict | None = None, context_id: str | None = None) -> ReplySpeech:
    """Start speaking an LLM's text deltas as one context; per-turn voice/generation settings apply."""
    return ReplySpeech(client, deltas, voice, generation, context_id)
