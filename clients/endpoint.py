"""Which server the `say` and `chat` commands talk to, and one clear line when they cannot reach it.

Users paste what they have at hand: the page's address (`http://127.0.0.1:8765/`), `host:port`, or
the full websocket URL. All of them name the same stream. A failure to connect is a sentence that
says what to change, not a traceback: the commands are often a new user's first contact.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import ssl
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import websockets

from .client import ServerError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
STREAM_PATH = "/v1/stream"
URL_ENV = "VOICEWIRE_URL"
API_KEY_ENV = "VOICEWIRE_API_KEY"
# http(s) is what the server's page shows in the address bar; it names the same host and port
SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}


class EndpointError(ValueError):
    """A server address that names no voicewire stream (bad scheme, no host, flags that conflict)."""


# what a failed connect or a lost session can raise, and `describe_failure` turns into one line
CONNECTION_ERRORS = (OSError, asyncio.TimeoutError, websockets.WebSocketException, ServerError, EndpointError)


def stream_url(url: str) -> str:
    """The stream's websocket URL for a base or full URL: `http(s)` becomes `ws(s)`, a missing
    scheme means `ws`, and no path (or just `/v1`) means `/v1/stream`."""
    if "://" not in url:
        url = "ws://" + url
    parts = urlsplit(url)
    scheme = SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise EndpointError(f"{url}: the scheme must be ws://, wss://, http:// or https://")
    if not parts.hostname:
        raise EndpointError(f"{url}: no host in the URL")
    path = parts.path.rstrip("/")
    if path in ("", "/v1"):
        path = STREAM_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def shown(url: str) -> str:
    """The URL for messages, with any `api_key` in its query masked: error lines end up in logs."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [(k, "***" if k == "api_key" else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """`--url` or `--host`/`--port`, and `--api-key`, with their environment variables."""
    parser.add_argument("--url", help=f"server URL: ws://HOST:PORT{STREAM_PATH}, or a base URL such as "
                                      f"http://HOST:PORT (env {URL_ENV}; default "
                                      f"ws://{DEFAULT_HOST}:{DEFAULT_PORT}{STREAM_PATH})")
    parser.add_argument("--host", help=f"server host, instead of --url (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, help=f"server port, instead of --url (default {DEFAULT_PORT})")
    parser.add_argument("--api-key", default=os.environ.get(API_KEY_ENV),
                        help=f"API key, when the server requires one (env {API_KEY_ENV})")


def resolve(args: argparse.Namespace, environ: dict[str, str] | None = None) -> str:
    """The stream URL from the flags, else `VOICEWIRE_URL`, else the local default server."""
    env = os.environ if environ is None else environ
    if args.url and (args.host or args.port):
        raise EndpointError("give either --url or --host/--port, not both")
    if args.url:
        return stream_url(args.url)
    if args.host or args.port:
        return stream_url(f"{args.host or DEFAULT_HOST}:{args.port or DEFAULT_PORT}")
    return stream_url(env.get(URL_ENV) or f"{DEFAULT_HOST}:{DEFAULT_PORT}")


def describe_failure(exc: BaseException, url: str) -> str:
    """One line: what went wrong talking to the server at `url`, and what to do about it."""
    where = shown(url)
    parts = urlsplit(url)
    if isinstance(exc, EndpointError):
        return str(exc)
    if isinstance(exc, ServerError):
        if exc.code == "unauthorized":
            return (f"{where} refused the API key ({exc.event.message}); pass a valid key with "
                    f"--api-key KEY or {API_KEY_ENV}")
        if exc.code == "connection_closed":
            return f"{where} closed the connection before the turn finished"
        return f"server error {exc.code}: {exc.event.message}"
    if isinstance(exc, websockets.InvalidStatus):
        status = exc.response.status_code
        if status in (401, 403) and parts.path != STREAM_PATH:
            return (f"{where} answered HTTP {status}: no voicewire stream at {parts.path or '/'}; "
                    f"the stream is at {STREAM_PATH}")
        if status == 401:
            return f"{where} answered HTTP 401: pass a valid key with --api-key KEY or {API_KEY_ENV}"
        return f"{where} refused the websocket with HTTP {status}"
    if isinstance(exc, websockets.InvalidURI):
        return f"{where} is not a websocket URL ({exc.msg})"
    if isinstance(exc, websockets.ConnectionClosed):
        frame = exc.rcvd
        why = f"code {frame.code}{': ' + frame.reason if frame.reason else ''}" if frame else "no close frame"
        return f"{where} closed the connection ({why})"
    if isinstance(exc, websockets.InvalidHandshake):
        return f"{where} did not answer as a websocket server ({exc}); is it a voicewire server?"
    if isinstance(exc, ssl.SSLError):
        return f"TLS to {where} failed ({exc.reason or exc}); a server without TLS needs ws:// or http://"
    if isinstance(exc, ConnectionRefusedError):
        return f"cannot reach {where}: connection refused; is `voicewire serve` running on {parts.netloc}?"
    if isinstance(exc, socket.gaierror):
        return f"cannot reach {where}: host {parts.hostname!r} not found"
    if isinstance(exc, asyncio.TimeoutError):
        return f"cannot reach {where}: no answer in time"
    if isinstance(exc, OSError):
        return f"cannot reach {where}: {exc.strerror or exc}"
    return f"{where}: {exc}"
