"""The LiveKit Agents plugin through livekit-agents' own TTS stream API, against a real server."""

from __future__ import annotations

import asyncio

import pytest
from livekit.agents import APIStatusError
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT

from agent_adapters.livekit_tts import TTS
from clients import llm_deltas
from tests import deprecations
from tests.agent_adapters.test_adapters_pipecat import LONG, REPLY, cancelled_contexts


@pytest.fixture(autouse=True)
def deprecations_fail():
    """LiveKit's deprecations raise where they are called (tests/deprecations.py)."""
    with deprecations.raised():
        yield


async def test_stream_pushes_aligned_audio_and_timed_words(server):
    async with TTS(url=server.ws_url, sample_rate=24000, generation={"exaggeration": 0.7}) as vw:
        stream = vw.stream()
        for delta in llm_deltas(REPLY):
            stream.push_text(delta)
        stream.end_input()
        events = [ev async for ev in stream]
        await stream.aclose()
        assert vw.provider == "voicewire" and vw.model == "en_US-joe-medium"
    frames = [ev.frame for ev in events]
    assert all(f.sample_rate == 24000 and f.num_channels == 1 for f in frames)
    assert 3.0 < sum(f.duration for f in frames) < 10.0
    assert events[-1].is_final and not any(ev.is_final for ev in events[:-1])
    assert len({ev.segment_id for ev in events}) == 1
    words = [w for f in frames for w in f.userdata.get(USERDATA_TIMED_TRANSCRIPT, [])]
    assert "".join(words).split() == REPLY.split()
    starts = [w.start_time for w in words]
    assert starts == sorted(starts) and starts[0] == 0.0
    assert words[-1].end_time <= sum(f.duration for f in frames) + 0.05


async def test_flush_then_end_input_and_chunked_synthesize(server):
    async with TTS(url=server.ws_url, sample_rate=16000) as vw:
        stream = vw.stream()
        stream.push_text("Hold on, let me check that for you")
        stream.flush()  # -> voicewire `flush`: spoken now, though the sentence has no end yet
        first = await asyncio.wait_for(stream.__anext__(), 10)
        stream.end_input()
        rest = [ev async for ev in stream]
        await stream.aclose()
        whole = await vw.synthesize("A one shot sentence.").collect()
    assert first.frame.sample_rate == 16000 and rest[-1].is_final
    assert 1.0 < first.frame.duration + sum(ev.frame.duration for ev in rest) < 6.0
    assert whole.sample_rate == 16000 and 0.8 < whole.duration < 4.0


async def test_aclose_mid_turn_cancels_and_the_socket_serves_the_next_turn(server):
    before = cancelled_contexts(server)
    async with TTS(url=server.ws_url) as vw:
        stream = vw.stream()
        stream.push_text(LONG)
        stream.end_input()
        await asyncio.wait_for(stream.__anext__(), 10)
        await stream.aclose()  # what LiveKit does on interruption
        deadline = asyncio.get_running_loop().time() + 5
        while cancelled_contexts(server) < before + 1 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        client = await vw.connection()
        frame = await vw.synthesize("Next turn.").collect()
        assert await vw.connection() is client  # same socket, no reconnect
    assert cancelled_contexts(server) == before + 1
    assert frame.duration > 0.3


async def test_turn_settings_reach_the_server(server):
    async with TTS(url=server.ws_url) as vw:
        vw.update_options(generation={"exaggeration": 5.0})  # out of range: the server must see it
        stream = vw.stream()
        stream.push_text("Too much.")
        stream.end_input()
        try:
            [ev async for ev in stream]
            raised = None
        except APIStatusError as exc:
            raised = exc
        await stream.aclose()
        vw.update_options(generation={"exaggeration": 1.2})
        ok = await vw.synthesize("Just right.").collect()
    assert raised is not None and "out_of_range" in str(raised) and "exaggeration" in str(raised)
    assert ok.duration > 0.3
