"""Where a request's API key comes from: the same three forms on every endpoint, websocket included.

`x-api-key` is the hosted API's header, `Authorization: Bearer` is what OpenAI clients send, and
`?api_key=` is for browsers, which cannot set headers on a websocket or an `<audio>` request;
`xi-api-key` is what ElevenLabs clients send (the compat endpoints, docs/compat.md). Each
route reads the key here, so no endpoint accepts a form another refuses, and the 401 message names
the form the client actually used.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from stream.accounts.auth import Authenticator, Caller

QUERY_PARAMETER = "api_key"


class CredentialForm(enum.Enum):
    """How a key was sent; the value is how error messages and docs name that form."""

    X_API_KEY = "x-api-key"
    BEARER = "Authorization: Bearer"
    QUERY = "api_key query parameter"
    XI_API_KEY = "xi-api-key"


@dataclass(frozen=True)
class Credential:
    secret: str
    form: CredentialForm


def request_key(headers: Mapping[str, str], query_params: Mapping[str, str]) -> Credential | None:
    """The key of a request, or None when it sent none. Precedence: `x-api-key`, `xi-api-key`, then
    `Authorization: Bearer`, then `?api_key=` (a header is never in an access log line; a query is,
    redacted). `headers` must look names up case-insensitively, as Starlette's `Headers` does.
    An `Authorization` header with another scheme (Basic, ...) carries no key."""
    if (key := headers.get("x-api-key")) is not None:
        return Credential(key, CredentialForm.X_API_KEY)
    if (key := headers.get("xi-api-key")) is not None:
        return Credential(key, CredentialForm.XI_API_KEY)
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return Credential(token.strip(), CredentialForm.BEARER)
    if (key := query_params.get(QUERY_PARAMETER)) is not None:
        return Credential(key, CredentialForm.QUERY)
    return None


def authenticate(auth: Authenticator, credential: Credential | None) -> Caller | None:
    """`Authenticator.authenticate` for a request's credential: the caller (None when the server is
    open), or `Unauthorized` naming the form the key came in. Reads the key database: call it off
    the event loop."""
    if credential is None:
        return auth.authenticate(None)
    return auth.authenticate(credential.secret, credential.form.value)
