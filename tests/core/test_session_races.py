"""Each race the last wave fixed in the asyncio shell, replayed as a deterministic core test: a
fake clock and scripted engine events, no socket and no sleep. The end-to-end tests stay too."""

from __future__ import annotations

from stream.core.actions import Close, SendAudio, SendMessage, StartJob, StopJob
from stream.core.limits import Limits
from tests.core.session_script import RATE, Script, of


def test_cancel_while_the_phrase_event_is_being_sent_starts_no_synthesis():
    s = Script()
    opened = s.text("a", "One two three four five six")
    job = of(opened, StartJob)[0].job_id
    # The driver is still writing that phrase event when the cancel arrives.
    cancel = s.cancel("a")
    assert of(cancel, StopJob) == [StopJob(job)] and not of(cancel, StartJob)
    assert not s.running
    # The engine's late events for the stopped job change nothing and start nothing.
    assert s.chunk(100, job=job) == [] and s.produced(job) == [] and s.ended(job) == []
    assert not of(s.actions[len(opened) + len(cancel):], StartJob)
    assert s.messages("cancelled")[0].text_spoken == ""


def test_disconnect_during_prefetch_stops_every_job():
    s = Script()
    current, prefetch = s.prefetching()
    stops = s.run(s.session.disconnect())
    assert {a.job_id for a in stops} == {current, prefetch} and not s.running
    # Whatever the engine still reports is dropped: no audio, no new job, no message.
    assert s.chunk(100, job=current) == [] and s.produced(prefetch) == [] and s.at(5.0) == []


def test_a_cancelled_contexts_prefetched_job_is_stopped_and_never_read():
    s = Script()
    _, prefetch = s.prefetching()
    s.cancel("a")
    assert prefetch in s.stopped and not s.running
    # A new context gets fresh jobs; the old prefetched job's events cannot leak into it.
    first_b = of(s.text("b", "Hello there friend of mine, how"), StartJob)[0].job_id
    assert first_b != prefetch
    assert s.chunk(100, job=prefetch) == [] and s.ended(prefetch) == []
    assert s.reading() == first_b


def test_the_idle_clock_counts_from_the_end_of_a_slow_context():
    s = Script(Limits(idle_timeout_s=10))
    s.text("a", "One two three.")
    s.end("a")
    assert s.session.next_deadline() is None        # speaking: not idle, however long it takes
    s.now = 25.0                                    # a slow engine: 25 s with no client message
    s.chunk(100)
    assert s.at(25.0) == []
    s.produced()
    s.ended()
    assert s.messages("done")
    assert s.session.next_deadline() == 35.0        # the listener hears the end now: idle from here
    assert s.at(34.9) == []
    assert of(s.at(35.0), Close)[0].error.code == "idle_timeout"


def test_shutdown_with_audio_in_flight_sends_each_context_its_final_message_then_closes():
    s = Script()
    s.phrases("a", "One two three.")
    s.text("a", " Four five six seven.")
    s.text("b", "Another turn waiting")
    s.chunk(300)                                     # audio of the phrase in flight went out
    final = s.run(s.session.shutdown(s.now))
    assert not s.running
    cancelled = [a.message for a in final if isinstance(a, SendMessage)]
    assert [m.context_id for m in cancelled] == ["a", "b"]
    a = cancelled[0]
    assert a.audio_ms == 300 * 1000 / RATE and a.text_spoken == ""
    assert a.text_remaining == "One two three. Four five six seven."
    assert isinstance(final[-1], Close) and final[-1].error.code == "shutting_down"
    # Nothing more after the close: a late chunk sends no audio.
    assert s.chunk(100, job=of(s.actions, StartJob)[0].job_id) == []
    assert len(of(s.actions, SendAudio)) == 1
