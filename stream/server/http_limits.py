"""uvicorn's httptools protocol with bounded request heads: every HTTP request, upgrades included.

httptools (llhttp) sets no limit on a request line or headers, and uvicorn adds none: 20 MB of
headers on `GET /healthz` were read, kept and answered `200`. Here a request line over 8 KiB is
answered `414`, a header line over 8 KiB, more than 128 headers or a head (request line and
headers) over `max_http_header_bytes` `431`, and the connection is closed. The per-line and count
caps are those of the websockets handshake parser, so an upgrade and a plain request are held to
the same rules (and `ws_protocol` still applies them to upgrades).

llhttp buffers a header it has not seen the end of, so the head is measured twice: exactly, from
the parser callbacks, and by the bytes of every read that ends with the head still incomplete,
which bounds what a header sent slowly or without an end can hold. A read is counted whole, so
with pipelined requests the tail of a previous body in the read that starts a head counts too.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from websockets.http11 import MAX_LINE_LENGTH, MAX_NUM_HEADERS

DEFAULT_MAX_HEAD_BYTES = 64 * 1024


class HeadTooLarge(Exception):
    """Raised from a parser callback; httptools re-raises it as the `__context__` of its error."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class BoundedHttpProtocol(HttpToolsProtocol):
    """Pass as `uvicorn.Config(http=BoundedHttpProtocol.limited_to(n))`; after a head within the
    limits, everything is uvicorn's."""

    max_head_bytes: ClassVar[int] = DEFAULT_MAX_HEAD_BYTES

    @classmethod
    def limited_to(cls, max_head_bytes: int) -> type[BoundedHttpProtocol]:
        return type(cls.__name__, (cls,), {"max_head_bytes": max_head_bytes})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = False
        self._head_bytes = 0      # exact: request target and complete headers seen by the callbacks
        self._read_bytes = 0      # reads that ended inside the head
        self._header_count = 0

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, HeadTooLarge):
                self._refuse(exc.__context__)
            else:
                self._invalid()
        except httptools.HttpParserError:
            self._invalid()
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        else:
            if self._in_head:
                self._read_bytes += len(data)
                if self._read_bytes > self.max_head_bytes:
                    self._refuse(self._head_over_limit())

    def _invalid(self) -> None:
        msg = "Invalid HTTP request received."
        self.logger.warning(msg)
        self.send_400_response(msg)

    def _head_over_limit(self) -> HeadTooLarge:
        return HeadTooLarge(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                            f"request headers over {self.max_head_bytes} bytes")

    def _refuse(self, error: HeadTooLarge) -> None:
        client = "{}:{}".format(*self.client) if self.client else "-"
        self.logger.warning("%s - request refused with %d: %s", client, error.status, error.reason)
        if self.cycle is None or self.cycle.response_complete:  # never inside another response's bytes
            body = f"{error.status.phrase}: {error.reason}\n".encode()
            self.transport.write(b"".join([
                STATUS_LINE[error.status],
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: %d\r\n" % len(body),
                b"connection: close\r\n\r\n",
                body,
            ]))
        self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = self._read_bytes = self._header_count = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_LINE_LENGTH:
            raise HeadTooLarge(HTTPStatus.REQUEST_URI_TOO_LONG, f"request target over {MAX_LINE_LENGTH} bytes")
        self._head_bytes += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        line = len(name) + len(value) + 4   # "name: value\r\n"
        self._header_count += 1
        self._head_bytes += line
        if line > MAX_LINE_LENGTH:
            raise HeadTooLarge(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, f"a header line over {MAX_LINE_LENGTH} bytes")
        if self._header_count > MAX_NUM_HEADERS:
            raise HeadTooLarge(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, f"more than {MAX_NUM_HEADERS} headers")
        if self._head_bytes > self.max_head_bytes:
            raise self._head_over_limit()
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()
