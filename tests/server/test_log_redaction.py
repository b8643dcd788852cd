"""What the log filter redacts (`stream/server/log_redaction.py`), record by record."""

from __future__ import annotations

import io
import logging
import logging.config

import pytest

from stream.server.log_redaction import Redactor, RedactSecrets, logging_config

KEY = "vw_" + "Ab1-_cD2" * 5 + "xyz"   # the shape `voicewire keys create` prints
redact = Redactor(known_secrets=("static-operator-key", "short"))


@pytest.mark.parametrize(("line", "expected"), [
    (f'GET /?api_key={KEY} HTTP/1.1" 200', 'GET /?api_key=*** HTTP/1.1" 200'),
    ("WebSocket /v1/stream?voice=joe&api_key=secret123&x=1", "WebSocket /v1/stream?voice=joe&api_key=***&x=1"),
    ("/healthz?api%5Fkey=secret123", "/healthz?api%5Fkey=***"),
    ("/clip.wav?X-Amz-Signature=abc123&X-Amz-Credential=AKIA/x", "/clip.wav?X-Amz-Signature=***&X-Amz-Credential=***"),
    ("/v1/voices?access_token=t0k3n", "/v1/voices?access_token=***"),
    ("/v1/voices?api_key=", "/v1/voices?api_key="),
    ("headers: [(b'x-api-key', b'secret123'), (b'host', b'x')]", "headers: [(b'x-api-key', b'***'), (b'host', b'x')]"),
    ('{"type": "init", "api_key": "secret123"}', '{"type": "init", "api_key": "***"}'),
    ("Authorization: Bearer secret12345", "Authorization: Bearer ***"),
    ("x-api-key: secret123", "x-api-key: ***"),
    ("postgresql://voicewire:pa55w0rd@db.internal:5432/voicewire", "postgresql://voicewire:***@db.internal:5432/voicewire"),
    (f"key {KEY} was refused", "key vw_*** was refused"),
    ("the operator's static-operator-key leaked", "the operator's *** leaked"),
])
def test_secrets_are_masked_and_the_line_keeps_its_shape(line: str, expected: str):
    assert redact(line) == expected


@pytest.mark.parametrize("line", [
    'GET /healthz?voice=joe HTTP/1.1" 200',
    "listening on ws://127.0.0.1:8765/v1/stream",
    "http://127.0.0.1:8765/?api_key=KEY",   # the placeholder the start-up line shows
    "a short word is not redacted",          # a static key under 8 characters is not searched for
    "key vw_AbC12... (listed prefix)",
    "Basic usage: voicewire serve",
])
def test_ordinary_lines_are_left_alone(line: str):
    expected = line.replace("api_key=KEY", "api_key=***")
    assert redact(line) == expected


def _emit(logger: str, msg: str, *args: object, exc: BaseException | None = None) -> tuple[str, str]:
    """Log through `voicewire serve`'s logging config; what reached stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    config = logging_config("info", ("static-operator-key",))
    config["handlers"]["server"]["stream"] = config["handlers"]["uvicorn"]["stream"] = err
    config["handlers"]["access"]["stream"] = out
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logging.config.dictConfig(config)
        logging.getLogger(logger).error(msg, *args, exc_info=(type(exc), exc, exc.__traceback__) if exc else None)
    finally:
        for name in ("uvicorn", "uvicorn.access"):
            logging.getLogger(name).handlers = []
        root.handlers, root.level = saved[0], saved[1]
    return out.getvalue(), err.getvalue()


def test_uvicorns_access_lines_are_redacted_and_still_formatted():
    out, _ = _emit("uvicorn.access", '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/?api_key={KEY}", "1.1", 200)
    assert KEY not in out and '127.0.0.1:5000 - "GET /?api_key=*** HTTP/1.1" 200 OK' in out


def test_websocket_lines_arguments_that_are_not_strings_and_tracebacks_are_redacted():
    class Url:
        def __str__(self) -> str:
            return f"ws://127.0.0.1/v1/stream?api_key={KEY}"

    try:
        raise ValueError(f"bad url http://u:static-operator-key@host/?api_key={KEY}")
    except ValueError as exc:
        _, err = _emit("voicewire.session", "refused %s (%r)", Url(), {"x-api-key": KEY}, exc=exc)
    assert KEY not in err and "static-operator-key" not in err
    assert "refused ws://127.0.0.1/v1/stream?api_key=***" in err and "ValueError: bad url http://u:***@host/" in err


def test_the_filter_is_on_every_handler_of_the_serve_config():
    config = logging_config("info")
    assert all(handler["filters"][0] == "redact" for handler in config["handlers"].values())
    assert config["filters"]["redact"]["()"] is RedactSecrets
