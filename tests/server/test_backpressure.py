"""Backpressure: a client that stops reading pauses generation for its own session only (the single
worker keeps serving others), what the server holds for it stays bounded, and a client stalled past
`stalled_client_timeout_s` is closed and its session released."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import threading
import time

import pytest

from stream.engines.base import SynthesisRequest
from stream.engines.piper.engine import PiperEngine
from tests.hostile_corpus import client_frame, upgrade_request
from tests.wire import RawPeer

CHUNK_S = 0.05
# Short sentences: piper yields one chunk per sentence, so a working engine is never quiet for long.
TEXT = "One more short sentence to fill the buffers. " * 80


class ChunkingEngine(PiperEngine):
    """Piper, cut into 50 ms chunks the way a token-streaming engine yields them; counts what it
    yields, in all and for the stalled client's long reply (`TEXT`)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.yielded_s = 0.0
        self.stalled_reply_s = 0.0
        self.synthesizing = 0  # calls inside Piper now (a sentence takes longer on a loaded machine)

    def _sentences(self, request: SynthesisRequest, cancel: threading.Event):
        sentences = iter(super().synthesize(request, cancel))
        while True:
            with self._lock:
                self.synthesizing += 1
            try:
                audio = next(sentences, None)
            finally:
                with self._lock:
                    self.synthesizing -= 1
            if audio is None:
                return
            yield audio

    def synthesize(self, request: SynthesisRequest, cancel: threading.Event):
        step = int(self.sample_rate * CHUNK_S)
        stalled_reply = request.text in TEXT
        for audio in self._sentences(request, cancel):
            for start in range(0, len(audio), step):
                seconds = len(audio[start:start + step]) / self.sample_rate
                with self._lock:
                    self.yielded_s += seconds
                    self.stalled_reply_s += seconds if stalled_reply else 0.0
                yield audio[start:start + step]


@pytest.fixture
def engine() -> ChunkingEngine:
    engine = ChunkingEngine()
    engine.load()
    return engine


def stalled_client(port: int) -> socket.socket:
    """A websocket client that asks for a long reply in the largest output format, then never reads."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(upgrade_request())
    assert sock.recv(4096).startswith(b"HTTP/1.1 101")
    for message in ({"type": "init", "output_format": {"encoding": "pcm_f32le", "sample_rate": 48000}},
                    {"type": "text", "context_id": "s", "text": TEXT}, {"type": "end", "context_id": "s"}):
        sock.sendall(client_frame(json.dumps(message).encode()))
    return sock


def sent_audio_s(srv) -> float:
    return srv.runtime.metrics.registry.get_sample_value("voicewire_audio_seconds_total") or 0.0


async def until_paused(srv, engine: ChunkingEngine, quiet_s: float = 3.0, timeout: float = 120.0) -> None:
    """Wait until neither the server sent nor the engine made audio for `quiet_s`, and the engine is
    not in the middle of a sentence: buffers are full."""
    deadline = time.monotonic() + timeout
    last, since = (0.0, 0.0), time.monotonic()
    while time.monotonic() - since < quiet_s or last[0] == 0 or engine.synthesizing:
        assert time.monotonic() < deadline, "the server never stopped sending"
        await asyncio.sleep(0.2)
        now = (sent_audio_s(srv), engine.yielded_s)
        if now != last:
            last, since = now, time.monotonic()


async def test_stalled_reader_pauses_only_its_own_session(make_server, engine):
    srv = make_server(engine=engine, workers=1, send_buffer_chunks=4, stalled_client_timeout_s=120)
    sock = await asyncio.to_thread(stalled_client, srv.port)
    try:
        await until_paused(srv, engine)
        paused_at, stalled_at = engine.yielded_s, engine.stalled_reply_s
        sent = sent_audio_s(srv)
        # Held for the stalled session: the chunk being sent plus `send_buffer_chunks` queued, for the
        # phrase being sent and the one synthesized ahead, and nothing more.
        assert paused_at - sent <= 2 * (4 + 1) * CHUNK_S + 0.01
        peer, _ = await RawPeer.open(srv.ws_url)
        await peer.send({"type": "text", "context_id": "other", "text": "Another session is not held up."})
        await peer.send({"type": "end", "context_id": "other"})
        done, _ = await peer.until("done", "other", timeout=60)
        assert done["audio_ms"] > 0
        await peer.close()
        assert engine.stalled_reply_s == stalled_at  # the stalled job stayed parked
        assert engine.yielded_s - paused_at >= done["audio_ms"] / 1000  # the worker spoke the other turn
        released = time.monotonic() + 10  # the closed peer's session is released asynchronously
        while len(srv.runtime.sessions.live) > 1 and time.monotonic() < released:
            await asyncio.sleep(0.02)
        assert len(srv.runtime.sessions.live) == 1  # the stalled session is still there
    finally:
        sock.close()
    deadline = time.monotonic() + 10
    while srv.runtime.sessions.live and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not srv.runtime.sessions.live


async def test_client_stalled_past_the_timeout_is_closed(make_server, engine, caplog):
    srv = make_server(engine=engine, stalled_client_timeout_s=1.5)
    sock = await asyncio.to_thread(stalled_client, srv.port)
    try:
        while sent_audio_s(srv) == 0:
            await asyncio.sleep(0.05)
        deadline = time.monotonic() + 120  # filling the socket buffers first takes a while
        while srv.runtime.sessions.live and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not srv.runtime.sessions.live
        assert "client read nothing for 1.5 s; closing it" in caplog.text
        generated = engine.yielded_s
        await asyncio.sleep(0.5)
        assert engine.yielded_s == generated  # its generation stopped with it
        peer, _ = await RawPeer.open(srv.ws_url)
        await peer.send({"type": "text", "context_id": "next", "text": "The server is fine."})
        await peer.send({"type": "end", "context_id": "next"})
        await peer.until("done", "next")
        await peer.close()
    finally:
        sock.close()


def test_frame_helper_round_trips():
    """The raw frames the stalled client sends are what a websocket parser expects."""
    from websockets.frames import Frame
    from websockets.streams import StreamReader

    payload = base64.b64encode(os.urandom(300))
    reader = StreamReader()
    reader.feed_data(client_frame(payload))
    parser = Frame.parse(reader.read_exact, mask=True)
    with pytest.raises(StopIteration) as result:
        next(parser)
    assert result.value.value.data == payload
