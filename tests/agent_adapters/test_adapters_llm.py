"""LLM token streams into a real voicewire server, through the real `openai` and `anthropic` SDKs
pointed at a loopback server that speaks their streaming wire formats."""

from __future__ import annotations

import asyncio

import pytest
from anthropic import AsyncAnthropic
from openai import AsyncOpenAI

from agent_adapters import speak_anthropic, speak_openai, speak_stream
from clients import AudioEvent, CancelledEvent, DoneEvent, PhraseEvent, VoicewireClient, llm_deltas, paced
from tests.conftest import free_port
from tests.fake_llm import FakeLLM

REPLY = ("Of course. The train leaves at half past nine from platform four, and the trip takes about "
         "two hours. Bring a jacket, because the mountains are cold in the evening.")


@pytest.fixture
def fake_llm():
    llm = FakeLLM(reply=REPLY, tokens_per_second=60).start(free_port())
    yield llm
    llm.stop()


def openai_client(llm: FakeLLM) -> AsyncOpenAI:
    return AsyncOpenAI(api_key="test-key", base_url=llm.openai_base_url, max_retries=0)


async def test_openai_stream_is_spoken_whole_with_turn_settings(server, fake_llm):
    async with await VoicewireClient.connect(server.ws_url) as client:
        speech = speak_openai(client, openai_client(fake_llm), model="local-model",
                              messages=[{"role": "user", "content": "When does the train leave?"}],
                              generation={"exaggeration": 0.9})
        events = [e async for e in speech.events()]
        reply = await speech.wait()
    assert fake_llm.requests[0].body["stream"] is True and fake_llm.requests[0].finished
    assert isinstance(events[-1], DoneEvent)
    assert reply.text == REPLY and reply.text_spoken == REPLY and not reply.cancelled
    assert "".join(p.text for p in reply.phrases) == REPLY
    audio = [e for e in events if isinstance(e, AudioEvent)]
    assert sum(e.duration_ms for e in audio) == pytest.approx(reply.audio_ms, abs=0.5)
    assert reply.audio_ms > 4000
    # audio starts while the LLM is still writing (about 2 s of tokens at 60/s)
    assert reply.ttfa_ms is not None and reply.ttfa_ms < 1500


async def test_anthropic_stream_is_spoken_whole(server, fake_llm):
    llm = AsyncAnthropic(api_key="test-key", base_url=fake_llm.anthropic_base_url, max_retries=0)
    async with await VoicewireClient.connect(server.ws_url) as client:
        speech = speak_anthropic(client, llm, model="claude-test", max_tokens=256,
                                 messages=[{"role": "user", "content": "When does the train leave?"}],
                                 generation={"exaggeration": 0.3})
        reply = await speech.wait()
    assert fake_llm.requests[0].path == "/v1/messages" and fake_llm.requests[0].finished
    assert reply.text == REPLY and "".join(p.text for p in reply.phrases) == REPLY
    assert reply.audio_ms > 4000 and not reply.cancelled


async def test_barge_in_stops_llm_and_speech_and_reports_heard_text(server, fake_llm):
    fake_llm.tokens_per_second = 15  # slow enough that the LLM is still writing at barge-in
    async with await VoicewireClient.connect(server.ws_url) as client:
        speech = speak_openai(client, openai_client(fake_llm), model="local-model",
                              messages=[{"role": "user", "content": "Tell me about the train."}])
        events = []
        async for event in speech.events():
            events.append(event)
            if isinstance(event, AudioEvent):
                await speech.cancel()
        reply = await speech.wait()
        # the session is still usable for the next turn
        after = await client.speak(["Next turn."])
    assert isinstance(events[-1], CancelledEvent) and reply.cancelled
    assert reply.text_spoken + reply.text_remaining == reply.text
    assert len(reply.text) < len(REPLY)
    await asyncio.sleep(0.3)
    assert not fake_llm.requests[0].finished  # closing the stream stopped the LLM mid-reply
    first = next(e for e in events if isinstance(e, PhraseEvent))
    assert reply.heard_at(1.0) == first.text and reply.heard_at(0.0) == ""
    assert isinstance(after.final, DoneEvent)


async def test_llm_failure_cancels_the_context_and_raises(server):
    async def failing():
        yield "This starts fine, "
        await asyncio.sleep(0.05)
        raise ConnectionError("LLM went away")

    async with await VoicewireClient.connect(server.ws_url) as client:
        speech = speak_stream(client, failing())
        seen = []
        with pytest.raises(ConnectionError, match="LLM went away"):
            async for event in speech.events():
                seen.append(event)
    assert isinstance(seen[-1], CancelledEvent)
    assert seen[-1].text_spoken + seen[-1].text_remaining == "This starts fine, "


async def test_plain_iterables_and_paced_deltas(server):
    async with await VoicewireClient.connect(server.ws_url) as client:
        reply = await speak_stream(client, paced(llm_deltas("One. Two."), 100),
                                   generation={"temperature": 0}).wait()
        empty = await speak_stream(client, []).wait()
    assert reply.text == "One. Two." and reply.audio_ms > 300
    assert empty.text == "" and empty.audio_ms == 0 and empty.ttfa_ms is None
