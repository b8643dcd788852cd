"""The hostile-input corpus over a real websocket: each input gets its documented answer, and the
server still speaks a normal turn right afterwards (on the same session unless the answer was fatal)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable, Iterator

import pytest
import websockets

from stream.settings import Limits, Settings
from tests.conftest import ServerHandle, start_server
from tests.hostile_corpus import (
    HTTP_CASES,
    ODD_TEXTS,
    RAW_CASES,
    WS_CASES,
    RawCase,
    WsCase,
    close_code,
    upgrade_request,
)
from tests.wire import RawPeer


@pytest.fixture(scope="module")
def servers(piper_engine, tmp_path_factory) -> Iterator[Callable[[dict], ServerHandle]]:
    """One server per distinct set of limit overrides, shared by the module's cases."""
    made: dict[tuple, ServerHandle] = {}

    def get(limits: dict) -> ServerHandle:
        key = tuple(sorted(limits.items()))
        if key not in made:
            data = tmp_path_factory.mktemp("data")
            made[key] = start_server(piper_engine, Settings(port=0, data_dir=str(data), limits=Limits(**limits)))
        return made[key]

    yield get
    for handle in made.values():
        handle.stop()


async def speak_normal_turn(peer: RawPeer, context_id: str = "after") -> None:
    await peer.send({"type": "text", "context_id": context_id, "text": "Ok."})
    await peer.send({"type": "end", "context_id": context_id})
    done, seen = await peer.until("done", context_id)
    assert done["audio_ms"] > 0
    assert [m for m in seen if m["type"] == "error"] == []


async def fresh_session_speaks(srv: ServerHandle) -> None:
    peer, ready = await RawPeer.open(srv.ws_url)
    assert ready["type"] == "ready"
    await speak_normal_turn(peer)
    await peer.close()


def test_corpus_is_big_enough():
    assert len(WS_CASES) + len(RAW_CASES) + len(ODD_TEXTS) + len(HTTP_CASES) >= 150
    assert len({case.id for case in WS_CASES}) == len(WS_CASES)


@pytest.mark.parametrize("case", WS_CASES, ids=lambda case: case.id)
async def test_ws_hostile_frame(servers, case: WsCase):
    srv = servers(case.limits)
    peer, _ = await RawPeer.open(srv.ws_url)
    for frame in case.frames:
        await peer.send(frame)
    err = await peer.error()
    assert err["code"] == case.code, err
    assert err["fatal"] is case.fatal
    assert case.fragment in err["message"]
    if case.fatal:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await peer.recv()
        assert closed.value.rcvd.code == 1009
        await fresh_session_speaks(srv)
        return
    for frame in case.cleanup:
        await peer.send(frame)
    if "messages_per_second" in case.limits:
        await asyncio.sleep(3 / case.limits["messages_per_second"])  # let the bucket refill for the turn
    await speak_normal_turn(peer)
    await peer.close()


@pytest.mark.parametrize("name", ODD_TEXTS)
async def test_odd_text_is_spoken_and_fully_accounted_for(servers, name: str):
    body = ODD_TEXTS[name]
    peer, _ = await RawPeer.open(servers({}).ws_url)
    await peer.send({"type": "text", "context_id": "odd", "text": body})
    await peer.send({"type": "end", "context_id": "odd"})
    done, seen = await peer.until("done", "odd")
    assert [m for m in seen if m["type"] == "error"] == []
    assert "".join(m["text"] for m in seen if m["type"] == "phrase") == body
    assert done["characters"] == len(body)
    await speak_normal_turn(peer)
    await peer.close()


def _read_until_closed(sock: socket.socket, limit: int = 1 << 20) -> tuple[bytes, bool]:
    """What the server sent, and whether it closed the connection (False: the read timed out)."""
    data = b""
    try:
        while len(data) < limit:
            part = sock.recv(65536)
            if not part:
                return data, True
            data += part
    except ConnectionResetError:
        return data, True
    except TimeoutError:
        pass
    return data, False


def _exchange(port: int, case: RawCase) -> tuple[bytes, bool]:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        if case.after_handshake:
            sock.sendall(upgrade_request())
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(4096)
            assert head.startswith(b"HTTP/1.1 101")
            rest = head.split(b"\r\n\r\n", 1)[1]
        else:
            rest = b""
        try:
            sock.sendall(case.data)
        except (BrokenPipeError, ConnectionResetError):  # refused before we finished sending
            pass
        answer, closed = _read_until_closed(sock)
        return rest + answer, closed


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in RAW_CASES])
async def test_raw_hostile_bytes(servers, case: RawCase):
    srv = servers({})
    answer, closed = await asyncio.to_thread(_exchange, srv.port, case)
    if case.after_handshake:
        assert close_code(answer) == case.close_code, answer[:300]
    else:
        status = answer.split(b"\r\n", 1)[0]
        assert status.startswith(f"HTTP/1.1 {case.status}".encode()), status
        assert closed or case.status == 101, "refused, but the connection was left open"
    await fresh_session_speaks(srv)


@pytest.mark.parametrize("stage", ["tcp-only", "half-request", "request-no-read", "upgraded-no-frames",
                                   "half-frame"])
async def test_disconnect_mid_handshake_leaves_server_serving(servers, stage: str):
    srv = servers({})

    def hang_up() -> None:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
            request = upgrade_request()
            if stage == "half-request":
                sock.sendall(request[: len(request) // 2])
            elif stage in ("request-no-read", "upgraded-no-frames", "half-frame"):
                sock.sendall(request)
            if stage in ("upgraded-no-frames", "half-frame"):
                assert sock.recv(4096).startswith(b"HTTP/1.1 101")
            if stage == "half-frame":
                sock.sendall(json.dumps({"type": "keepalive"}).encode()[:1] + b"\x9f")

    await asyncio.to_thread(hang_up)
    await fresh_session_speaks(srv)
    deadline = asyncio.get_running_loop().time() + 5
    while srv.runtime.sessions.live and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    assert not srv.runtime.sessions.live  # the half-open sessions were released
