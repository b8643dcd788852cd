"""Secrets never reach a log line: one filter on every handler the server logs through.

Browsers can only send an API key in the URL (`?api_key=`), and uvicorn logs every URL with its
query string (the access log for HTTP, its error logger for websocket upgrades). Rather than
chase each place that might log a URL or a header, every record is redacted once, by the filter
that `configure_logging` installs on each handler (access log included), so a new log call cannot
leak by forgetting to. A redacted line keeps its shape: `GET /?api_key=*** HTTP/1.1" 200`.

Redacted: query parameters whose name says credential (`api_key`, `token`, `secret`,
`password`, `signature`, ...; the name also when percent-encoded), `name: value` / `"name": "value"`
pairs for such names (headers, JSON), `Bearer`/`Basic` credentials (8 characters or more), the password of a URL
(`postgresql://user:***@host/db`), anything shaped like a voicewire key (`vw_` + 43 characters),
and the static keys given at start wherever they appear (those of 8 characters or more: a shorter
one would blank ordinary words).
"""

from __future__ import annotations

import logging
import logging.config
import re
from collections.abc import Iterable
from urllib.parse import unquote_plus

from uvicorn.config import LOG_LEVELS

from stream.server.replica import ReplicaField

MASK = "***"
MIN_LITERAL_CHARS = 8

_CREDENTIAL_NAME = re.compile(r"key|token|secret|passw|signature|^sig$|auth|credential", re.IGNORECASE)
_QUERY_PAIR = re.compile(r"(?P<sep>[?&;])(?P<name>[^=&#?;\s\"'<>]+)=(?P<value>[^&#;\s\"'<>]*)")
_NAMED_VALUE = re.compile(
    r"""(?P<name>["']?\b(?:x-api-key|api[_-]?key|access[_-]?token|refresh[_-]?token|password|secret)["']?"""
    r"""\s*[:=,]\s*b?["']?)(?P<value>[^\s"',;)&]+)""",
    re.IGNORECASE,
)
_SCHEME_CREDENTIAL = re.compile(r"\b(?P<scheme>Bearer|Basic)\s+(?P<value>[A-Za-z0-9._~+/=-]{8,})", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s/:@]*):(?P<value>[^\s/@]*)@", re.IGNORECASE)
_VOICEWIRE_KEY = re.compile(r"\bvw_[A-Za-z0-9_-]{20,}")


def _mask_query_pair(match: re.Match[str]) -> str:
    if not _CREDENTIAL_NAME.search(unquote_plus(match["name"])) or not match["value"]:
        return match[0]
    return f"{match['sep']}{match['name']}={MASK}"


class Redactor:
    """Replaces every secret in a text by `***`; see the module docstring for what counts."""

    def __init__(self, known_secrets: Iterable[str] = ()) -> None:
        literals = sorted({s for s in known_secrets if len(s) >= MIN_LITERAL_CHARS}, key=len, reverse=True)
        self._literal = re.compile("|".join(map(re.escape, literals))) if literals else None

    def __call__(self, text: str) -> str:
        if self._literal is not None:
            text = self._literal.sub(MASK, text)
        text = _URL_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", text)
        text = _QUERY_PAIR.sub(_mask_query_pair, text)
        text = _NAMED_VALUE.sub(lambda m: m["name"] + MASK, text)
        text = _SCHEME_CREDENTIAL.sub(lambda m: f"{m['scheme']} {MASK}", text)
        return _VOICEWIRE_KEY.sub("vw_" + MASK, text)


class RedactSecrets(logging.Filter):
    """A handler filter that redacts a record's message, arguments, traceback and stack in place.

    String arguments are redacted one by one, so formatters that read `record.args` (uvicorn's
    access formatter unpacks them) keep working; a record whose other arguments still render a
    secret is flattened to its redacted message."""

    def __init__(self, known_secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.redact = Redactor(known_secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self.redact(record.msg)
        if isinstance(record.args, dict):
            record.args = {k: self.redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        elif record.args:
            record.args = tuple(self.redact(a) if isinstance(a, str) else a for a in record.args)
        message = record.getMessage()
        if (redacted := self.redact(message)) != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def logging_config(level: str, known_secrets: Iterable[str] = (), replica: str = "") -> dict:
    """The `logging.config.dictConfig` of `voicewire serve`: the server's own records on stderr,
    uvicorn's (access log on stdout, as uvicorn prints it by default), every handler redacting and
    every line naming the replica (`stream.server.replica`)."""
    redact = {"()": RedactSecrets, "known_secrets": tuple(known_secrets)}
    named = {"()": ReplicaField, "replica": replica}
    threshold = LOG_LEVELS.get(level.lower(), level.upper())   # uvicorn's names, `trace` included
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": redact, "replica": named},
        "formatters": {
            "server": {"format": "%(asctime)s %(levelname)s [%(replica)s] %(name)s: %(message)s"},
            "uvicorn": {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s [%(replica)s] %(message)s"},
            "access": {"()": "uvicorn.logging.AccessFormatter",
                       "fmt": '%(levelprefix)s [%(replica)s] %(client_addr)s - "%(request_line)s" %(status_code)s'},
        },
        "handlers": {
            "server": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                       "formatter": "server", "filters": ["redact", "replica"]},
            "uvicorn": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                        "formatter": "uvicorn", "filters": ["redact", "replica"]},
            "access": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout",
                       "formatter": "access", "filters": ["redact", "replica"]},
        },
        "root": {"level": threshold, "handlers": ["server"]},
        "loggers": {
            "uvicorn": {"level": threshold, "handlers": ["uvicorn"], "propagate": False},
            "uvicorn.access": {"level": threshold, "handlers": ["access"], "propagate": False},
        },
    }


def configure_logging(level: str, known_secrets: Iterable[str] = (), replica: str = "") -> None:
    """Install `logging_config`; pass uvicorn `log_config=None` afterwards so it keeps this one."""
    logging.config.dictConfig(logging_config(level, known_secrets, replica))
