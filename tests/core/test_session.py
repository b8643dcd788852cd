"""The I/O-free session: life cycle, one error per illegal transition, exact text and credit
accounting, and the speaking decisions (which phrase, which job, which message, when)."""

from __future__ import annotations

import pytest

from stream.core.actions import Close, Complete, Refund, SendAudio, SendMessage, StartJob, StopJob
from stream.core.errors import (
    ContextClosed,
    InternalError,
    RateLimited,
    SettingsLocked,
    TextTooLong,
    TooManyContexts,
    UnknownContext,
)
from stream.core.limits import Limits
from stream.core.protocol import GenerationSettings, TextMessage
from stream.core.session import ContextState
from tests.core.session_script import PAUSE, RATE, Script, of


def test_a_turn_from_first_text_to_done():
    s = Script()
    first = s.text("a", "Hello there, my friend. ")
    starts = of(first, StartJob)
    assert [a.request.text for a in starts] == ["Hello there,"]
    assert starts[0].priority == 0 and starts[0].request.first_in_context
    # The job starts before the phrase event is sent: synthesis never waits on the socket.
    assert isinstance(first[0], StartJob) and isinstance(first[1], SendMessage)
    assert first[1].message.text == "Hello there, "
    s.now = 0.25
    assert of(s.chunk(250), SendAudio)[0].start_ms == 0
    s.text("a", "How are you?")
    s.end("a")
    s.speak_all()
    done = s.messages("done")[0]
    assert done.ttfa_ms == 250.0 and done.characters == len("Hello there, my friend. How are you?")
    assert done.phrases == len(s.messages("phrase"))
    assert "".join(m.text for m in s.messages("phrase")) == "Hello there, my friend. How are you?"
    audio = s.audio("a")
    assert [a.seq for a in audio] == list(range(len(audio)))
    assert done.audio_ms == sum(a.samples for a in audio) * 1000 / RATE
    assert s.session.head() is None and not s.running


def test_next_phrase_is_synthesized_once_the_current_one_finished_producing():
    s = Script()
    s.phrases("a", "One two three.", " Seven eight nine ten.")
    current = s.reading()
    assert len(s.running) == 1
    s.chunk(100)
    prefetch = of(s.produced(), StartJob)
    assert [a.request.text for a in prefetch] == ["Seven eight nine ten."] and prefetch[0].priority == 1
    assert of(s.ended(current), StartJob) == []       # already started: not started twice
    assert s.reading() == prefetch[0].job_id


def test_a_phrase_cut_after_the_current_job_finished_producing_starts_at_once():
    s = Script()
    s.phrases("a", "One two three.")
    s.chunk(100)
    s.produced()
    s.text("a", " Seven eight nine ten.")
    started = of(s.flush("a"), StartJob)
    assert [a.request.text for a in started] == ["Seven eight nine ten."]


def test_cancel_accounts_for_every_character_and_refunds_the_unspoken():
    s = Script()
    whole = "First sentence is here. Second one follows. And a third"
    s.text("a", whole)
    s.speak_phrase()
    s.chunk(40)                      # mid-phrase
    actions = s.cancel("a")
    assert {a.job_id for a in of(actions, StopJob)} == set(s.stopped) and not s.running
    cancelled = s.messages("cancelled")[0]
    assert cancelled.text_spoken + cancelled.text_remaining == whole
    assert cancelled.text_spoken == "First sentence is here. "
    assert s.refunded() == len(cancelled.text_remaining)
    assert cancelled.audio_ms == sum(a.samples for a in s.audio("a")) * 1000 / RATE


def test_spoken_characters_count_each_phrase_once_its_audio_is_all_out():
    """What the driver settles (credit holds): spoken + refunded is every character charged."""
    s = Script()
    whole = "First sentence is here. Second one follows. And a third"
    s.text("a", whole)
    assert s.session.spoken_characters == 0
    s.speak_phrase()
    assert s.session.spoken_characters == len("First sentence is here. ")
    s.chunk(40)                      # mid-phrase: not spoken yet
    assert s.session.spoken_characters == len("First sentence is here. ")
    s.cancel("a")
    assert s.session.spoken_characters + s.refunded() == len(whole)


def test_illegal_transitions_map_to_one_error_each():
    s = Script(Limits(max_contexts_per_session=1, max_text_chars_per_context=10))
    for call in (lambda: s.flush("x"), lambda: s.end("x"), lambda: s.cancel("x")):
        with pytest.raises(UnknownContext):
            call()
    s.text("a", "Hi")
    with pytest.raises(TooManyContexts):
        s.text("b", "Hi")
    with pytest.raises(SettingsLocked):
        s.text("a", "x", generation=GenerationSettings(exaggeration=1))
    with pytest.raises(TextTooLong):
        s.text("a", "123456789")
    s.end("a")
    with pytest.raises(ContextClosed):
        s.text("a", "more")
    with pytest.raises(ContextClosed):
        s.end("a")
    s.speak_all()
    for call in (lambda: s.text("a", "x"), lambda: s.flush("a"), lambda: s.cancel("a")):
        with pytest.raises(ContextClosed):
            call()


def test_refused_text_is_not_accepted():
    s = Script(Limits(max_text_chars_per_context=10))
    s.text("a", "12345")
    with pytest.raises(TextTooLong):
        s.session.text(TextMessage(type="text", context_id="a", text="123456"), 0.1)
    ctx = s.session.contexts["a"]
    assert ctx.characters == 5 and ctx.remaining_text() == "12345"


def test_contexts_speak_in_open_order():
    s = Script()
    s.text("a", "One two three. ")
    started_b = of(s.text("b", "Four five six. "), StartJob)
    assert started_b == []                      # b waits for a
    s.end("a")
    s.end("b")
    s.speak_phrase()
    assert [a.request.text for a in of(s.actions, StartJob)] == ["One two three.", "Four five six."]
    assert [m.context_id for m in s.messages("done")] == ["a"]
    s.speak_all()
    assert [m.context_id for m in s.messages("done")] == ["a", "b"]


def test_cancelling_a_waiting_context_reports_it_at_once_and_leaves_the_head_speaking():
    s = Script()
    s.phrases("a", "One two three.")
    s.text("b", "Four five six. ")
    head_job = s.reading()
    s.cancel("b")
    assert s.messages("cancelled")[0].text_remaining == "Four five six. "
    assert s.reading() == head_job and head_job in s.running


def test_rate_limit_token_bucket():
    s = Script(Limits(messages_per_second=10))
    for _ in range(20):
        s.session.admit(0.0)
    with pytest.raises(RateLimited):
        s.session.admit(0.0)
    s.session.admit(0.2)  # refills at 10/s


def test_audio_ahead_tracks_a_real_time_listener():
    s = Script()
    s.phrases("a", "Hello there.")
    ctx = s.session.contexts["a"]
    assert ctx.audio_ahead_s(1.0) == 0.0
    s.now = 1.0
    s.chunk(3 * RATE)
    assert ctx.audio_ahead_s(2.0) == pytest.approx(2.0)
    assert ctx.audio_ahead_s(10.0) == 0.0


def test_generation_and_voice_defaults_come_from_init():
    s = Script()
    s.session.default_generation = GenerationSettings(exaggeration=1.5)
    s.text("a", "Hi")
    s.text("b", "Hi", generation=GenerationSettings(exaggeration=0.1))
    assert s.session.contexts["a"].generation.exaggeration == 1.5
    assert s.session.contexts["b"].generation.exaggeration == 0.1


def test_a_stalled_text_stream_is_released_at_the_deadline_the_session_names():
    s = Script()
    s.text("a", "so I was")                      # no boundary: held
    assert of(s.actions, StartJob) == []
    assert s.session.next_deadline() == pytest.approx(0.3)
    assert s.at(0.29) == []
    assert [a.request.text for a in of(s.at(0.3), StartJob)] == ["so I was"]


def test_a_stall_is_held_while_the_listener_has_audio_queued():
    s = Script()
    s.phrases("a", "One two three.")
    s.chunk(2 * RATE)                             # 2 s queued from t=0
    s.produced()
    s.ended()
    s.text("a", "and then")
    # Released at 0.3 s if starving; with audio queued, once less than 0.5 s is left (t = 1.55 s).
    due = s.session.next_deadline()
    assert due == pytest.approx(2.0 + PAUSE / RATE - 0.5, abs=0.01)
    assert s.at(due - 0.01) == []
    assert [a.request.text for a in of(s.at(due), StartJob)] == ["and then"]


def test_an_engine_failure_ends_its_context_and_the_next_one_goes_on():
    s = Script()
    s.phrases("a", "One two three.")
    s.text("b", "Four five six. ")
    s.end("b")
    failed = s.run(s.session.job_failed(s.reading(), InternalError("synthesis failed: boom"), s.now))
    error = of(failed, SendMessage)[0].message
    assert error.code == "internal" and error.context_id == "a"
    assert [a.request.text for a in of(failed, StartJob)] == ["Four five six."]
    with pytest.raises(ContextClosed):
        s.text("a", "more")


def test_events_of_jobs_no_longer_read_are_ignored():
    s = Script()
    current, prefetched = s.prefetching()
    assert s.chunk(10, job=prefetched) == []      # not its turn: nothing goes out of order
    assert s.ended(prefetched) == []
    assert s.reading() == current


def test_init_output_is_locked_per_context():
    s = Script()
    s.text("a", "Hello there.")
    assert s.session.contexts["a"].output_rate == RATE
    assert s.session.contexts["a"].state is ContextState.OPEN


def test_idle_session_closes_at_its_deadline():
    s = Script(Limits(idle_timeout_s=10))
    assert s.session.next_deadline() == 10
    assert s.at(9.9) == []
    closes = of(s.at(10), Close)
    assert closes and closes[0].error.code == "idle_timeout"
    assert s.at(20) == [] and s.session.next_deadline() is None


def test_done_carries_only_what_the_session_knows():
    s = Script()
    s.text("a", "Hi there.")
    s.end("a")
    s.speak_all()
    done = [a for a in s.actions if isinstance(a, Complete)][0].message
    assert done.usage is None                     # the driver adds usage for metered keys
    assert not of(s.actions, Refund)


def test_the_session_learns_the_engines_pace_and_releases_a_stall_earlier_for_a_slow_engine():
    s = Script()
    s.text("a", "One two three.")       # 14 characters to synthesize
    s.flush("a")
    s.now = 1.4
    s.chunk(3 * RATE)                    # 3 s of audio from t=1.4
    s.produced()                         # took 1.4 s for 14 characters: 0.1 s per character
    assert s.session.synthesis.seconds_per_char == pytest.approx(0.1)
    s.ended()
    s.text("a", "and then")              # 8 characters pending: needs about 0.8 s to synthesize
    queued_until = 1.4 + 3.0 + PAUSE / RATE
    assert s.session.next_deadline() == pytest.approx(queued_until - (0.5 + 0.8), abs=0.01)
