"""What `voicewire serve` says on start (`stream/server/serving.py`): the page, and whether keys are needed."""

from __future__ import annotations

import pytest

from stream.server.serving import page_url, startup_lines


@pytest.mark.parametrize(("host", "url"), [
    ("127.0.0.1", "http://127.0.0.1:8765/"),
    ("0.0.0.0", "http://127.0.0.1:8765/"),     # a wildcard bind is opened on loopback
    ("::", "http://[::1]:8765/"),
    ("::1", "http://[::1]:8765/"),
    ("voice.example", "http://voice.example:8765/"),
])
def test_page_url(host: str, url: str):
    assert page_url(host, 8765) == url


def test_an_open_server_names_its_page_and_stream_and_no_keys(server):
    lines = startup_lines(server.runtime.settings, server.runtime.auth)
    assert lines == [f"browser page: http://127.0.0.1:{server.port}/",
                     f"websocket: ws://127.0.0.1:{server.port}/v1/stream"]


def test_a_keyed_server_says_keys_are_now_required_and_how_to_send_one(make_server):
    keyed = make_server(api_keys=("static-key-for-tests",))
    lines = startup_lines(keyed.runtime.settings, keyed.runtime.auth)
    assert lines[0] == f"browser page: http://127.0.0.1:{keyed.port}/"
    assert lines[2].startswith("API keys are now required, --api-key / VOICEWIRE_API_KEYS gave keys")
    assert "x-api-key" in lines[2] and "Authorization: Bearer" in lines[2] and "api_key query parameter" in lines[2]
    assert "static-key-for-tests" not in "\n".join(lines)
