"""Wire messages of protocol v1 as typed models, and the one parser that turns a frame into one.

Every rule a client can break is expressed here (types, ranges, required fields), so a bad frame
becomes exactly one `InvalidJson`, `InvalidMessage` or `OutOfRange` naming the field and the rule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from stream.core.errors import InvalidJson, InvalidMessage, OutOfRange

ENCODINGS = ("pcm_s16le", "pcm_f32le", "mulaw", "alaw")
SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
MAX_JSON_DEPTH = 16

ContextId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class GenerationSettings(_Strict):
    """Per-turn controls; ranges are those of the hosted Chatterbox API."""

    exaggeration: float = Field(0.5, ge=0, le=2)
    temperature: float = Field(0.8, ge=0, le=2)
    cfg_weight: float = Field(0.5, ge=0, le=2)
    min_p: float = Field(0.05, ge=0, le=1)
    top_p: float = Field(1.0, ge=0, le=1)
    repetition_penalty: float = Field(1.2, ge=1, le=2)
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    language: str | None = Field(None, min_length=2, max_length=8, pattern=r"^[a-zA-Z-]+$")
    speed: float = Field(1.0, ge=0.25, le=4.0)


class InlineVoice(_Strict):
    """A voice cloned from a clip sent with the message (base64 or a data: URI)."""

    reference_audio: str = Field(min_length=1)


VoiceSpec = Annotated[str, Field(min_length=1, max_length=128)] | InlineVoice


class OutputFormat(_Strict):
    encoding: Literal["pcm_s16le", "pcm_f32le", "mulaw", "alaw"] = "pcm_s16le"
    sample_rate: Literal[8000, 16000, 22050, 24000, 44100, 48000] | None = None


class InitMessage(_Strict):
    type: Literal["init"]
    voice: VoiceSpec | None = None
    output_format: OutputFormat | None = None
    generation: GenerationSettings | None = None


class TextMessage(_Strict):
    type: Literal["text"]
    context_id: ContextId
    text: str
    voice: VoiceSpec | None = None
    generation: GenerationSettings | None = None

    @field_validator("text")
    @classmethod
    def _scalar_values_only(cls, value: str) -> str:
        """A JSON escape like \\ud800 decodes to a lone surrogate, which no engine or UTF-8 frame can carry."""
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("contains an unpaired surrogate escape; text must be valid Unicode") from None
        return value


class FlushMessage(_Strict):
    type: Literal["flush"]
    context_id: ContextId


class EndMessage(_Strict):
    type: Literal["end"]
    context_id: ContextId


class CancelMessage(_Strict):
    type: Literal["cancel"]
    context_id: ContextId


class KeepaliveMessage(_Strict):
    type: Literal["keepalive"]


ClientMessage = InitMessage | TextMessage | FlushMessage | EndMessage | CancelMessage | KeepaliveMessage
CLIENT_TYPES: dict[str, type[BaseModel]] = {
    "init": InitMessage,
    "text": TextMessage,
    "flush": FlushMessage,
    "end": EndMessage,
    "cancel": CancelMessage,
    "keepalive": KeepaliveMessage,
}
_ADAPTERS = {name: TypeAdapter(model) for name, model in CLIENT_TYPES.items()}

_RANGE_ERRORS = {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}


def _reject_constant(name: str) -> Any:
    raise InvalidJson(f"invalid JSON: {name} is not allowed (use a finite number)")


def _depth(value: Any, limit: int) -> int:
    """Nesting depth, stopping early once past `limit` so hostile input costs little."""
    stack = [(value, 1)]
    deepest = 0
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return deepest


def _field_path(loc: tuple) -> str:
    parts = [str(p) for p in loc if not (isinstance(p, str) and p in ("str", "InlineVoice"))]
    return ".".join(parts) or "message"


def describe_error(err: Mapping[str, Any], field: str,
                   context_id: str | None = None) -> InvalidMessage | OutOfRange:
    """One pydantic error (as `errors()` lists it) as the protocol error naming `field` and the rule
    it broke; the websocket and the HTTP API word their errors alike through this one place."""
    kind = err.get("type", "")
    if kind in _RANGE_ERRORS:
        bound = next(iter(err.get("ctx", {}).values()), None)
        return OutOfRange(f"{field}: {err['msg'].lower()} (got {err.get('input')!r}, limit {bound})",
                          context_id=context_id)
    if kind == "extra_forbidden":
        return InvalidMessage(f"{field}: unknown field", context_id=context_id)
    if kind == "missing":
        return InvalidMessage(f"{field}: field required", context_id=context_id)
    return InvalidMessage(f"{field}: {err.get('msg')}", context_id=context_id)


def describe_validation_error(exc: ValidationError, context_id: str | None) -> InvalidMessage | OutOfRange:
    """The first pydantic error as the protocol error that names its field and rule."""
    err = exc.errors(include_url=False)[0]
    return describe_error(err, _field_path(tuple(err["loc"])), context_id)


def parse_client_message(frame: str | bytes) -> ClientMessage:
    """Parse one websocket frame into a client message, or raise the protocol error for it."""
    if isinstance(frame, bytes):
        raise InvalidMessage("message: binary frames are not accepted; send JSON text frames")
    try:
        data = json.loads(frame, parse_constant=_reject_constant)
    except InvalidJson:
        raise
    except (ValueError, RecursionError) as exc:
        raise InvalidJson(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidMessage(f"message: must be a JSON object, got {type(data).__name__}")
    if _depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise InvalidMessage(f"message: nested deeper than {MAX_JSON_DEPTH} levels")
    kind = data.get("type")
    context_id = data.get("context_id") if isinstance(data.get("context_id"), str) else None
    if kind is None:
        raise InvalidMessage("type: field required", context_id=context_id)
    if not isinstance(kind, str) or kind not in _ADAPTERS:
        raise InvalidMessage(
            f"type: must be one of {', '.join(CLIENT_TYPES)} (got {str(kind)[:40]!r})", context_id=context_id
        )
    try:
        return _ADAPTERS[kind].validate_python(data, strict=True)  # a JSON `true` is no seed, "0.5" no number
    except ValidationError as exc:
        raise describe_validation_error(exc, context_id) from None
