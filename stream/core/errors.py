"""Protocol errors: one exception type per wire error code, converted to the wire in one place.

Raising a typed error anywhere in the core keeps the shell free of error-code string literals;
`ProtocolError.to_message()` is the only place an error becomes an `error` frame.
"""

from __future__ import annotations

from typing import ClassVar

from stream.core.server_messages import ErrorMessage


class ProtocolError(Exception):
    """Base of every error the server reports to a client."""

    code: ClassVar[str] = "internal"
    fatal: ClassVar[bool] = False
    close_code: ClassVar[int | None] = None
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, *, context_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.context_id = context_id

    def to_wire(self) -> ErrorMessage:
        return ErrorMessage(code=self.code, message=self.message, fatal=self.fatal, context_id=self.context_id)

    def to_message(self) -> dict:
        """The `error` frame as JSON data (the HTTP API's error body)."""
        return self.to_wire().model_dump(mode="json", exclude_none=True)


class InvalidJson(ProtocolError):
    code = "invalid_json"
    http_status = 400


class InvalidMessage(ProtocolError):
    code = "invalid_message"
    http_status = 422


class OutOfRange(ProtocolError):
    code = "out_of_range"
    http_status = 422


class UnknownContext(ProtocolError):
    code = "unknown_context"
    http_status = 404


class ContextClosed(ProtocolError):
    code = "context_closed"
    http_status = 409


class SettingsLocked(ProtocolError):
    code = "settings_locked"
    http_status = 409


class Unsupported(ProtocolError):
    code = "unsupported"
    http_status = 422


class VoiceNotFound(ProtocolError):
    code = "voice_not_found"
    http_status = 404


class BadAudio(ProtocolError):
    code = "bad_audio"
    http_status = 415


class TooManyContexts(ProtocolError):
    code = "too_many_contexts"
    http_status = 429


class TextTooLong(ProtocolError):
    code = "text_too_long"
    http_status = 413


class RateLimited(ProtocolError):
    code = "rate_limited"
    http_status = 429


class InsufficientCredits(ProtocolError):
    code = "insufficient_credits"
    http_status = 402


class InternalError(ProtocolError):
    code = "internal"
    http_status = 500


class Unauthorized(ProtocolError):
    code = "unauthorized"
    fatal = True
    close_code = 1008
    http_status = 401


class MessageTooLarge(ProtocolError):
    code = "message_too_large"
    fatal = True
    close_code = 1009
    http_status = 413


class IdleTimeout(ProtocolError):
    code = "idle_timeout"
    fatal = True
    close_code = 1000
    http_status = 408


class NotAcceptable(ProtocolError):
    """HTTP API: `Accept` names no format the server can produce."""

    code = "not_acceptable"
    http_status = 406


class BodyTooLarge(ProtocolError):
    """HTTP API: the request body is over `max_http_body_bytes`, declared or streamed."""

    code = "body_too_large"
    http_status = 413


class BadEncoding(ProtocolError):
    """HTTP API: a `Content-Encoding` other than gzip, or gzip data that does not decode."""

    code = "bad_encoding"
    http_status = 415


class ReferenceUrlRefused(ProtocolError):
    """HTTP API: a clip URL breaks a fetch rule or the fetch failed; the message says which and why."""

    code = "bad_reference_url"
    http_status = 422


class ReferenceTooLarge(ReferenceUrlRefused):
    """HTTP API: a fetched clip is over `max_reference_bytes` (a refused URL, so it is caught as one)."""

    code = "reference_too_large"
    http_status = 413


class ServerShuttingDown(ProtocolError):
    """Sent to open sessions when the server stops; the socket then closes with 1001."""

    code = "shutting_down"
    fatal = True
    close_code = 1001
    http_status = 503


class StorageUnavailableError(ProtocolError):
    """The database behind keys, credits and voices cannot be reached: nothing was charged or
    spoken; retry shortly (on a websocket the close is 1013, "try again later")."""

    code = "storage_unavailable"
    fatal = True
    close_code = 1013
    http_status = 503


ERROR_CODES: dict[str, type[ProtocolError]] = {
    cls.code: cls
    for cls in (
        InvalidJson, InvalidMessage, OutOfRange, UnknownContext, ContextClosed, SettingsLocked,
        Unsupported, VoiceNotFound, BadAudio, TooManyContexts, TextTooLong, RateLimited,
        InsufficientCredits, InternalError, Unauthorized, MessageTooLarge, IdleTimeout,
        ServerShuttingDown, NotAcceptable, BodyTooLarge, BadEncoding, ReferenceUrlRefused, ReferenceTooLarge,
        StorageUnavailableError,
    )
}
