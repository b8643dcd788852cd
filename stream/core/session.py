"""The I/O-free session: every decision about one connection's turns, as inputs in, actions out.

Inputs are client messages, engine events (a chunk, a job that finished producing, a job whose
chunks are all read, a failure) and clock readings; outputs are typed actions (`core.actions`) and
the next deadline. The session alone decides which phrase is spoken, which is prefetched, which
job stops, which message goes out and when a context ends. Nothing here touches a socket, a
thread, a clock or a model, so every race between those is a deterministic unit test.

Contexts speak strictly in the order they were opened; only the head context (the oldest one
still open) has audio going out. A context's next phrase is synthesized as soon as the current
phrase's synthesis has finished producing, so it overlaps the sending of the current one.
"""

from __future__ import annotations

import re
from collections import OrderedDict

from stream.core.actions import (
    Action,
    Close,
    Complete,
    Refund,
    SendAudio,
    SendMessage,
    StartJob,
    StopJob,
)
from stream.core.context import Context, ContextState, Phrase, finite
from stream.core.errors import (
    ContextClosed,
    IdleTimeout,
    ProtocolError,
    RateLimited,
    ServerShuttingDown,
    SettingsLocked,
    TextTooLong,
    TooManyContexts,
    UnknownContext,
)
from stream.core.limits import Limits
from stream.core.phrase_audio import AudioPiece, PhraseAudioFactory
from stream.core.protocol import GenerationSettings, TextMessage, VoiceSpec
from stream.core.rate_limit import TokenBucket
from stream.core.segmenter import PhraseCutter, SynthesisRate
from stream.core.server_messages import CancelledMessage, DoneMessage, PhraseMessage
from stream.core.speech_policy import SpeechPolicy
from stream.core.synthesis import SynthesisRequest, Voice

__all__ = ["Context", "ContextState", "Phrase", "Session"]

CLOSED_IDS_REMEMBERED = 4096
# A held cutter re-checks just after the listener's queued audio drops below the starving mark.
_HOLD_EPSILON_S = 0.001
_WORDS = re.compile(r"\S+\s*|\s+")


class Session:
    """All contexts of one connection, in the order they were opened."""

    def __init__(self, limits: Limits, policy: SpeechPolicy, audio: PhraseAudioFactory, now: float) -> None:
        self.limits = limits
        self.policy = policy
        self._audio = audio
        self.contexts: OrderedDict[str, Context] = OrderedDict()
        self._closed: OrderedDict[str, ContextState] = OrderedDict()
        self._bucket = TokenBucket(limits.messages_per_second, now)
        self._last_activity = now
        self._jobs: dict[int, str] = {}      # job id -> context id, for jobs not yet finished
        self._started: dict[int, tuple[float, int]] = {}  # job id -> (started at, characters), until produced
        self.synthesis = SynthesisRate()      # the engine's pace as this session sees it; tunes the cutter
        self._produced: set[int] = set()      # jobs whose engine has finished producing chunks
        self._next_job = 0
        self.ended = False                    # closed (idle, shutdown) or disconnected: no more actions
        self.spoken_characters = 0            # text whose audio was all handed out: its credits are settled
        self.default_voice: VoiceSpec | None = None
        self.default_generation = GenerationSettings()

    # -- client inputs ------------------------------------------------------------------------
    def admit(self, now: float) -> None:
        """Count one client message against the rate limit; any message also resets the idle clock."""
        self._last_activity = now
        if not self._bucket.take(now):
            raise RateLimited(f"message rate above {self.limits.messages_per_second:g} per second; slow down")

    def check_text(self, msg: TextMessage) -> VoiceSpec | None:
        """Validate a `text` message before anything is accepted (credits taken, voice prepared).

        Returns the voice spec to resolve when the message opens a context (None when it opens one
        with the engine's default voice, or does not open one).
        """
        ctx = self.contexts.get(msg.context_id)
        if ctx is None:
            self._refuse_closed(msg.context_id)
            if len(self.contexts) >= self.limits.max_contexts_per_session:
                raise TooManyContexts(
                    f"context_id: at most {self.limits.max_contexts_per_session} open contexts per session",
                    context_id=msg.context_id)
            self._check_length(msg.context_id, 0, msg.text)
            return msg.voice if msg.voice is not None else self.default_voice
        if ctx.state is not ContextState.OPEN:
            raise ContextClosed(f"context_id: context {ctx.id!r} has ended; open a new context", context_id=ctx.id)
        if msg.voice is not None or msg.generation is not None:
            raise SettingsLocked(
                "voice/generation: settings are fixed by a context's first message; open a new context",
                context_id=ctx.id)
        self._check_length(ctx.id, ctx.characters, msg.text)
        return None

    def opens(self, msg: TextMessage) -> bool:
        return msg.context_id not in self.contexts

    def text(self, msg: TextMessage, now: float, voice: Voice | None = None,
             output: tuple[str, int] = ("pcm_s16le", 0)) -> list[Action]:
        """Append text, opening the context on first use with `voice` and the (encoding, rate) `output`."""
        self.check_text(msg)
        ctx = self.contexts.get(msg.context_id)
        if ctx is None:
            if voice is None:
                raise ValueError("opening a context needs a resolved voice")
            ctx = self._open(msg.context_id, msg.voice, msg.generation, voice, output, now)
        ctx.characters += len(msg.text)
        self._hint(ctx, now)
        ctx.take(ctx.cutter.push(msg.text, now))
        return self._progress(now)

    def say(self, context_id: str, text: str, voice: Voice, generation: GenerationSettings,
            output: tuple[str, int], now: float, chars_per_s: float) -> list[Action]:
        """Open, fill and end a context with a complete text (the one-shot HTTP path).

        Fed word by word as if the listener already had every cut phrase queued at `chars_per_s`,
        so the first phrase is cut early for TTFA and later ones at sentence boundaries.
        """
        ctx = self._open(context_id, None, generation, voice, output, now)
        ctx.characters = len(text)
        emitted = 0
        for word in _words(text):
            ctx.cutter.set_audio_ahead(emitted / chars_per_s)
            for phrase in ctx.take(ctx.cutter.push(word, now)):
                emitted += len(phrase.text)
        ctx.state = ContextState.ENDED
        ctx.take(ctx.cutter.end())
        return self._progress(now)

    def flush(self, context_id: str, now: float) -> list[Action]:
        ctx = self._open_context(context_id)
        ctx.take(ctx.cutter.flush())
        return self._progress(now)

    def end(self, context_id: str, now: float) -> list[Action]:
        ctx = self._open_context(context_id)
        ctx.state = ContextState.ENDED
        ctx.take(ctx.cutter.end())
        return self._progress(now)

    def cancel(self, context_id: str, now: float) -> list[Action]:
        """Barge-in: stop the context's synthesis, report what was and was not spoken, refund the rest."""
        ctx = self.contexts.get(context_id)
        if ctx is None:
            self._refuse_closed(context_id)
            raise UnknownContext(f"context_id: no open context {context_id!r}", context_id=context_id)
        return self._cancelled(ctx, now) + self._progress(now)

    # -- engine inputs ------------------------------------------------------------------------
    def reading(self) -> int | None:
        """The job whose chunks go out now: the head context's phrase in flight."""
        ctx = self.head()
        if ctx is None or ctx.in_flight is None:
            return None
        return ctx.jobs.get(ctx.in_flight.index)

    def chunk(self, job_id: int, samples: object, now: float) -> list[Action]:
        """An engine chunk of `job_id`; ignored unless that job is the one being read (stale events)."""
        if self.ended or job_id != self.reading():
            return []
        ctx = self._head()
        return self._send_audio(ctx, ctx.audio.push(samples), now)

    def job_produced(self, job_id: int, now: float) -> list[Action]:
        """The engine finished producing `job_id`'s chunks: the context's next phrase may start."""
        context_id = self._jobs.get(job_id)
        if self.ended or context_id is None:
            return []
        self._produced.add(job_id)
        if (started := self._started.pop(job_id, None)) is not None:
            self.synthesis.observe(started[1], now - started[0])
        return self._prefetch(self.contexts[context_id], now)

    def job_ended(self, job_id: int, now: float) -> list[Action]:
        """Every chunk of the job being read went out: close the phrase and move on."""
        if self.ended or job_id != self.reading():
            return []
        ctx = self._head()
        phrase = ctx.in_flight
        assert phrase is not None
        self._forget_job(ctx, phrase.index)
        actions = self._send_audio(ctx, ctx.audio.end_phrase(phrase.text, last=ctx.nothing_left_to_say()), now)
        ctx.spoken.append(phrase.text)
        self.spoken_characters += len(phrase.text)
        ctx.in_flight = None
        return actions + self._progress(now)

    def job_failed(self, job_id: int, error: ProtocolError, now: float) -> list[Action]:
        """The engine failed the job being read: that context ends with `error`; the others go on."""
        if self.ended or job_id != self.reading():
            return []
        ctx = self._head()
        error.context_id = ctx.id
        actions: list[Action] = [*self._stop_jobs(ctx), SendMessage(error.to_wire())]
        self._forget(ctx, ContextState.DONE, now)
        return actions + self._progress(now)

    # -- clock --------------------------------------------------------------------------------
    def tick(self, now: float) -> list[Action]:
        """Time-based decisions: stalled text streams release their phrases; an idle session closes."""
        if self.ended:
            return []
        if not self.contexts and now - self._last_activity >= self.limits.idle_timeout_s:
            self.ended = True
            return [*self._stop_all(), Close(IdleTimeout(f"session: no message for {self.limits.idle_timeout_s:g} s"))]
        for ctx in self.contexts.values():
            if ctx.state is ContextState.OPEN and ctx.cutter.pending:
                self._hint(ctx, now)
                ctx.take(ctx.cutter.tick(now))
        return self._progress(now)

    def next_deadline(self) -> float | None:
        """When `tick` next has something to decide; None when only an input can change anything."""
        if self.ended:
            return None
        deadlines = [] if self.contexts else [self._last_activity + self.limits.idle_timeout_s]
        for ctx in self.contexts.values():
            release = ctx.cutter.stall_deadline() if ctx.state is ContextState.OPEN else None
            if release is None:
                continue
            if ctx.phrases_made and ctx.first_audio_at is not None:  # held while the listener has audio queued
                starving_at = (ctx.first_audio_at + ctx.audio_ms() / 1000.0
                               - ctx.cutter.starving_below_s() + _HOLD_EPSILON_S)
                release = max(release, starving_at)
            deadlines.append(release)
        return min(deadlines, default=None)

    # -- endings ------------------------------------------------------------------------------
    def disconnect(self) -> list[Action]:
        """The client is gone: stop every job; nothing more is said."""
        actions = self._stop_all()
        self.ended = True
        return actions

    def shutdown(self, now: float) -> list[Action]:
        """Server stop: each open context gets its final `cancelled`, then `shutting_down` and close."""
        if self.ended:
            return []
        actions: list[Action] = []
        while (ctx := self.head()) is not None:
            actions += self._cancelled(ctx, now)
        self.ended = True
        return [*actions, Close(ServerShuttingDown("server: shutting down"))]

    # -- speaking -----------------------------------------------------------------------------
    def head(self) -> Context | None:
        """The context whose audio goes out now: the oldest one not yet finished."""
        return next(iter(self.contexts.values()), None)

    def _head(self) -> Context:
        ctx = self.head()
        assert ctx is not None
        return ctx

    def _progress(self, now: float) -> list[Action]:
        """Move the head context forward as far as it can go without an engine event."""
        actions: list[Action] = []
        while not self.ended and (ctx := self.head()) is not None:
            if ctx.in_flight is not None:
                actions += self._prefetch(ctx, now)
                break
            if ctx.phrases:
                phrase = ctx.phrases.popleft()
                ctx.in_flight = phrase
                if phrase.speak and phrase.index not in ctx.jobs:
                    actions.append(self._start(ctx, phrase, now))
                actions.append(SendMessage(PhraseMessage(context_id=ctx.id, index=phrase.index, text=phrase.text,
                                                         start_ms=round(ctx.audio_ms(), 2))))
                if phrase.speak:
                    break
                ctx.spoken.append(phrase.text)   # nothing to say (whitespace, markup): spoken at once
                self.spoken_characters += len(phrase.text)
                ctx.in_flight = None
                continue
            if not ctx.finished_input:
                break
            actions.append(Complete(DoneMessage(context_id=ctx.id, ttfa_ms=ctx.ttfa_ms(), audio_ms=finite(ctx.audio_ms()),
                                                characters=ctx.characters, phrases=ctx.phrases_made)))
            self._forget(ctx, ContextState.DONE, now)
        return actions

    def _prefetch(self, ctx: Context, now: float) -> list[Action]:
        """Start the next phrase once the current phrase's synthesis has finished producing."""
        current = ctx.in_flight
        if current is None or ctx.jobs.get(current.index) not in self._produced or not ctx.phrases:
            return []
        nxt = ctx.phrases[0]
        if not nxt.speak or nxt.index in ctx.jobs:
            return []
        return [self._start(ctx, nxt, now)]

    def _hint(self, ctx: Context, now: float) -> None:
        """What the cutter weighs before cutting: audio the listener has queued, the engine's pace."""
        ctx.cutter.set_audio_ahead(ctx.audio_ahead_s(now))
        if self.synthesis.seconds_per_char is not None:
            ctx.cutter.set_synthesis_rate(self.synthesis.seconds_per_char)

    def _start(self, ctx: Context, phrase: Phrase, now: float) -> StartJob:
        job_id = self._next_job
        self._next_job += 1
        first = ctx.first_audio_at is None and not ctx.spoken and not ctx.jobs
        ctx.jobs[phrase.index] = job_id
        self._jobs[job_id] = ctx.id
        self._started[job_id] = (now, len(phrase.speak))
        request = SynthesisRequest(text=phrase.speak, voice=ctx.engine_voice, generation=ctx.generation,
                                   first_in_context=first)
        runs_out = None if ctx.first_audio_at is None else ctx.first_audio_at + ctx.audio_ms() / 1000.0
        return StartJob(job_id, request, priority=0 if first else 1, deadline=runs_out)

    def _send_audio(self, ctx: Context, piece: AudioPiece, now: float) -> list[Action]:
        if piece.samples <= 0:
            return []
        if ctx.first_audio_at is None:
            ctx.first_audio_at = now
        start_ms = ctx.audio_ms()
        ctx.samples_sent += piece.samples
        ctx.seq += 1
        return [SendAudio(ctx.id, ctx.seq - 1, piece.payload, piece.samples, round(start_ms, 3),
                          round(piece.samples * 1000.0 / ctx.output_rate, 3))]

    # -- bookkeeping --------------------------------------------------------------------------
    def _open(self, context_id: str, voice_spec: VoiceSpec | None, generation: GenerationSettings | None,
              voice: Voice, output: tuple[str, int], now: float) -> Context:
        encoding, rate = output
        ctx = Context(
            id=context_id,
            voice=voice_spec if voice_spec is not None else self.default_voice,
            generation=generation or self.default_generation,
            cutter=PhraseCutter(self.policy.cutter),
            normalizer=self.policy.normalizer,
            opened_at=now,
            engine_voice=voice,
            audio=self._audio(encoding, rate),
            output_rate=rate,
        )
        self.contexts[context_id] = ctx
        return ctx

    def _cancelled(self, ctx: Context, now: float) -> list[Action]:
        ctx.state = ContextState.CANCELLED
        remaining = ctx.remaining_text()
        actions: list[Action] = self._stop_jobs(ctx)
        if remaining:   # text that was never spoken is not billed; refunded before the client hears so
            actions.append(Refund(len(remaining)))
        actions.append(SendMessage(CancelledMessage(context_id=ctx.id, audio_ms=finite(ctx.audio_ms()),
                                                    text_spoken="".join(ctx.spoken), text_remaining=remaining)))
        self._forget(ctx, ContextState.CANCELLED, now)
        return actions

    def _stop_jobs(self, ctx: Context) -> list[Action]:
        stops: list[Action] = [StopJob(job_id) for job_id in ctx.jobs.values()]
        for index in list(ctx.jobs):
            self._forget_job(ctx, index)
        return stops

    def _stop_all(self) -> list[Action]:
        return [stop for ctx in self.contexts.values() for stop in self._stop_jobs(ctx)]

    def _forget_job(self, ctx: Context, phrase_index: int) -> None:
        job_id = ctx.jobs.pop(phrase_index)
        self._jobs.pop(job_id, None)
        self._started.pop(job_id, None)
        self._produced.discard(job_id)

    def _forget(self, ctx: Context, state: ContextState, now: float) -> None:
        ctx.state = state
        self.contexts.pop(ctx.id, None)
        self._closed[ctx.id] = state
        while len(self._closed) > CLOSED_IDS_REMEMBERED:
            self._closed.popitem(last=False)
        self._last_activity = now   # the client hears that audio out: the idle clock starts from here

    def _open_context(self, context_id: str) -> Context:
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
                f"(has {have}, this message adds {len(text)})", context_id=context_id)


def _words(text: str) -> list[str]:
    """Words with their trailing whitespace (leading whitespace alone), as an LLM would stream them."""
    return _WORDS.findall(text)
