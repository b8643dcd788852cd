"""Property-based fuzz of the session state machine: random interleavings of text, flush, end, cancel,
clock ticks and the speaker's progress. Every illegal message gets the one error a model of the
protocol predicts, and every finished context accounts for its text exactly."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from stream.core.errors import (
    ContextClosed,
    ProtocolError,
    SettingsLocked,
    TextTooLong,
    TooManyContexts,
    UnknownContext,
)
from stream.core.protocol import GenerationSettings, TextMessage
from stream.core.session import ContextState, Session
from stream.engines.base import Voice
from stream.settings import Limits

VOICE = Voice(id="joe", name="joe")
IDS = st.sampled_from(["a", "b", "c", "d", "e"])
DELTAS = st.sampled_from(["Hello", " there", ",", " friend.", " How", " are you", "?", " 9:30", " Dr.", " Smith",
                          "\n", "  ", "😀", " — ", "...", "x" * 40, "", " end."]) | st.text(max_size=30)
LIMITS = Limits(max_contexts_per_session=3, max_text_chars_per_context=300, messages_per_second=1e9)


class SessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.session = Session(LIMITS, "piper", self.now)
        self.sent: dict[str, str] = {}        # context id -> all text it accepted
        self.state: dict[str, str] = {}       # model: open / ended / cancelling, then cancelled / done
        self.finals: list[dict] = []

    def expect(self, error: type[ProtocolError] | None, action) -> None:
        try:
            action()
        except ProtocolError as err:
            assert type(err) is error, f"expected {error}, got {err!r}"
            return
        assert error is None, f"expected {error.__name__}"

    def live(self) -> list[str]:
        return [cid for cid, state in self.state.items() if state in ("open", "ended", "cancelling")]

    @rule(cid=IDS, body=DELTAS, settings_=st.booleans())
    def text(self, cid: str, body: str, settings_: bool) -> None:
        msg = TextMessage(type="text", context_id=cid, text=body,
                          generation=GenerationSettings(exaggeration=1.0) if settings_ else None)
        state = self.state.get(cid)
        if state is None:
            error = TooManyContexts if len(self.live()) >= LIMITS.max_contexts_per_session else \
                TextTooLong if len(body) > LIMITS.max_text_chars_per_context else None
        elif state != "open":
            error = ContextClosed
        elif settings_:
            error = SettingsLocked
        else:
            error = TextTooLong if len(self.sent[cid]) + len(body) > LIMITS.max_text_chars_per_context else None

        def act() -> None:
            self.session.check_text(msg)
            self.session.text(msg, self.now, VOICE, ("pcm_s16le", 22050))

        self.expect(error, act)
        if error is None:
            self.sent[cid] = self.sent.get(cid, "") + body
            self.state.setdefault(cid, "open")

    @rule(cid=IDS, kind=st.sampled_from(["flush", "end"]))
    def flush_or_end(self, cid: str, kind: str) -> None:
        state = self.state.get(cid)
        error = UnknownContext if state is None else None if state == "open" else ContextClosed
        self.expect(error, lambda: getattr(self.session, kind)(cid))
        if error is None and kind == "end":
            self.state[cid] = "ended"

    @rule(cid=IDS)
    def cancel(self, cid: str) -> None:
        state = self.state.get(cid)
        error = UnknownContext if state is None else ContextClosed if state in ("done", "cancelled") else None
        self.expect(error, lambda: self.session.cancel(cid))
        if error is None:
            self.state[cid] = "cancelling"

    @rule(seconds=st.floats(0, 2))
    def tick(self, seconds: float) -> None:
        self.now += seconds
        self.session.tick(self.now)

    @precondition(lambda self: self.session.head() is not None)
    @rule(phrases=st.integers(1, 3), mid_phrase=st.booleans())
    def speak(self, phrases: int, mid_phrase: bool) -> None:
        """What the speaker does: speak the head context's phrases; finish it when it is over."""
        ctx = self.session.head()
        for _ in range(phrases):
            if ctx.state is ContextState.CANCELLED or not ctx.phrases:
                break
            ctx.in_flight = ctx.phrases.popleft()
            if mid_phrase and ctx.in_flight.speak:
                self.session.audio_sent(ctx, 100, self.now)
            ctx.spoken.append(ctx.in_flight.text)
            ctx.in_flight = None
        if mid_phrase and ctx.phrases and ctx.state is not ContextState.CANCELLED:
            ctx.in_flight = ctx.phrases.popleft()  # a cancel now lands mid-phrase
            return
        if ctx.state is ContextState.CANCELLED or (ctx.finished_input and not ctx.phrases):
            final = self.session.close(ctx)
            self.finals.append(final)
            self.state[ctx.id] = "cancelled" if final["type"] == "cancelled" else "done"
            self.check_final(final)

    def check_final(self, final: dict) -> None:
        sent = self.sent[final["context_id"]]
        if final["type"] == "done":
            assert final["characters"] == len(sent)
        else:
            assert final["text_spoken"] + final["text_remaining"] == sent
            assert sent.startswith(final["text_spoken"])

    @invariant()
    def accounted(self) -> None:
        """Open contexts: spoken + in flight + queued phrases + still buffered = everything accepted."""
        for cid, ctx in self.session.contexts.items():
            said = "".join(ctx.spoken) + ctx.remaining_text()
            assert said == self.sent[cid]
        assert len(self.session.contexts) <= LIMITS.max_contexts_per_session

    @invariant()
    def order(self) -> None:
        """Contexts are spoken in the order they were opened."""
        opened = [cid for cid in self.sent if cid in self.session.contexts]
        assert list(self.session.contexts) == opened


SessionMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None,
                                            suppress_health_check=[HealthCheck.too_slow])
test_session_state_machine = SessionMachine.TestCase
