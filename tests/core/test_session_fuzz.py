"""Property-based fuzz of the session: random interleavings of client messages, clock ticks and
engine events (chunks, production finished, ends, failures, stale events of stopped jobs).

Every illegal message gets the one error a model of the protocol predicts; every finished context
accounts for its text and credits exactly; audio goes out in order, only for the context being
spoken; and every job the session started is stopped or read to its end."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from stream.core.actions import Refund, SendAudio, SendMessage
from stream.core.errors import (
    ContextClosed,
    InternalError,
    ProtocolError,
    SettingsLocked,
    TextTooLong,
    TooManyContexts,
    UnknownContext,
)
from stream.core.limits import Limits
from stream.core.protocol import GenerationSettings
from tests.core.session_script import Script

IDS = st.sampled_from(["a", "b", "c", "d", "e"])
DELTAS = st.sampled_from(["Hello", " there", ",", " friend.", " How", " are you", "?", " 9:30", " Dr.", " Smith",
                          "\n", "  ", "😀", " — ", "...", "x" * 40, "", " end."]) | st.text(max_size=30)
LIMITS = Limits(max_contexts_per_session=3, max_text_chars_per_context=300, messages_per_second=1e9)


class SessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.s = Script(LIMITS)
        self.sent: dict[str, str] = {}        # context id -> all text it accepted
        self.state: dict[str, str] = {}       # model: open / ended, then cancelled / done / failed
        self.seen = 0                         # actions already checked

    def expect(self, error: type[ProtocolError] | None, action) -> None:
        try:
            action()
        except ProtocolError as err:
            assert type(err) is error, f"expected {error}, got {err!r}"
            return
        assert error is None, f"expected {error.__name__}"

    def live(self) -> list[str]:
        return [cid for cid, state in self.state.items() if state in ("open", "ended")]

    # -- client -----------------------------------------------------------------------------
    @rule(cid=IDS, body=DELTAS, settings_=st.booleans())
    def text(self, cid: str, body: str, settings_: bool) -> None:
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
        generation = GenerationSettings(exaggeration=1.0) if settings_ else None
        self.expect(error, lambda: self.s.text(cid, body, generation=generation))
        if error is None:
            self.sent[cid] = self.sent.get(cid, "") + body
            self.state.setdefault(cid, "open")

    @rule(cid=IDS, kind=st.sampled_from(["flush", "end"]))
    def flush_or_end(self, cid: str, kind: str) -> None:
        state = self.state.get(cid)
        error = UnknownContext if state is None else None if state == "open" else ContextClosed
        self.expect(error, lambda: getattr(self.s, kind)(cid))
        if error is None and kind == "end":
            self.state[cid] = "ended"

    @rule(cid=IDS)
    def cancel(self, cid: str) -> None:
        state = self.state.get(cid)
        error = UnknownContext if state is None else None if state in ("open", "ended") else ContextClosed
        self.expect(error, lambda: self.s.cancel(cid))
        if error is None:
            self.state[cid] = "cancelled"

    @rule(seconds=st.floats(0, 2))
    def tick(self, seconds: float) -> None:
        self.s.at(self.s.now + seconds)

    # -- engine -----------------------------------------------------------------------------
    @precondition(lambda self: self.s.session.reading() is not None)
    @rule(samples=st.integers(0, 500))
    def chunk(self, samples: int) -> None:
        self.s.chunk(samples)

    @precondition(lambda self: bool(self.s.running))
    @rule(data=st.data())
    def produced(self, data) -> None:
        self.s.produced(data.draw(st.sampled_from(sorted(self.s.running))))

    @precondition(lambda self: self.s.session.reading() is not None)
    @rule()
    def ended(self) -> None:
        self.s.ended()

    @precondition(lambda self: self.s.session.reading() is not None)
    @rule()
    def fail(self) -> None:
        cid = self.s.session.head().id
        self.s.run(self.s.session.job_failed(self.s.reading(), InternalError("synthesis failed"), self.s.now))
        self.state[cid] = "failed"

    @precondition(lambda self: bool(self.s.stopped))
    @rule(data=st.data())
    def stale_event(self, data) -> None:
        job = data.draw(st.sampled_from(self.s.stopped))
        assert self.s.chunk(100, job=job) == [] and self.s.produced(job) == [] and self.s.ended(job) == []

    # -- checks -----------------------------------------------------------------------------
    @invariant()
    def finals_account_for_their_text(self) -> None:
        for action in self.s.actions[self.seen:]:
            message = getattr(action, "message", None)
            if message is None:
                continue
            if message.type == "done":
                assert self.state[message.context_id] == "ended"
                assert message.characters == len(self.sent[message.context_id])
                self.state[message.context_id] = "done"
            elif message.type == "cancelled":
                sent = self.sent[message.context_id]
                assert message.text_spoken + message.text_remaining == sent
        self.seen = len(self.s.actions)

    @invariant()
    def accounted(self) -> None:
        """Open contexts: spoken + in flight + queued + still buffered = everything accepted."""
        for cid, ctx in self.s.session.contexts.items():
            assert "".join(ctx.spoken) + ctx.remaining_text() == self.sent[cid]
        assert len(self.s.session.contexts) <= LIMITS.max_contexts_per_session

    @invariant()
    def refunds_match_unspoken_text(self) -> None:
        unspoken = sum(len(a.message.text_remaining) for a in self.s.actions
                       if isinstance(a, SendMessage) and a.message.type == "cancelled")
        assert sum(a.characters for a in self.s.actions if isinstance(a, Refund)) == unspoken

    @invariant()
    def audio_in_order_and_only_for_the_head(self) -> None:
        by_context: dict[str, list[SendAudio]] = {}
        for action in self.s.actions:
            if isinstance(action, SendAudio):
                by_context.setdefault(action.context_id, []).append(action)
        for pieces in by_context.values():
            assert [p.seq for p in pieces] == list(range(len(pieces)))
            assert all(b.start_ms >= a.start_ms for a, b in zip(pieces, pieces[1:], strict=False))

    @invariant()
    def jobs_belong_to_live_contexts(self) -> None:
        """At most the phrase in flight and one prefetched phrase per context run; none outlive it."""
        live = self.s.session.contexts
        owners = [job.request for job in self.s.running.values()]
        assert len(owners) <= 2 * len(live)
        if not live:
            assert not self.s.running

    @invariant()
    def order(self) -> None:
        opened = [cid for cid in self.sent if cid in self.s.session.contexts]
        assert list(self.s.session.contexts) == opened


SessionMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None,
                                            suppress_health_check=[HealthCheck.too_slow])
test_session_state_machine = SessionMachine.TestCase
