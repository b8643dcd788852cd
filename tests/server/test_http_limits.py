"""Bounded request heads on every HTTP request (`stream/server/http_limits.py`), on the raw socket."""

from __future__ import annotations

import http.client
import select
import socket
from collections.abc import Iterable

import pytest

KIB = 1024
HEAD_LIMIT = 64 * KIB   # Limits.max_http_header_bytes default


def _read_to_eof(sock: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:   # the server closed with our unread bytes: what came before counts
            return data
        if not chunk:
            return data
        data += chunk


def exchange(port: int, parts: Iterable[bytes]) -> tuple[bytes, int]:
    """Send `parts` one by one, stopping as soon as the server answers; the answer read until the
    server closes (a request that is not refused must say `connection: close`), and the bytes sent."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for part in parts:
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(part)
            if select.select([sock], [], [], 0)[0]:
                break
        return _read_to_eof(sock), sent


def request(target: str = "/healthz", headers: Iterable[bytes] = ()) -> list[bytes]:
    return [f"GET {target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n".encode(), *headers, b"\r\n"]


def status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer[9:12])


def test_twenty_megabytes_of_headers_get_431_after_the_limit_not_200(server):
    headers = [b"x-h%d: %s\r\n" % (i, b"a" * 1000) for i in range(20_000)]   # the 20 MB
    answer, sent = exchange(server.port, request(headers=headers))
    assert status(answer) == 431 and b"connection: close" in answer.lower()
    assert sent < sum(map(len, headers)) // 4, "refused only after most of the headers (the rest sit in socket buffers)"


def test_more_than_128_headers_get_431(server):
    answer, _ = exchange(server.port, request(headers=[b"x-h%d: 1\r\n" % i for i in range(129)]))
    assert status(answer) == 431 and b"more than 128 headers" in answer


def test_a_header_line_over_8_kib_gets_431(server):
    answer, _ = exchange(server.port, request(headers=[b"x-big: " + b"a" * (8 * KIB) + b"\r\n"]))
    assert status(answer) == 431 and b"header line" in answer


def test_a_request_line_over_8_kib_gets_414(server):
    answer, _ = exchange(server.port, request(target="/healthz?q=" + "a" * (8 * KIB)))
    assert status(answer) == 414


def test_a_header_fed_slowly_without_an_end_is_refused_at_the_limit(server):
    """llhttp buffers a header whose line has not ended; the reads themselves are counted."""
    start = [b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-endless: "]
    answer, _ = exchange(server.port, start + [b"a" * 512] * (64 * HEAD_LIMIT // 512))
    assert status(answer) == 431 and b"request headers over 65536 bytes" in answer


def test_heads_under_the_limit_are_served_and_the_count_restarts_per_request(server):
    """60 KiB of headers, four times over one keep-alive connection: the limit is per request."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for _ in range(4):
        connection.putrequest("GET", "/healthz")
        for i in range(60):
            connection.putheader(f"x-h{i}", "a" * 1000)
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 200 and response.read()
    connection.close()


@pytest.mark.parametrize("max_http_header_bytes", [4 * KIB])
def test_the_head_limit_is_a_setting(make_server, max_http_header_bytes):
    small = make_server(max_http_header_bytes=max_http_header_bytes)
    answer, _ = exchange(small.port, request(headers=[b"x-h%d: %s\r\n" % (i, b"a" * 1000) for i in range(5)]))
    assert status(answer) == 431
    answer, _ = exchange(small.port, request(headers=[b"x-h: 1\r\n"]))
    assert status(answer) == 200


def test_a_websocket_upgrade_is_held_to_the_same_head_limit(server):
    upgrade = [b"GET /v1/stream HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
               b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n"]
    answer, _ = exchange(server.port, upgrade + [b"x-h%d: %s\r\n" % (i, b"a" * 1000) for i in range(100)] + [b"\r\n"])
    assert status(answer) == 431
