"""clients/endpoint.py: the server addresses `say` and `chat` accept, and the line each failure becomes."""

from __future__ import annotations

import argparse
import asyncio
import socket

import pytest
import websockets
from websockets.frames import Close
from websockets.http11 import Response

from clients.client import ErrorEvent, ServerError
from clients.endpoint import EndpointError, add_server_options, describe_failure, resolve, shown, stream_url


@pytest.mark.parametrize(("given", "url"), [
    ("ws://127.0.0.1:8765/v1/stream", "ws://127.0.0.1:8765/v1/stream"),
    ("ws://127.0.0.1:8765", "ws://127.0.0.1:8765/v1/stream"),
    ("http://127.0.0.1:8765/", "ws://127.0.0.1:8765/v1/stream"),
    ("https://tts.example.com/v1", "wss://tts.example.com/v1/stream"),
    ("localhost:9000", "ws://localhost:9000/v1/stream"),
    ("http://h:1/?api_key=k", "ws://h:1/v1/stream?api_key=k"),
    ("ws://proxy/tts/v1/stream", "ws://proxy/tts/v1/stream"),
])
def test_a_base_or_full_url_names_the_stream(given, url):
    assert stream_url(given) == url


@pytest.mark.parametrize("given", ["ftp://h/v1/stream", "ws:///v1/stream"])
def test_a_url_that_names_no_stream_is_refused_in_words(given):
    with pytest.raises(EndpointError, match="scheme|no host"):
        stream_url(given)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_server_options(parser)
    return parser.parse_args(argv)


def test_flags_then_environment_then_the_local_default():
    env = {"VOICEWIRE_URL": "http://far:9000"}
    assert resolve(parse(), {}) == "ws://127.0.0.1:8765/v1/stream"
    assert resolve(parse(), env) == "ws://far:9000/v1/stream"
    assert resolve(parse("--port", "9100"), env) == "ws://127.0.0.1:9100/v1/stream"
    assert resolve(parse("--host", "box"), env) == "ws://box:8765/v1/stream"
    assert resolve(parse("--url", "ws://near:1"), env) == "ws://near:1/v1/stream"
    with pytest.raises(EndpointError, match="either --url or --host/--port"):
        resolve(parse("--url", "ws://near:1", "--port", "2"), {})


def test_the_api_key_in_a_url_is_masked_in_messages():
    assert shown("ws://h:1/v1/stream?api_key=sekrit&x=1") == "ws://h:1/v1/stream?api_key=***&x=1"
    refused = ConnectionRefusedError(111, "Connection refused")
    assert "sekrit" not in describe_failure(refused, "ws://h:1/v1/stream?api_key=sekrit")


URL = "ws://127.0.0.1:8765/v1/stream"


def server_error(code: str, message: str) -> ServerError:
    return ServerError(ErrorEvent(code, message, None, True, 0.0))


@pytest.mark.parametrize(("exc", "url", "says"), [
    (websockets.InvalidStatus(Response(403, "Forbidden", websockets.Headers())), "ws://h:1/v2/stream",
     "answered HTTP 403: no voicewire stream at /v2/stream; the stream is at /v1/stream"),
    (websockets.InvalidStatus(Response(401, "Unauthorized", websockets.Headers())), URL,
     "HTTP 401: pass a valid key with --api-key KEY or VOICEWIRE_API_KEY"),
    (server_error("unauthorized", "missing API key"), URL,
     "refused the API key (missing API key); pass a valid key with --api-key KEY or VOICEWIRE_API_KEY"),
    (server_error("connection_closed", "the server closed the connection"), URL, "closed the connection"),
    (server_error("insufficient_credits", "needs 31 credits, 2 left"), URL,
     "server error insufficient_credits: needs 31 credits, 2 left"),
    (websockets.ConnectionClosedError(Close(1008, "unauthorized"), None), URL,
     "closed the connection (code 1008: unauthorized)"),
    (ConnectionRefusedError(111, "Connection refused"), URL,
     "connection refused; is `voicewire serve` running on 127.0.0.1:8765?"),
    (socket.gaierror(-2, "Name or service not known"), "ws://nowhere.invalid/v1/stream",
     "host 'nowhere.invalid' not found"),
    (asyncio.TimeoutError(), URL, "no answer in time"),
    (websockets.InvalidMessage("did not receive a valid HTTP response"), URL,
     "did not answer as a websocket server"),
])
def test_each_failure_is_one_line_that_says_what_to_do(exc, url, says):
    line = describe_failure(exc, url)
    assert says in line and "\n" not in line
