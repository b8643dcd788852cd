"""The I/O-free session: contexts, their life cycle, phrases, ordering, limits and timing.

A context is a small explicit state machine (OPEN -> ENDED -> DONE, or -> CANCELLED from either);
every illegal message maps to one error code, here and only here. The asyncio shell feeds client
messages and clock readings in and reads phrases and wire messages out; nothing here touches a
socket, a thread or a model.
"""

from __future__ import annotations

import enum
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from stream.core.errors import (
    ContextClosed,
    RateLimited,
    SettingsLocked,
    TextTooLong,
    TooManyContexts,
    UnknownContext,
)
from stream.core.limits import Limits
from stream.core.normalizer import NormalizerOptions, normalize
from stream.core.protocol import GenerationSettings, TextMessage, VoiceSpec, finite
from stream.core.segmenter import CutterConfig, PhraseCutter
from stream.core.synthesis import Voice

CLOSED_IDS_REMEMBERED = 4096


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


@dataclass
class Context:
    id: str
    voice: VoiceSpec | None
    generation: GenerationSettings
    cutter: PhraseCutter
    normalizer: NormalizerOptions
    opened_at: float
    engine_voice: Voice
    encoding: str
    output_rate: int
    state: ContextState = ContextState.OPEN
    characters: int = 0
    phrases: deque[Phrase] = field(default_factory=deque)
    phrases_made: int = 0
    spoken: list[str] = field(default_factory=list)       # texts of phrases whose audio was all sent
    in_flight: Phrase | None = None                        # phrase being spoken now
    samples_sent: int = 0
    first_audio_at: float | None = None

    @property
    def finished_input(self) -> bool:
        return self.state is not ContextState.OPEN

    def _take(self, texts: list[str]) -> list[Phrase]:
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


class TokenBucket:
    """Message-rate limit: `rate` per second with a burst of two seconds' worth."""

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, 2 * rate)
        self.tokens = self.capacity
        self.stamp = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Session:
    """All contexts of one connection, in the order they were opened."""

    def __init__(self, limits: Limits, engine_name: str, now: float) -> None:
        self.limits = limits
        self.engine_name = engine_name
        self.contexts: OrderedDict[str, Context] = OrderedDict()
        self._closed: OrderedDict[str, ContextState] = OrderedDict()
        self._bucket = TokenBucket(limits.messages_per_second, now)
        self.default_voice: VoiceSpec | None = None
        self.default_generation = GenerationSettings()

    # -- inputs -----------------------------------------------------------------------------
    def admit(self, now: float) -> None:
        """Count one client message against the rate limit."""
        if not self._bucket.take(now):
            raise RateLimited(
                f"message rate above {self.limits.messages_per_second:g} per second; slow down"
            )

    def check_text(self, msg: TextMessage) -> VoiceSpec | None:
        """Validate a `text` message before anything is accepted.

        Returns the voice spec to resolve when the message opens a context (None when it does not
        open one, or opens one with the engine's default voice) so the shell can prepare the voice
        before calling `text`.
        """
        ctx = self.contexts.get(msg.context_id)
        if ctx is None:
            self._refuse_closed(msg.context_id)
            if len(self.contexts) >= self.limits.max_contexts_per_session:
                raise TooManyContexts(
                    f"context_id: at most {self.limits.max_contexts_per_session} open contexts per session",
                    context_id=msg.context_id,
                )
            self._check_length(msg.context_id, 0, msg.text)
            return msg.voice if msg.voice is not None else self.default_voice
        if ctx.state is not ContextState.OPEN:
            raise ContextClosed(f"context_id: context {ctx.id!r} has ended; open a new context",
                                context_id=ctx.id)
        if msg.voice is not None or msg.generation is not None:
            raise SettingsLocked(
                "voice/generation: settings are fixed by a context's first message; open a new context",
                context_id=ctx.id,
            )
        self._check_length(ctx.id, ctx.characters, msg.text)
        return None

    def text(self, msg: TextMessage, now: float, voice: Voice | None = None,
             output: tuple[str, int] = ("pcm_s16le", 0)) -> tuple[Context, list[Phrase], bool]:
        """Append text (opening the context on first use with `voice` and `output` encoding/rate).

        Call `check_text` first; returns the context, the phrases it released and whether it opened.
        """
        self.check_text(msg)
        ctx = self.contexts.get(msg.context_id)
        opened = ctx is None
        if ctx is None:
            if voice is None:
                raise ValueError("opening a context needs a resolved voice")
            ctx = Context(
                id=msg.context_id,
                voice=msg.voice if msg.voice is not None else self.default_voice,
                generation=msg.generation or self.default_generation,
                cutter=PhraseCutter(CutterConfig.for_engine(self.engine_name)),
                normalizer=NormalizerOptions.for_engine(self.engine_name),
                opened_at=now,
                engine_voice=voice,
                encoding=output[0],
                output_rate=output[1],
            )
            self.contexts[msg.context_id] = ctx
        ctx.characters += len(msg.text)
        ctx.cutter.set_audio_ahead(ctx.audio_ahead_s(now))
        return ctx, ctx._take(ctx.cutter.push(msg.text, now)), opened

    def flush(self, context_id: str) -> list[Phrase]:
        ctx = self._open(context_id)
        return ctx._take(ctx.cutter.flush())

    def end(self, context_id: str) -> list[Phrase]:
        ctx = self._open(context_id)
        ctx.state = ContextState.ENDED
        return ctx._take(ctx.cutter.end())

    def tick(self, now: float) -> list[Context]:
        """Stall timeouts: contexts that released phrases because the text stream paused."""
        touched = []
        for ctx in self.contexts.values():
            if ctx.state is ContextState.OPEN and ctx.cutter.pending:
                ctx.cutter.set_audio_ahead(ctx.audio_ahead_s(now))
                if ctx._take(ctx.cutter.tick(now)):
                    touched.append(ctx)
        return touched

    def cancel(self, context_id: str) -> Context:
        ctx = self.contexts.get(context_id)
        if ctx is None:
            self._refuse_closed(context_id)
            raise UnknownContext(f"context_id: no open context {context_id!r}", context_id=context_id)
        ctx.state = ContextState.CANCELLED
        return ctx

    # -- the speaking side ------------------------------------------------------------------
    def head(self) -> Context | None:
        """The context whose audio goes out now: the oldest one not yet finished."""
        return next(iter(self.contexts.values()), None)

    def audio_sent(self, ctx: Context, samples: int, now: float) -> bool:
        """Record audio sent for `ctx`; True if it was the context's first audio."""
        first = ctx.first_audio_at is None and samples > 0
        if first:
            ctx.first_audio_at = now
        ctx.samples_sent += samples
        return first

    def close(self, ctx: Context) -> dict:
        """Finish a context (done or cancelled) and return its final wire message."""
        self.contexts.pop(ctx.id, None)
        self._closed[ctx.id] = ctx.state
        while len(self._closed) > CLOSED_IDS_REMEMBERED:
            self._closed.popitem(last=False)
        if ctx.state is ContextState.CANCELLED:
            return {
                "type": "cancelled",
                "context_id": ctx.id,
                "audio_ms": finite(ctx.audio_ms()),
                "text_spoken": "".join(ctx.spoken),
                "text_remaining": ctx.remaining_text(),
            }
        ctx.state = ContextState.DONE
        return {
            "type": "done",
            "context_id": ctx.id,
            "ttfa_ms": ctx.ttfa_ms(),
            "audio_ms": finite(ctx.audio_ms()),
            "characters": ctx.characters,
            "phrases": ctx.phrases_made,
        }

    # -- helpers ----------------------------------------------------------------------------
    def _open(self, context_id: str) -> Context:
        ctx = self.contexts.get(context_id)
        if ctx is None:
            self._refuse_closed(context_id)
            raise UnknownContext(f"context_id: no open context {context_id!r}", context_id=context_id)
        if ctx.state is not ContextState.OPEN:
            raise ContextClosed(f"context_id: context {context_id!r} has ended", context_id=context_id)
        return ctx

    def _refuse_closed(self, context_id: str) -> None:
        state = self._closed.get(context_id)
        if state is not None:
            raise ContextClosed(f"context_id: context {context_id!r} is {state.value}; use a new id",
                                context_id=context_id)

    def _check_length(self, context_id: str, have: int, text: str) -> None:
        if have + len(text) > self.limits.max_text_chars_per_context:
            raise TextTooLong(
                f"text: a context holds at most {self.limits.max_text_chars_per_context} characters "
                f"(has {have}, this message adds {len(text)})",
                context_id=context_id,
            )
