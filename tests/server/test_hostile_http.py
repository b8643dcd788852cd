"""The hostile-input corpus over the HTTP API: each request gets its documented status and error
code, and the server still answers a normal synthesis request right afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from stream.settings import Limits, Settings
from tests.conftest import ServerHandle, start_server
from tests.hostile_corpus import HTTP_CASES, HttpCase


@pytest.fixture(scope="module")
def server(piper_engine, tmp_path_factory) -> Iterator[ServerHandle]:
    settings = Settings(port=0, data_dir=str(tmp_path_factory.mktemp("data")), limits=Limits(max_http_body_bytes=100_000))
    handle = start_server(piper_engine, settings)
    yield handle
    handle.stop()


def error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    if body.get("type") == "error":
        return body.get("code")
    return (body.get("error") or {}).get("code") if isinstance(body.get("error"), dict) else None


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in HTTP_CASES])
async def test_http_hostile_request(server: ServerHandle, case: HttpCase):
    async with httpx.AsyncClient(base_url=server.http_url, timeout=60) as client:
        response = await client.request(case.method, case.path, content=case.body, headers=dict(case.headers))
        assert response.status_code == case.status, response.text[:300]
        if case.code is not None:
            assert error_code(response) == case.code, response.text[:300]
        normal = await client.post("/v1/chatterbox-tts", json={"text": "Ok.", "output_format": "pcm"})
        assert normal.status_code == 200 and len(normal.content) > 1000
