"""uvicorn's websockets-sansio protocol, except that an upgrade request it cannot parse is refused.

When the websockets handshake parser gives up on a request (a header line over 8 KiB, too many
headers, a malformed request), uvicorn's protocol neither writes the refusal websockets prepared
nor closes: the client waits for an answer that never comes and the connection stays open. Here
the request gets an HTTP 4xx (431 for oversized headers, 414 for an oversized request line, else
400) and the connection is closed.
"""

from __future__ import annotations

from http import HTTPStatus

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import SecurityError


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """Pass as `uvicorn.Config(ws=...)`; everything after a parsed handshake request is uvicorn's."""

    def data_received(self, data: bytes) -> None:
        if self.handshake_initiated:
            super().data_received(data)
            return
        if self.transport.is_closing():
            return
        self.conn.receive_data(data)
        failure = self.conn.handshake_exc or self.conn.parser_exc
        if failure is None:
            self.handle_events()
        else:
            self._refuse(failure)

    def _refuse(self, failure: Exception) -> None:
        # Recent websockets queue a 431/414 refusal for oversized lines; for the rest only an EOF.
        response = b"".join(self.conn.data_to_send())
        if not response.startswith(b"HTTP/"):
            too_large = isinstance(failure, SecurityError) or isinstance(failure.__cause__, SecurityError)
            status = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE if too_large else HTTPStatus.BAD_REQUEST
            text = f"Failed to open a WebSocket connection: {status.phrase}.\n"
            response = self.conn.reject(status, text).serialize()
        client = "{}:{}".format(*self.client) if self.client else "-"
        self.logger.info("%s - WebSocket handshake refused: %s", client, failure)
        self.handshake_complete = self.close_sent = True  # nothing more to send, also on shutdown
        self.transport.write(response)
        self.transport.close()
