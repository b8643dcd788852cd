"""End to end over a real socket with the real piper voice: turns, invariants, formats, cancel."""

from __future__ import annotations

import asyncio
import time

import httpx
import numpy as np
import pytest

from clients import VoicewireClient, llm_deltas, paced
from stream.audio.codecs import BYTES_PER_SAMPLE, decode_samples
from tests.wire import RawPeer

REPLY = ("Sure, I can help with that. The museum opens at 9:30 on weekdays, and tickets cost $12.50 for "
         "adults. Dr. Smith's exhibit on the U.S. space program is on the second floor, next to the café. "
         "If you arrive before ten, you will usually beat the crowds!")


def check_invariants(messages: list[dict], context_id: str, sent: str) -> None:
    mine = [m for m in messages if m.get("context_id") == context_id]
    phrases = [m for m in mine if m["type"] == "phrase"]
    audio = [m for m in mine if m["type"] == "audio"]
    assert "".join(p["text"] for p in phrases) == sent
    assert [a["seq"] for a in audio] == list(range(len(audio)))
    clock = 0.0
    for a in audio:
        assert a["start_ms"] == pytest.approx(clock, abs=0.01)
        clock += a["duration_ms"]
    for p in phrases:  # a phrase is announced at the audio position it starts at
        assert 0 <= p["start_ms"] <= clock + 0.01


async def test_ready_describes_engine_format_capabilities_limits(server):
    peer, ready = await RawPeer.open(server.ws_url)
    assert ready["type"] == "ready" and ready["protocol"] == 1
    assert ready["engine"] == "piper" and ready["model"] == "en_US-joe-medium"
    assert ready["output_format"] == {"encoding": "pcm_s16le", "sample_rate": 22050, "channels": 1}
    assert ready["capabilities"]["voice_cloning"] is False
    assert "exaggeration" in ready["capabilities"]["generation_fields"]
    assert ready["limits"]["max_contexts_per_session"] == 8
    assert len(ready["session_id"]) >= 8
    await peer.close()


async def test_streamed_turn_keeps_every_invariant(server):
    async with await VoicewireClient.connect(server.ws_url) as client:
        result = await client.speak(paced(llm_deltas(REPLY), 200))
    done = result.final
    assert done.characters == len(REPLY)
    assert "".join(p.text for p in result.phrases) == REPLY
    assert len(result.phrases) >= 3 and done.phrases == len(result.phrases)
    samples = result.samples()
    assert samples.size / 22050 == pytest.approx(done.audio_ms / 1000, abs=0.01)
    assert 6 < done.audio_ms / 1000 < 30            # real speech of a ~40-word reply
    assert np.sqrt(np.mean(samples**2)) > 0.01       # not silence
    assert done.ttfa_ms is not None and 0 < done.ttfa_ms < result.ttfa_ms + 5


async def test_raw_messages_invariants_and_order(server):
    peer, _ = await RawPeer.open(server.ws_url)
    for delta in llm_deltas(REPLY):
        await peer.send({"type": "text", "context_id": "a", "text": delta})
    await peer.send({"type": "end", "context_id": "a"})
    done, seen = await peer.until("done", "a")
    check_invariants(seen, "a", REPLY)
    assert seen[0]["type"] == "phrase" and seen[0]["start_ms"] == 0
    await peer.close()


async def test_first_phrase_is_cut_early_at_llm_rate(server):
    """At 30 tokens/s the first phrase goes to synthesis after a few words, while the reply still streams."""
    deltas = llm_deltas(REPLY)
    async with await VoicewireClient.connect(server.ws_url) as client:
        ctx = client.context()

        async def stream_reply() -> None:
            async for delta in paced(deltas, 30):
                await ctx.send_text(delta)
            await ctx.end()

        sender = asyncio.create_task(stream_reply())
        first_phrase = None
        async for event in ctx.events():
            if first_phrase is None and hasattr(event, "index"):
                first_phrase = event
                assert not sender.done()  # announced before the text stream ended
        await sender
    assert len(first_phrase.text.split()) <= 10
    assert first_phrase.received_at - ctx.sent_first_text_at < len(deltas) / 30 / 2


async def test_contexts_are_spoken_in_open_order(server):
    peer, _ = await RawPeer.open(server.ws_url)
    texts = {"one": "This is the first turn, spoken first.", "two": "And this one comes second."}
    await peer.send({"type": "text", "context_id": "one", "text": texts["one"]})
    await peer.send({"type": "text", "context_id": "two", "text": texts["two"]})
    await peer.send({"type": "end", "context_id": "two"})
    await asyncio.sleep(0.3)
    await peer.send({"type": "end", "context_id": "one"})
    _, seen = await peer.until("done", "two")
    order = [m["context_id"] for m in seen if m["type"] in ("audio", "done")]
    first_two = order.index("two")
    assert "one" in order[:first_two] and "one" not in order[first_two:]
    assert any(m["type"] == "done" and m["context_id"] == "one" for m in seen)
    check_invariants(seen, "one", texts["one"])
    await peer.close()


async def test_flush_speaks_buffered_text_before_end(server):
    peer, _ = await RawPeer.open(server.ws_url)
    await peer.send({"type": "text", "context_id": "f", "text": "Hold on while I check the weather for you"})
    await peer.send({"type": "flush", "context_id": "f"})
    audio, _ = await peer.until("audio", "f", timeout=10)
    assert audio["seq"] == 0
    await peer.send({"type": "text", "context_id": "f", "text": " in Paris."})
    await peer.send({"type": "end", "context_id": "f"})
    done, seen = await peer.until("done", "f")
    assert done["characters"] == len("Hold on while I check the weather for you in Paris.")
    await peer.close()


async def test_stall_timeout_releases_text_without_flush(server):
    peer, _ = await RawPeer.open(server.ws_url)
    await peer.send({"type": "text", "context_id": "s", "text": "Let me think about that for a second"})
    audio, _ = await peer.until("audio", "s", timeout=10)  # no flush, no end: the stall released it
    assert audio["seq"] == 0
    await peer.send({"type": "end", "context_id": "s"})
    await peer.until("done", "s")
    await peer.close()


@pytest.mark.parametrize("encoding", ["pcm_s16le", "pcm_f32le", "mulaw", "alaw"])
@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 44100, 48000])
async def test_every_output_format_decodes_to_the_reported_duration(server, encoding, rate):
    async with await VoicewireClient.connect(server.ws_url) as client:
        ready = await client.init(output_format={"encoding": encoding, "sample_rate": rate})
        assert ready["output_format"] == {"encoding": encoding, "sample_rate": rate, "channels": 1}
        result = await client.speak(["Testing one, two, three."])
    audio_events = [e for e in result.events if hasattr(e, "seq")]
    for event in audio_events:
        assert len(event.data) % BYTES_PER_SAMPLE[encoding] == 0
        assert len(event.data) / BYTES_PER_SAMPLE[encoding] / rate * 1000 == pytest.approx(event.duration_ms, abs=0.01)
    samples = decode_samples(bytes(result.audio), encoding)
    assert samples.size / rate * 1000 == pytest.approx(result.final.audio_ms, abs=0.05)
    assert 0.8 < result.final.audio_ms / 1000 < 4


async def test_resampled_output_has_the_same_duration_as_native(server):
    durations = []
    for rate in (22050, 48000):
        async with await VoicewireClient.connect(server.ws_url) as client:
            await client.init(output_format={"sample_rate": rate},
                              generation={"temperature": 0.0, "exaggeration": 0.0})
            durations.append((await client.speak(["One more time, with feeling."])).final.audio_ms)
    assert durations[0] == pytest.approx(durations[1], abs=2.0)


async def test_cancel_mid_turn_reports_spoken_and_remaining(server):
    long_text = " ".join(f"This is sentence number {i}, and it goes on for a while." for i in range(30))
    peer, _ = await RawPeer.open(server.ws_url)
    await peer.send({"type": "text", "context_id": "c", "text": long_text})
    first, _ = await peer.until("audio", "c")
    await peer.send({"type": "cancel", "context_id": "c"})
    cancelled, seen = await peer.until("cancelled", "c")
    assert cancelled["text_spoken"] + cancelled["text_remaining"] == long_text
    assert cancelled["text_remaining"]
    sent_ms = first["duration_ms"] + sum(m["duration_ms"] for m in seen if m["type"] == "audio")
    assert cancelled["audio_ms"] == pytest.approx(sent_ms, abs=0.1)
    # nothing more for that context; the session still works
    await peer.send({"type": "text", "context_id": "d", "text": "Still here."})
    await peer.send({"type": "end", "context_id": "d"})
    _, after = await peer.until("done", "d")
    assert all(m.get("context_id") != "c" for m in after)
    await peer.close()


async def test_cancel_of_a_queued_context_answers_at_once(server):
    peer, _ = await RawPeer.open(server.ws_url)
    await peer.send({"type": "text", "context_id": "first", "text": "Speaking now, for a little while."})
    await peer.send({"type": "text", "context_id": "later", "text": "Never spoken."})
    await peer.send({"type": "cancel", "context_id": "later"})
    cancelled, _ = await peer.until("cancelled", "later")
    assert cancelled == {"type": "cancelled", "context_id": "later", "audio_ms": 0.0, "text_spoken": "",
                         "text_remaining": "Never spoken."}
    await peer.send({"type": "end", "context_id": "first"})
    await peer.until("done", "first")
    await peer.close()


async def test_disconnect_mid_turn_frees_the_worker(server):
    long_text = " ".join(f"Sentence {i} is here to keep the engine busy for a bit." for i in range(40))
    peer, _ = await RawPeer.open(server.ws_url)
    await peer.send({"type": "text", "context_id": "x", "text": long_text})
    await peer.until("audio", "x")
    peer.ws.transport.abort()  # no close handshake: the socket just drops
    deadline = time.monotonic() + 10
    while server.runtime.sessions.live and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not server.runtime.sessions.live
    async with await VoicewireClient.connect(server.ws_url) as client:
        started = time.monotonic()
        result = await client.speak(["The worker is free again."])
    assert result.final.audio_ms > 500 and time.monotonic() - started < 5


async def test_keepalive_and_init_generation_defaults(server):
    peer, _ = await RawPeer.open(server.ws_url)
    await peer.send({"type": "keepalive"})
    await peer.send({"type": "init", "generation": {"exaggeration": 1.2}})
    ready = await peer.recv()
    assert ready["type"] == "ready"
    await peer.close()


async def test_health_and_metrics(server):
    async with await VoicewireClient.connect(server.ws_url) as client:
        await client.speak(["A quick turn for the metrics."])
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        health = (await http.get("/healthz")).json()
        assert health["status"] == "ok" and health["engine"] == "piper"
        metrics = (await http.get("/metrics")).text
    assert "voicewire_ttfa_seconds_count 1.0" in metrics
    assert 'voicewire_contexts_total{outcome="done"} 1.0' in metrics
    assert "voicewire_active_sessions" in metrics and "voicewire_audio_seconds_total" in metrics

