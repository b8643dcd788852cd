"""Request bodies sent with `Content-Encoding`: gzip is decoded, within the body cap; others are refused.

A gzip body parsed as if it were plain is an `invalid_json` that tells the client nothing, and a
body decoded without a bound is a zip bomb (a few hundred KiB expand to gigabytes). Here the
decoded size counts against `max_http_body_bytes` as it is produced, with zlib's `max_length`,
so no more than the cap plus one chunk is ever held: over it is `413 body_too_large`. Any other
coding (`br`, `deflate`, `zstd`, stacked codings) is `415 bad_encoding`, as is gzip data that is
corrupt or ends early.
"""

from __future__ import annotations

import zlib

from stream.core.errors import BadEncoding, BodyTooLarge

GZIP_WBITS = zlib.MAX_WBITS | 16   # a gzip header and trailer around the deflate data
ACCEPTED = "gzip, identity"        # the server's `Accept-Encoding` for requests, sent with a 415


def is_gzip(content_encoding: str | None) -> bool:
    """Whether a body must be gunzipped: False for none or `identity`, True for `gzip` (or `x-gzip`),
    `BadEncoding` for anything else."""
    coding = (content_encoding or "identity").strip().lower()
    if coding == "identity":
        return False
    if coding in ("gzip", "x-gzip"):
        return True
    raise BadEncoding(f"content-encoding: {coding!r} is not accepted; send the body as gzip or unencoded")


class BoundedGunzip:
    """Decodes a gzip body chunk by chunk and refuses it once it decodes to more than `limit` bytes."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._left = limit
        self._inflate = zlib.decompressobj(GZIP_WBITS)

    def feed(self, data: bytes) -> bytes:
        parts: list[bytes] = []
        try:
            while data:
                if self._inflate.eof:   # gzip allows several members one after another
                    self._inflate = zlib.decompressobj(GZIP_WBITS)
                out = self._inflate.decompress(data, self._left + 1)
                if len(out) > self._left:
                    raise BodyTooLarge(f"body: decodes (gzip) to over the {self._limit}-byte limit")
                self._left -= len(out)
                parts.append(out)
                data = self._inflate.unused_data if self._inflate.eof else b""
        except zlib.error as exc:
            raise BadEncoding(f"body: not valid gzip data ({exc})") from None
        return b"".join(parts)

    def finish(self) -> None:
        """The body ended: it must have ended with a complete gzip member."""
        if not self._inflate.eof:
            raise BadEncoding("body: the gzip data ends early")
