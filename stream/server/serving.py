"""How the app is put on a socket: uvicorn with the bounded HTTP and websocket protocols, and the
lines `voicewire serve` prints on start. The CLI and the test servers share `uvicorn_config`, so
every test runs the protocols production runs."""

from __future__ import annotations

import ipaddress
from typing import Any

import uvicorn
from fastapi import FastAPI

from stream.accounts.auth import Authenticator
from stream.server.http_limits import BoundedHttpProtocol
from stream.server.ws_protocol import WebSocketProtocol
from stream.settings import Settings

GRACEFUL_SHUTDOWN_S = 5


def uvicorn_config(app: FastAPI, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """uvicorn's config for `app`. Logging is left as the caller set it up (`log_config=None`):
    `voicewire serve` installs the redacting handlers first (`log_redaction.configure_logging`)."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": BoundedHttpProtocol.limited_to(settings.limits.max_http_header_bytes),
        "ws": WebSocketProtocol,
        "ws_max_size": settings.limits.max_frame_bytes * 2,
        "log_config": None,
        "log_level": settings.log_level,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
    }
    return uvicorn.Config(app, **(options | overrides))


def page_url(host: str, port: int) -> str:
    """The browser page's URL; a wildcard bind address is shown as loopback, which a browser can open."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"http://{host}:{port}/"
    if address.is_unspecified:
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    return f"http://[{address}]:{port}/" if address.version == 6 else f"http://{address}:{port}/"


def startup_lines(settings: Settings, auth: Authenticator) -> list[str]:
    """What `voicewire serve` tells its operator once it listens: where the page and the stream are,
    and whether clients need a key. Creating a key in the database turns auth on without a flag,
    so the server says so rather than leaving clients to discover it through 401s."""
    url = page_url(settings.host, settings.port)
    lines = [f"browser page: {url}", f"websocket: ws{url[4:]}v1/stream"]
    if auth.required:
        why = ("--api-key / VOICEWIRE_API_KEYS gave keys" if settings.api_keys
               else "the key database holds keys (`voicewire keys list`)")
        lines.append(f"API keys are now required, {why}: clients send one as the x-api-key header, as "
                     f"Authorization: Bearer or as the api_key query parameter (the page takes it in its key field)")
    return lines
