"""What the session asks its driver to do: typed actions, executed in the order they are returned.

The session decides; a driver (websocket, one-shot HTTP) only carries these out. Job actions are
executed at once (a stop must take effect before anything else happens); the others are delivered
in order on the session's outbound path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stream.core.errors import ProtocolError
from stream.core.server_messages import CancelledMessage, DoneMessage, ErrorMessage, PhraseMessage
from stream.core.synthesis import SynthesisRequest


@dataclass(frozen=True)
class StartJob:
    """Start synthesizing one phrase; its chunks come back as `Session.chunk(job_id, ...)`."""

    job_id: int
    request: SynthesisRequest
    priority: int            # 0: a context's first phrase (its TTFA waits on it); 1: later phrases
    deadline: float | None   # when the listener's queued audio runs out (None: no audio yet, first come first)


@dataclass(frozen=True)
class StopJob:
    job_id: int


@dataclass(frozen=True)
class SendMessage:
    message: PhraseMessage | CancelledMessage | ErrorMessage


@dataclass(frozen=True)
class SendAudio:
    """Audio for the client; `payload` is what the driver's `PhraseAudio` produced (bytes or samples)."""

    context_id: str
    seq: int
    payload: Any
    samples: int
    start_ms: float
    duration_ms: float


@dataclass(frozen=True)
class Complete:
    """A context finished speaking: send `message`, with the caller's usage added if metered."""

    message: DoneMessage


@dataclass(frozen=True)
class Refund:
    """Give back the credits taken for text that will never be spoken."""

    characters: int


@dataclass(frozen=True)
class Close:
    """End the session: send `error` (fatal), then close the socket with `code` or the error's close code;
    without an error, a normal close (1000 unless `code` says otherwise) with no error frame."""

    error: ProtocolError | None
    code: int | None = None


Action = StartJob | StopJob | SendMessage | SendAudio | Complete | Refund | Close
