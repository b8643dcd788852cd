"""Server → client wire messages of protocol v1 as typed models, shared by the server, the Python
client and the adapters, so nobody builds or parses these frames as dicts of unknown shape.

Models are lenient on input (`extra="ignore"`): a newer server may add fields, and an older client
must still read the frames it knows. The server serializes them with `dump_message`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

PROTOCOL_VERSION = 1


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    absent_when_none: ClassVar[tuple[str, ...]] = ()   # optional fields left out of the frame when None


class OutputFormatInfo(_Wire):
    encoding: str
    sample_rate: int
    channels: int = 1


class ReadyMessage(_Wire):
    type: Literal["ready"] = "ready"
    protocol: int = PROTOCOL_VERSION
    session_id: str
    engine: str
    model: str
    output_format: OutputFormatInfo
    capabilities: dict[str, Any]
    limits: dict[str, Any]
    replica: str | None = None    # which server process answers (placement behind a load balancer)


class PhraseMessage(_Wire):
    type: Literal["phrase"] = "phrase"
    context_id: str
    index: int
    text: str
    start_ms: float


class AudioMessage(_Wire):
    type: Literal["audio"] = "audio"
    context_id: str
    seq: int
    audio: str                  # base64 of the encoded samples
    start_ms: float
    duration_ms: float


class Usage(_Wire):
    characters: int
    remaining_credits: int | None


class DoneMessage(_Wire):
    type: Literal["done"] = "done"
    context_id: str
    ttfa_ms: float | None
    audio_ms: float
    characters: int
    phrases: int
    usage: Usage | None = None
    absent_when_none: ClassVar[tuple[str, ...]] = ("usage",)   # ttfa_ms is null, not absent, without audio


class CancelledMessage(_Wire):
    type: Literal["cancelled"] = "cancelled"
    context_id: str
    audio_ms: float
    text_spoken: str
    text_remaining: str


class ErrorMessage(_Wire):
    type: Literal["error"] = "error"
    code: str
    message: str
    fatal: bool = False
    context_id: str | None = None
    absent_when_none: ClassVar[tuple[str, ...]] = ("context_id",)


ServerMessage = Annotated[
    ReadyMessage | PhraseMessage | AudioMessage | DoneMessage | CancelledMessage | ErrorMessage,
    Field(discriminator="type"),
]
_SERVER_MESSAGE: TypeAdapter[ServerMessage] = TypeAdapter(ServerMessage)


def parse_server_message(frame: str | bytes) -> ServerMessage:
    """Parse one server frame; raises pydantic's `ValidationError` (a `ValueError`) on a bad one."""
    return _SERVER_MESSAGE.validate_json(frame)


def dump_message(message: _Wire) -> str:
    """Serialize a server message compactly; NaN never leaves the server."""
    data = message.model_dump(mode="json")
    for name in message.absent_when_none:
        if data.get(name) is None:
            data.pop(name, None)
    return json.dumps(data, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
