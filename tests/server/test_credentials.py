"""One API key, three forms, every endpoint (`stream/server/credentials.py`); the 401 body as documented."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from starlette.datastructures import Headers, QueryParams

from stream.server.credentials import Credential, CredentialForm, request_key
from tests.wire import RawPeer

KEY = "static-key-for-tests"
WRONG = "static-key-but-wrong"
DOCS = Path(__file__).parents[2] / "docs"


def forms(secret: str) -> dict[CredentialForm, tuple[dict[str, str], dict[str, str]]]:
    """Headers and query parameters that send `secret` in each form."""
    return {
        CredentialForm.X_API_KEY: ({"x-api-key": secret}, {}),
        CredentialForm.BEARER: ({"authorization": f"Bearer {secret}"}, {}),
        CredentialForm.QUERY: ({}, {"api_key": secret}),
        CredentialForm.XI_API_KEY: ({"xi-api-key": secret}, {}),
    }


@pytest.mark.parametrize("form", list(CredentialForm))
def test_request_key_says_which_form_the_key_came_in(form: CredentialForm):
    headers, query = forms(KEY)[form]
    assert request_key(Headers(headers), QueryParams(query)) == Credential(KEY, form)


def test_request_key_precedence_and_what_carries_no_key():
    every = Headers({"X-API-Key": "a", "Authorization": "bearer  b "})
    assert request_key(every, QueryParams("api_key=c")) == Credential("a", CredentialForm.X_API_KEY)
    assert request_key(Headers({"Authorization": "bearer  b "}), QueryParams("api_key=c")) == Credential(
        "b", CredentialForm.BEARER)
    assert request_key(Headers({"Authorization": "Basic dXNlcjpwYXNz"}), QueryParams("voice=joe")) is None
    assert request_key(Headers({}), QueryParams("api_key=")) == Credential("", CredentialForm.QUERY)


@pytest.fixture
def keyed(make_server):
    return make_server(api_keys=(KEY,))


# (method, path, body): a body the endpoint refuses with 422 once the caller is let in, so no audio is made.
HTTP_ENDPOINTS = [
    ("GET", "/v1/voices", None),
    ("POST", "/v1/voices", {"bogus": 1}),
    ("POST", "/v1/audio/speech", {"input": "Hi."}),
    ("POST", "/v1/chatterbox-tts", {"bogus": 1}),
]


@pytest.mark.parametrize("form", list(CredentialForm))
@pytest.mark.parametrize(("method", "path", "body"), HTTP_ENDPOINTS)
def test_every_http_endpoint_takes_the_key_in_every_form(keyed, form, method, path, body):
    headers, query = forms(KEY)[form]
    good = httpx.request(method, keyed.http_url + path, json=body, headers=headers, params=query, timeout=30)
    assert good.status_code == (200 if method == "GET" else 422), good.text
    headers, query = forms(WRONG)[form]
    wrong = httpx.request(method, keyed.http_url + path, json=body, headers=headers, params=query, timeout=30)
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert f"{form.value}: invalid or revoked API key" in wrong.text   # names the form that was sent
    assert WRONG not in wrong.text


def test_a_request_without_a_key_is_told_every_form(keyed):
    refused = httpx.get(keyed.http_url + "/v1/voices")
    message = refused.json()["message"]
    assert refused.status_code == 401
    assert all(form in message for form in ("x-api-key", "Authorization: Bearer", "api_key query parameter"))


@pytest.mark.parametrize("form", list(CredentialForm))
async def test_the_websocket_takes_the_key_in_every_form(keyed, form):
    headers, query = forms(KEY)[form]
    url = keyed.ws_url + ("?" + str(QueryParams(query)) if query else "")
    peer, ready = await RawPeer.open(url, additional_headers=headers)
    assert ready["type"] == "ready"
    await peer.close()


@pytest.mark.parametrize("form", list(CredentialForm))
async def test_the_websocket_refusal_names_the_form(keyed, form):
    headers, query = forms(WRONG)[form]
    url = keyed.ws_url + ("?" + str(QueryParams(query)) if query else "")
    peer, error = await RawPeer.open(url, additional_headers=headers)
    assert error["code"] == "unauthorized" and error["message"] == f"{form.value}: invalid or revoked API key"
    await peer.close()


def documented_error_bodies(doc: str) -> list[dict]:
    """The HTTP error bodies a doc shows as JSON examples: `{"type": "error", ...}` that parse as JSON."""
    bodies = []
    for example in re.findall(r'\{"type": "error"[^{}]*\}', (DOCS / doc).read_text()):
        try:
            bodies.append(json.loads(example))
        except json.JSONDecodeError:   # a shape written as a list of keys, not an example
            continue
    return bodies


@pytest.mark.parametrize("doc", ["http-api.md", "voices.md"])
def test_the_401_body_is_the_documented_error_shape(keyed, doc):
    """Both the 401 example of the docs and the served one: same keys, same `fatal`."""
    [documented] = [body for body in documented_error_bodies(doc) if body["code"] == "unauthorized"]
    served = httpx.get(keyed.http_url + "/v1/voices", headers={"authorization": f"Bearer {WRONG}"}).json()
    assert served.keys() == documented.keys()
    assert served["fatal"] is documented["fatal"]
    assert served["message"] == documented["message"]
