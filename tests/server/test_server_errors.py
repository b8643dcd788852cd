"""Every protocol error code that applies, over a real socket; the session survives each non-fatal one."""

from __future__ import annotations

import asyncio
import threading

import pytest
import websockets

from stream.engines.base import SynthesisRequest
from stream.engines.piper.engine import PiperEngine
from tests.wire import RawPeer


async def assert_session_still_works(peer: RawPeer, context_id: str = "after") -> None:
    await peer.send({"type": "text", "context_id": context_id, "text": "Still working."})
    await peer.send({"type": "end", "context_id": context_id})
    done, _ = await peer.until("done", context_id)
    assert done["audio_ms"] > 0


@pytest.mark.parametrize(("frame", "code", "fragment"), [
    ("{not json", "invalid_json", "invalid JSON"),
    ('{"type":"text","context_id":"c","text":"x","generation":{"top_p":NaN}}', "invalid_json", "NaN"),
    (b"\x00\x01binary", "invalid_message", "binary frames"),
    ('["text"]', "invalid_message", "JSON object"),
    ('{"type":"sing"}', "invalid_message", "type: must be one of"),
    ('{"type":"text","text":"x"}', "invalid_message", "context_id: field required"),
    ('{"type":"text","context_id":"c","text":"x","generation":{"exaggeration":3}}', "out_of_range",
     "generation.exaggeration"),
    ('{"type":"init","output_format":{"sample_rate":12345}}', "invalid_message", "output_format.sample_rate"),
    ('{"type":"flush","context_id":"nope"}', "unknown_context", "nope"),
    ('{"type":"end","context_id":"nope"}', "unknown_context", "nope"),
    ('{"type":"cancel","context_id":"nope"}', "unknown_context", "nope"),
    ('{"type":"text","context_id":"c","text":"x","voice":"nobody"}', "voice_not_found", "nobody"),
    ('{"type":"text","context_id":"c","text":"x","voice":{"reference_audio":"UklGRg=="}}', "unsupported",
     "cannot clone"),
])
async def test_bad_frames_get_one_clear_error(server, frame, code, fragment):
    peer, _ = await RawPeer.open(server.ws_url)
    await peer.send(frame)
    err = await peer.error()
    assert err["code"] == code and err["fatal"] is False
    assert fragment in err["message"]
    await assert_session_still_works(peer)
    await peer.close()


async def test_context_closed_after_end_and_after_done(server):
    peer, _ = await RawPeer.open(server.ws_url)
    await peer.send({"type": "text", "context_id": "a", "text": "Hello there."})
    await peer.send({"type": "end", "context_id": "a"})
    await peer.send({"type": "text", "context_id": "a", "text": " More."})
    err = await peer.error()
    assert (err["code"], err["context_id"]) == ("context_closed", "a")
    await peer.until("done", "a")
    for frame in ({"type": "text", "context_id": "a", "text": "again"}, {"type": "end", "context_id": "a"},
                  {"type": "cancel", "context_id": "a"}):
        await peer.send(frame)
        assert (await peer.error())["code"] == "context_closed"
    await assert_session_still_works(peer)
    await peer.close()


async def test_settings_are_locked_after_the_first_message(server):
    peer, _ = await RawPeer.open(server.ws_url)
    await peer.send({"type": "text", "context_id": "a", "text": "Hello", "generation": {"exaggeration": 1}})
    await peer.send({"type": "text", "context_id": "a", "text": " there.", "generation": {"exaggeration": 2}})
    err = await peer.error()
    assert err["code"] == "settings_locked"
    await peer.send({"type": "end", "context_id": "a"})
    done, seen = await peer.until("done", "a")
    assert done["characters"] == len("Hello")  # the refused message added nothing
    await peer.close()


async def test_too_many_contexts_and_text_too_long(make_server):
    srv = make_server(max_contexts_per_session=2, max_text_chars_per_context=50)
    peer, ready = await RawPeer.open(srv.ws_url)
    assert ready["limits"]["max_contexts_per_session"] == 2
    for cid in ("a", "b"):
        await peer.send({"type": "text", "context_id": cid, "text": "Hi"})
    await peer.send({"type": "text", "context_id": "c", "text": "Hi"})
    assert (await peer.error())["code"] == "too_many_contexts"
    await peer.send({"type": "text", "context_id": "a", "text": "x" * 49})
    err = await peer.error()
    assert err["code"] == "text_too_long" and "at most 50" in err["message"]
    for cid in ("a", "b"):
        await peer.send({"type": "end", "context_id": cid})
    done, _ = await peer.until("done", "b")
    assert done["characters"] == 2
    await peer.close()


async def test_rate_limited(make_server):
    srv = make_server(messages_per_second=5)
    peer, _ = await RawPeer.open(srv.ws_url)
    for _ in range(20):
        await peer.send({"type": "keepalive"})
    err = await peer.error()
    assert err["code"] == "rate_limited" and err["fatal"] is False
    await peer.close()


class FailingEngine(PiperEngine):
    """The real piper engine, except that a phrase containing 'explode' raises mid-synthesis."""

    def synthesize(self, request: SynthesisRequest, cancel: threading.Event):
        if "explode" in request.text:
            raise RuntimeError("engine fault injected by the test")
        yield from super().synthesize(request, cancel)


async def test_failed_synthesis_ends_only_its_context(make_server):
    engine = FailingEngine()
    engine.load()
    srv = make_server(engine=engine)
    peer, _ = await RawPeer.open(srv.ws_url)
    await peer.send({"type": "text", "context_id": "bad", "text": "This will explode."})
    await peer.send({"type": "end", "context_id": "bad"})
    await peer.send({"type": "text", "context_id": "good", "text": "This one is fine."})
    await peer.send({"type": "end", "context_id": "good"})
    err = await peer.error()
    assert (err["code"], err["context_id"], err["fatal"]) == ("internal", "bad", False)
    done, _ = await peer.until("done", "good")
    assert done["audio_ms"] > 0
    await peer.close()


async def test_unauthorized_closes_with_1008(make_server):
    srv = make_server(api_keys=("sekret",))
    peer, err = await RawPeer.open(srv.ws_url)
    assert err["code"] == "unauthorized" and err["fatal"] is True
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await peer.recv()
    assert closed.value.rcvd.code == 1008
    peer, ready = await RawPeer.open(srv.ws_url, additional_headers={"x-api-key": "sekret"})
    assert ready["type"] == "ready"
    await peer.close()
    peer, ready = await RawPeer.open(srv.ws_url + "?api_key=sekret")
    assert ready["type"] == "ready"
    await peer.close()


async def test_message_too_large_closes_with_1009(make_server):
    srv = make_server(max_frame_bytes=1000)
    peer, _ = await RawPeer.open(srv.ws_url)
    await peer.send({"type": "text", "context_id": "a", "text": "x" * 1500})
    err = await peer.error()
    assert err["code"] == "message_too_large" and err["fatal"] is True
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await peer.recv()
    assert closed.value.rcvd.code == 1009


async def test_idle_timeout_closes_with_1000_and_keepalive_defers_it(make_server):
    srv = make_server(idle_timeout_s=0.6)
    peer, _ = await RawPeer.open(srv.ws_url)
    for _ in range(3):
        await asyncio.sleep(0.3)
        await peer.send({"type": "keepalive"})
    err = await peer.error(timeout=3)
    assert err["code"] == "idle_timeout"
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await peer.recv()
    assert closed.value.rcvd.code == 1000


async def test_session_limit(make_server):
    srv = make_server(max_sessions=1)
    first, _ = await RawPeer.open(srv.ws_url)
    second, err = await RawPeer.open(srv.ws_url)
    assert err["code"] == "rate_limited" and err["fatal"] is True
    await first.close()
