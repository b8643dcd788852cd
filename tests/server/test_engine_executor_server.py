"""An engine that brings its own executor, end to end: a real server runs a test-only round-robin
scheduler (every request on one thread, a chunk each in turn) through `Engine.create_executor`,
for websocket turns of several sessions at once and for the one-shot HTTP endpoint."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.inference.round_robin_executor import RoundRobinExecutor, RoundRobinPiper
from tests.wire import RawPeer

REPLIES = {
    "a": "The first session asks about the weather. It will be sunny all week, with a breeze.",
    "b": "The second session wants a recipe. Mix the flour and the eggs, then bake it for an hour.",
}


@pytest.fixture(scope="module")
def engine() -> RoundRobinPiper:
    engine = RoundRobinPiper()
    engine.load()
    return engine


async def speak(url: str, context_id: str, text: str) -> dict:
    peer, _ = await RawPeer.open(url)
    await peer.send({"type": "text", "context_id": context_id, "text": text, "voice": "joe"})
    await peer.send({"type": "end", "context_id": context_id})
    done, seen = await peer.until("done", context_id, timeout=60)
    await peer.close()
    assert [m for m in seen if m["type"] == "error"] == []
    assert "".join(m["text"] for m in seen if m["type"] == "phrase") == text
    return done


async def test_sessions_share_the_engines_own_scheduler(make_server, engine):
    srv = make_server(engine=engine)
    executor = srv.runtime.executor
    assert isinstance(executor, RoundRobinExecutor)
    done = await asyncio.gather(*(speak(srv.ws_url, cid, text) for cid, text in REPLIES.items()))
    assert all(d["audio_ms"] > 1000 for d in done)
    # Both sessions' phrases were in flight together and took turns on the one thread.
    assert executor.max_in_flight >= 2
    owners = [next(cid for cid, text in REPLIES.items() if phrase in text) for phrase in executor.served]
    switches = sum(a != b for a, b in zip(owners, owners[1:], strict=False))
    assert switches >= 3, owners


def test_the_one_shot_endpoint_runs_on_it_too(make_server, engine):
    srv = make_server(engine=engine)
    r = httpx.post(f"{srv.http_url}/v1/audio/speech", timeout=60,
                   json={"model": "tts-1", "voice": "joe", "input": REPLIES["a"], "response_format": "pcm"})
    assert r.status_code == 200, r.text
    assert len(r.content) > engine.sample_rate  # more than half a second of 16-bit audio
    assert set(srv.runtime.executor.served) and all(p in REPLIES["a"] for p in srv.runtime.executor.served)
