"""Faults: clients vanishing mid-handshake/turn/phrase, an engine that raises or hangs, and SIGTERM
with contexts in flight. Each may end its own session or context, never another one."""

from __future__ import annotations

import asyncio
import signal
import threading
import time

import pytest
import websockets

from stream.engines.base import SynthesisRequest
from stream.engines.piper.engine import PiperEngine
from tests.serve_child import serve_child
from tests.wire import RawPeer

LONG = ("The first sentence of a long answer keeps the engine busy for a while. " * 6).strip()


class FaultyEngine(PiperEngine):
    """The real piper voice, except that a phrase saying 'explode' fails after its first chunk, one
    saying 'hang' blocks (until the test releases it) without yielding anything, and one saying
    'slowly' takes three seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def synthesize(self, request: SynthesisRequest, cancel: threading.Event):
        if "hang" in request.text:
            self.release.wait(60)
            return
        if "slowly" in request.text:
            time.sleep(3.0)
        for i, chunk in enumerate(super().synthesize(request, cancel)):
            if i == 1 and "explode" in request.text:
                raise RuntimeError("engine fault injected by the test")
            yield chunk
        if "explode" in request.text:
            raise RuntimeError("engine fault injected by the test")


@pytest.fixture(scope="module")
def faulty_engine() -> FaultyEngine:
    engine = FaultyEngine()
    engine.load()
    yield engine
    engine.release.set()


async def speak(url: str, context_id: str, text: str = "A normal turn, spoken in full.") -> dict:
    peer, _ = await RawPeer.open(url)
    await peer.send({"type": "text", "context_id": context_id, "text": text})
    await peer.send({"type": "end", "context_id": context_id})
    done, seen = await peer.until("done", context_id, timeout=60)
    assert [m for m in seen if m["type"] == "error"] == []
    assert "".join(m["text"] for m in seen if m["type"] == "phrase") == text
    await peer.close()
    return done


async def wait_released(srv, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while srv.runtime.sessions.live and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not srv.runtime.sessions.live


@pytest.mark.parametrize("moment", ["after-ready", "mid-turn", "mid-phrase", "queued-contexts"])
async def test_client_vanishing_ends_only_its_session(make_server, moment: str):
    srv = make_server(workers=1)
    victim, _ = await RawPeer.open(srv.ws_url)
    if moment == "mid-turn":  # context open, waiting for more text
        await victim.send({"type": "text", "context_id": "v", "text": "Half a thought, and then"})
        await victim.until("audio", "v")
    elif moment == "mid-phrase":  # audio of a long phrase is streaming
        await victim.send({"type": "text", "context_id": "v", "text": LONG})
        await victim.send({"type": "end", "context_id": "v"})
        await victim.until("audio", "v")
    elif moment == "queued-contexts":
        for cid in ("a", "b", "c"):
            await victim.send({"type": "text", "context_id": cid, "text": LONG})
            await victim.send({"type": "end", "context_id": cid})
    other = asyncio.create_task(speak(srv.ws_url, "other"))
    victim.ws.transport.abort()  # no close frame: the TCP connection just vanishes
    done = await other
    assert done["audio_ms"] > 0
    await wait_released(srv)
    assert (await speak(srv.ws_url, "after"))["audio_ms"] > 0  # the one worker is free again


async def test_engine_exception_mid_phrase_ends_only_that_context(make_server, faulty_engine):
    srv = make_server(engine=faulty_engine)
    other = asyncio.create_task(speak(srv.ws_url, "other", LONG))
    peer, _ = await RawPeer.open(srv.ws_url)
    await peer.send({"type": "text", "context_id": "bad", "text": "This sentence will explode. Right now. Boom."})
    await peer.send({"type": "end", "context_id": "bad"})
    await peer.send({"type": "text", "context_id": "next", "text": "The next turn is fine."})
    await peer.send({"type": "end", "context_id": "next"})
    err = await peer.error(timeout=30)
    assert (err["code"], err["context_id"], err["fatal"]) == ("internal", "bad", False)
    assert "engine fault injected" in err["message"]
    done, seen = await peer.until("done", "next", timeout=60)
    assert not any(m.get("context_id") == "bad" for m in seen)  # nothing more for the failed context
    assert done["audio_ms"] > 0
    assert (await other)["audio_ms"] > 0
    await peer.close()


async def test_hung_engine_call_fails_its_context_and_keeps_the_pool_serving(make_server, faulty_engine):
    srv = make_server(engine=faulty_engine, workers=1, engine_stall_timeout_s=1.0)
    peer, _ = await RawPeer.open(srv.ws_url)
    await peer.send({"type": "text", "context_id": "stuck", "text": "Now hang forever please."})
    await peer.send({"type": "end", "context_id": "stuck"})
    started = time.monotonic()
    err = await peer.error(timeout=30)
    assert (err["code"], err["context_id"]) == ("internal", "stuck")
    assert "no audio for" in err["message"]
    assert time.monotonic() - started < 15
    # The only worker is still stuck in the engine; a replacement thread serves everyone else.
    assert (await speak(srv.ws_url, "elsewhere"))["audio_ms"] > 0
    await peer.send({"type": "text", "context_id": "again", "text": "And this session goes on."})
    await peer.send({"type": "end", "context_id": "again"})
    done, _ = await peer.until("done", "again", timeout=60)
    assert done["audio_ms"] > 0
    await peer.close()
    faulty_engine.release.set()  # let the stuck thread return, so the server stops promptly


async def test_sigterm_sends_final_messages_and_exits_in_bounded_time(tmp_path):
    """With `--drain-timeout 0` no turn gets to finish: every open context is cancelled at once
    (test_replica covers the drain that lets turns finish)."""
    with serve_child(tmp_path, "--drain-timeout", "0", env={"VOICEWIRE_LOG_LEVEL": "info"}) as child:
        peers = [(await child.open())[0], (await RawPeer.open(child.ws_url))[0]]
        sent = {"speaking": LONG, "open": "Still typing this one", "queued": "Queued behind the others."}
        for peer in peers:
            for cid, body in sent.items():
                await peer.send({"type": "text", "context_id": cid, "text": body})
            await peer.send({"type": "end", "context_id": "queued"})
            await peer.until("audio", "speaking")

        async def final_messages(peer: RawPeer) -> None:
            finals: dict[str, dict] = {}
            while True:
                msg = await peer.recv(timeout=15)
                if msg["type"] == "cancelled":
                    finals[msg["context_id"]] = msg
                elif msg["type"] == "error":
                    break
            assert (msg["code"], msg["fatal"]) == ("shutting_down", True)
            assert set(finals) == set(sent)
            for cid, final in finals.items():
                assert final["text_spoken"] + final["text_remaining"] == sent[cid]
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await peer.recv()
            assert closed.value.rcvd.code == 1001

        # Both clients read at once: the server's exit is bounded, so a client that is not
        # reading while it stops may lose what was still buffered for it.
        reading = asyncio.gather(*(final_messages(peer) for peer in peers))
        child.process.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        await reading
        # uvicorn re-raises the captured SIGTERM once it has shut down cleanly.
        assert child.process.wait(20) in (0, -signal.SIGTERM)
        assert time.monotonic() - stopped < 20


async def test_idle_clock_restarts_when_a_slow_context_finishes(make_server, faulty_engine):
    """A client that sent its last message long ago but just got its `done` is listening, not idle."""
    srv = make_server(engine=faulty_engine, idle_timeout_s=2.0)
    peer, _ = await RawPeer.open(srv.ws_url)
    await peer.send({"type": "text", "context_id": "slow", "text": "Say this slowly."})
    await peer.send({"type": "end", "context_id": "slow"})
    _, seen = await peer.until("done", "slow", timeout=30)
    assert [m for m in seen if m["type"] == "error"] == []
    await asyncio.sleep(1.3)  # past the 2 s since `end`, well inside 2 s since `done`
    await peer.send({"type": "keepalive"})
    await peer.send({"type": "text", "context_id": "next", "text": "Still here."})
    await peer.send({"type": "end", "context_id": "next"})
    _, seen = await peer.until("done", "next", timeout=30)
    assert [m for m in seen if m["type"] == "error"] == []
    await peer.close()
