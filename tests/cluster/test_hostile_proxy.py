"""The hostile-input corpora through Ray Serve's proxy: the replicas' answers reach the client.

Frames and requests the app judges (tests/hostile_corpus.py's websocket and HTTP cases) must get the
same answer through the proxy as from a server on its own port. The proxy is Serve's own uvicorn,
not `voicewire serve`'s bounded protocols, so the limits those protocols enforce on raw bytes
(header sizes, handshake and framing errors) are the proxy's business: where its answer differs,
the case is marked with what it does instead, and docs/deploy.md ("What the proxy does not
enforce") says what to put in front of it."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
import websockets

from tests.cluster.conftest import Cluster
from tests.hostile_corpus import (
    HTTP_CASES,
    RAW_CASES,
    WS_CASES,
    HttpCase,
    RawCase,
    WsCase,
    close_code,
    upgrade_request,
)
from tests.wire import RawPeer

pytestmark = pytest.mark.slow

# Cases whose answer through the proxy differs from `voicewire serve`'s (measured with Ray 2.55.1):
# id -> what the proxy does instead. docs/deploy.md lists them.
NO_ANSWER = "no answer within 5 s and the connection left open (voicewire serve answers at once)"
PROXY_DIFFERS: dict[str, str] = {
    "tts-key-header-over-8-kib": "passes a 10 KB header line on to the replica (431 from voicewire serve)",
    "header-line-100k": f"a 100 KB header line: {NO_ANSWER}, 431",
    "headers-200": f"200 header lines: {NO_ANSWER}, 431",
    "request-line-10k": f"a 10 KB request line: {NO_ANSWER}, 414",
    "upgrade-with-body": f"an upgrade with a body: {NO_ANSWER}, 400",
    "upgrade-chunked": f"a chunked upgrade: {NO_ANSWER}, 400",
}
# Cases that do not apply: the cluster has API keys.
NOT_HERE = {"tts-long-key-open-server": "about an open server; the cluster's replicas require keys"}


def _marks(case_id: str) -> list:
    if case_id in NOT_HERE:
        return [pytest.mark.skip(reason=NOT_HERE[case_id])]
    reason = PROXY_DIFFERS.get(case_id)
    return [pytest.mark.xfail(reason=f"Serve's proxy: {reason}", strict=True)] if reason else []


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=_marks(c.id)) for c in WS_CASES if not c.limits])
async def test_ws_hostile_frame_through_the_proxy(two_replicas: Cluster, case: WsCase):
    peer, _ = await RawPeer.open(two_replicas.ws_url, additional_headers=two_replicas.headers)
    try:
        for frame in case.frames:
            await peer.send(frame)
        err = await peer.error()
        assert (err["code"], err["fatal"]) == (case.code, case.fatal), err
        assert case.fragment in err["message"]
    finally:
        await peer.close()


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=_marks(c.id)) for c in HTTP_CASES])
async def test_http_hostile_request_through_the_proxy(two_replicas: Cluster, case: HttpCase):
    headers = dict(case.headers)
    headers.setdefault("x-api-key", two_replicas.api_key)
    async with httpx.AsyncClient(base_url=two_replicas.http_url, timeout=60) as client:
        response = await client.request(case.method, case.path, content=case.body, headers=headers)
    assert response.status_code == case.status, response.text[:300]
    if case.code is not None:
        body = response.json()
        code = body.get("code") if body.get("type") == "error" else (body.get("error") or {}).get("code")
        assert code == case.code, response.text[:300]


def _exchange(cluster: Cluster, case: RawCase) -> bytes:
    with socket.create_connection(("127.0.0.1", cluster.port), timeout=5) as sock:
        if case.after_handshake:
            sock.sendall(upgrade_request(extra=f"x-api-key: {cluster.api_key}\r\n"))
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(4096)
            assert head.startswith(b"HTTP/1.1 101"), head[:200]
            answer = head.split(b"\r\n\r\n", 1)[1]
        else:
            answer = b""
        try:
            sock.sendall(case.data)
            while part := sock.recv(65536):
                answer += part
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        return answer


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=_marks(c.id)) for c in RAW_CASES])
async def test_raw_hostile_bytes_through_the_proxy(two_replicas: Cluster, case: RawCase):
    answer = await asyncio.to_thread(_exchange, two_replicas, case)
    if case.after_handshake:
        assert close_code(answer) == case.close_code, answer[:300]
    else:
        assert answer.split(b"\r\n", 1)[0].startswith(f"HTTP/1.1 {case.status}".encode()), answer[:300]


async def test_the_replicas_still_serve_after_the_corpora(two_replicas: Cluster):
    peers = [peer for peer, _ in await asyncio.gather(*(
        RawPeer.open(two_replicas.ws_url, additional_headers=two_replicas.headers) for _ in range(4)))]
    try:
        for i, peer in enumerate(peers):
            await peer.send({"type": "text", "context_id": f"c{i}", "text": "Still here."})
            await peer.send({"type": "end", "context_id": f"c{i}"})
            done, _ = await peer.until("done", f"c{i}", timeout=60)
            assert done["audio_ms"] > 0
    finally:
        await asyncio.gather(*(peer.close() for peer in peers), return_exceptions=True)
    async with websockets.connect(two_replicas.ws_url, additional_headers={"x-api-key": "vw_nope"}) as stranger:
        refusal = await asyncio.wait_for(stranger.recv(), 20)   # and still refuse a stranger
    assert '"unauthorized"' in refusal
