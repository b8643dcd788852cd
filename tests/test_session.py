"""The I/O-free session state machine: life cycle, error per illegal transition, exact text accounting."""

from __future__ import annotations

import pytest

from stream.core.errors import (
    ContextClosed,
    RateLimited,
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


def text(cid: str, t: str, **kw) -> TextMessage:
    return TextMessage(type="text", context_id=cid, text=t, **kw)


def open_ctx(s: Session, cid: str, t: str, now: float = 0.0, **kw):
    s.check_text(text(cid, t, **kw))
    return s.text(text(cid, t, **kw), now, VOICE, ("pcm_s16le", 22050))


def all_text(ctx) -> str:
    return "".join(p.text for p in ctx.phrases) + ctx.cutter.pending


def test_context_life_cycle_done():
    s = Session(Limits(), "piper", 0.0)
    ctx, _, opened = open_ctx(s, "a", "Hello there, my friend. ")
    assert opened and ctx.state is ContextState.OPEN
    _, _, opened = s.text(text("a", "How are you?"), 0.1)
    assert not opened
    s.end("a")
    assert ctx.state is ContextState.ENDED and ctx.cutter.pending == ""
    assert all_text(ctx) == "Hello there, my friend. How are you?"
    assert s.head() is ctx
    s.audio_sent(ctx, 22050, now=0.5)
    msg = s.close(ctx)
    assert msg == {"type": "done", "context_id": "a", "ttfa_ms": 500.0, "audio_ms": 1000.0,
                   "characters": 36, "phrases": ctx.phrases_made}
    assert s.head() is None


def test_cancel_accounts_for_every_character():
    s = Session(Limits(), "piper", 0.0)
    ctx, _, _ = open_ctx(s, "a", "First sentence is here. Second one follows. And a third")
    first = ctx.phrases.popleft()
    ctx.spoken.append(first.text)
    ctx.in_flight = ctx.phrases.popleft() if ctx.phrases else None
    s.cancel("a")
    msg = s.close(ctx)
    assert msg["type"] == "cancelled"
    assert msg["text_spoken"] == first.text
    assert msg["text_spoken"] + msg["text_remaining"] == "First sentence is here. Second one follows. And a third"


def test_illegal_transitions_map_to_one_error_each():
    s = Session(Limits(max_contexts_per_session=1, max_text_chars_per_context=10), "piper", 0.0)
    with pytest.raises(UnknownContext):
        s.flush("x")
    with pytest.raises(UnknownContext):
        s.end("x")
    with pytest.raises(UnknownContext):
        s.cancel("x")
    ctx, _, _ = open_ctx(s, "a", "Hi")
    with pytest.raises(TooManyContexts):
        s.check_text(text("b", "Hi"))
    with pytest.raises(SettingsLocked):
        s.check_text(text("a", "x", generation=GenerationSettings(exaggeration=1)))
    with pytest.raises(TextTooLong):
        s.check_text(text("a", "123456789"))
    s.end("a")
    with pytest.raises(ContextClosed):
        s.check_text(text("a", "more"))
    with pytest.raises(ContextClosed):
        s.end("a")
    s.close(ctx)
    for call in (lambda: s.check_text(text("a", "x")), lambda: s.flush("a"), lambda: s.cancel("a")):
        with pytest.raises(ContextClosed):
            call()


def test_refused_text_is_not_accepted():
    s = Session(Limits(max_text_chars_per_context=10), "piper", 0.0)
    ctx, _, _ = open_ctx(s, "a", "12345")
    with pytest.raises(TextTooLong):
        s.text(text("a", "123456"), 0.1)
    assert ctx.characters == 5 and all_text(ctx) == "12345"


def test_contexts_queue_in_open_order():
    s = Session(Limits(), "piper", 0.0)
    a, _, _ = open_ctx(s, "a", "one")
    b, _, _ = open_ctx(s, "b", "two")
    assert s.head() is a
    s.cancel("a")
    s.close(a)
    assert s.head() is b


def test_rate_limit_token_bucket():
    s = Session(Limits(messages_per_second=10), "piper", 0.0)
    for _ in range(20):
        s.admit(0.0)
    with pytest.raises(RateLimited):
        s.admit(0.0)
    s.admit(0.2)  # refills at 10/s


def test_audio_ahead_tracks_a_real_time_listener():
    s = Session(Limits(), "piper", 0.0)
    ctx, _, _ = open_ctx(s, "a", "Hello there.")
    assert ctx.audio_ahead_s(1.0) == 0.0
    s.audio_sent(ctx, 22050 * 3, now=1.0)
    assert ctx.audio_ahead_s(2.0) == pytest.approx(2.0)
    assert ctx.audio_ahead_s(10.0) == 0.0


def test_generation_and_voice_defaults_come_from_init():
    s = Session(Limits(), "piper", 0.0)
    s.default_generation = GenerationSettings(exaggeration=1.5)
    ctx, _, _ = open_ctx(s, "a", "Hi")
    assert ctx.generation.exaggeration == 1.5
    ctx2, _, _ = open_ctx(s, "b", "Hi", generation=GenerationSettings(exaggeration=0.1))
    assert ctx2.generation.exaggeration == 0.1
