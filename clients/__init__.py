"""Clients for voicewire: the async Python client, the `say` CLI and the browser page."""

from .client import (
    AudioEvent,
    CancelledEvent,
    ContextStream,
    DoneEvent,
    ErrorEvent,
    PhraseEvent,
    ProtocolError,
    ServerError,
    TurnResult,
    VoicewireClient,
    read_frame,
)
from .tokens import llm_deltas, paced

__all__ = [
    "AudioEvent", "CancelledEvent", "ContextStream", "DoneEvent", "ErrorEvent", "PhraseEvent", "ProtocolError",
    "ServerError", "TurnResult", "VoicewireClient", "llm_deltas", "paced", "read_frame",
]
