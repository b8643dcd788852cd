"""A real HTTP server on loopback that serves reference clips (and misbehaves on request) for URL tests."""

from __future__ import annotations

import io
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import soundfile

from tests.chatterbox_checkpoint import speechlike_clip


def wav_bytes(seconds: float = 2.0, rate: int = 24_000) -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, speechlike_clip(seconds, rate), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


CLIP = wav_bytes()


class ClipServer:
    """Serves a clip with an ETag, redirects, oversize, slow and broken answers; counts every request."""

    def __init__(self, routes: dict[str, tuple[bytes, str]] | None = None) -> None:
        self.routes = dict(routes or {})  # extra paths: (body, content type)
        self.hits: Counter[str] = Counter()
        self.not_modified = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                if "Transfer-Encoding" not in (headers or {}):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the fetcher gave up first (timeout test)
                    pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                owner.hits[path] += 1
                if path in owner.routes:
                    body, content_type = owner.routes[path]
                    return self.send(200, body, {"Content-Type": content_type})
                if path == "/clip.wav":
                    if self.headers.get("If-None-Match") == '"v1"':
                        owner.not_modified += 1
                        return self.send(304, headers={"ETag": '"v1"'})
                    return self.send(200, CLIP, {"Content-Type": "audio/wav", "ETag": '"v1"'})
                if path.startswith("/hop/"):
                    left = int(path.rsplit("/", 1)[1])
                    target = "/clip.wav" if left == 0 else f"/hop/{left - 1}"
                    return self.send(302, headers={"Location": target})
                if path == "/to-ftp":
                    return self.send(301, headers={"Location": "ftp://example.com/clip.wav"})
                if path == "/big":
                    return self.send(200, b"\0" * 4096)
                if path == "/big-chunked":
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for _ in range(8):
                        self.wfile.write(b"200\r\n" + b"\0" * 512 + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                    return None
                if path == "/slow":
                    time.sleep(2.0)
                    return self.send(200, CLIP)
                if path == "/text":
                    return self.send(200, b"<html>not audio</html>", {"Content-Type": "text/html"})
                return self.send(404, b"no")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
