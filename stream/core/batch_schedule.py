"""The batching policy: which requests prefill, decode and flush in the next step of a batched engine.

Plain Python on an injected clock (every call takes `now`), so it is unit-tested on a fake clock
and a simulation drives exactly this code; the executor (`stream.engines.chatterbox.batching`)
only runs the plans it returns. Like vLLM's scheduler it never touches the model.

A request occupies `rows` rows of a fixed row budget (the KV pool: a request with CFG is 2 rows)
from admission until it is over. Its life: queued -> prefilling (its prefix, in chunks) ->
decoding (one token per step) -> draining (decoding is over, a final flush is pending) -> over.
Flushes (speech tokens -> audio) are separate work items the plan names alongside the decode.

Rules, each tested in `tests/core/test_batch_schedule.py`:

- admission: queued requests are admitted in rank order while their rows fit; the head of the
  queue is never overtaken by a smaller request behind it (that could starve it). A new request
  is refused (`Refused`) only when the queue's expected wait exceeds `max_queue_wait_s`.
- rank: lower `priority` first (0: a context's first phrase), aged by waiting time so that a
  constant stream of priority-0 requests cannot starve a priority-1 one; then earliest deadline,
  then arrival.
- chunked prefill: at most `prefill_chunk_tokens` prefix positions per step in all, so decoding
  rows are held up by at most one chunk per step.
- decode: every admitted, prefilled, unpaused request that still decodes takes part in every step.
- flush: a request's flush is due when its tokens reach its next chunk boundary (the request's own
  chunk sizes, never the batch's) or its decoding is over (final). Due flushes go earliest
  deadline first, a listener with no audio yet before one whose audio is playing, at most
  `max_flush_batch` per step. A due flush waiting without a deadline is aged the same way.
- pause stops a request's decode and flushes (it keeps its rows); resume continues it; cancel
  frees its rows at once (before the next plan).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "BatchRequest", "BatchScheduler", "Cancel", "Event", "Finished", "FlushDone", "FlushItem", "Pause",
    "PrefillChunk", "Refused", "RefusalReason", "Resume", "ScheduleConfig", "SetDeadline", "StepPlan",
    "Tokens",
]


@dataclass(frozen=True)
class ScheduleConfig:
    """The policy's knobs; `row_budget` is the KV pool's size in rows."""

    row_budget: int
    prefill_chunk_tokens: int = 256    # prefix positions prefilled per step, all requests together
    max_flush_batch: int = 8           # flushes per step
    max_queue_wait_s: float = 10.0     # a new request expected to wait longer is refused
    expected_service_s: float = 2.0    # a request's time in the batch before any has finished (then measured)
    aging_s: float = 1.0               # waiting this long gains one priority level
    undated_slack_s: float = 1.0       # a due flush without a deadline ranks as if due this much later

    def __post_init__(self) -> None:
        for name in ("row_budget", "prefill_chunk_tokens", "max_flush_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1 (got {getattr(self, name)})")
        for name in ("max_queue_wait_s", "expected_service_s", "aging_s", "undated_slack_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be positive (got {getattr(self, name)})")


@dataclass(frozen=True)
class BatchRequest:
    """What the policy needs to know of one request (it never sees text or audio).

    `first_chunk_tokens` and `max_chunk_tokens` are the request's chunk sizes (they double from the
    first up to the max); `lookahead_tokens` are tokens a non-final flush must leave undecoded (the
    S3Gen encoder looks ahead), so the first flush is due at `first_chunk_tokens + lookahead_tokens`.
    """

    id: int
    rows: int                          # 1, or 2 with CFG
    prefill_tokens: int                # prefix positions to prefill before the first decode
    priority: int                      # 0: a context's first phrase (its listener waits), 1: later
    deadline: float | None             # clock value by which the listener needs audio; None: no deadline
    first_chunk_tokens: int
    max_chunk_tokens: int | None = None  # None: every chunk is `first_chunk_tokens`
    lookahead_tokens: int = 0
    max_new_tokens: int | None = None  # the policy stops decoding after this many steps

    def __post_init__(self) -> None:
        for name in ("rows", "prefill_tokens", "first_chunk_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1 (got {getattr(self, name)})")
        if self.lookahead_tokens < 0:
            raise ValueError(f"lookahead_tokens: must not be negative (got {self.lookahead_tokens})")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens: must be at least 1 (got {self.max_new_tokens})")


# ----- events: what happened since the last plan ---------------------------------------------------

@dataclass(frozen=True)
class Cancel:
    """Stop the request: its rows are free before the next plan; nothing more is planned for it."""
    id: int


@dataclass(frozen=True)
class Pause:
    """Backpressure: plan neither decode nor flush for it until `Resume`; it keeps its rows."""
    id: int


@dataclass(frozen=True)
class Resume:
    id: int


@dataclass(frozen=True)
class SetDeadline:
    id: int
    deadline: float | None


@dataclass(frozen=True)
class Tokens:
    """`count` more speech tokens of the request were read back; `done`: its decoding is over (EOS)."""
    id: int
    count: int
    done: bool = False


@dataclass(frozen=True)
class FlushDone:
    """A planned flush ran and its audio reached the listener (a chunk's delivery, for deadlines)."""
    id: int


@dataclass(frozen=True)
class Finished:
    """The request ended outside the plan (an error): free its rows and forget it."""
    id: int


Event = Cancel | Pause | Resume | SetDeadline | Tokens | FlushDone | Finished


class RefusalReason(enum.Enum):
    QUEUE_WAIT = "queue_wait"          # the expected wait in the queue exceeds the bound
    TOO_LARGE = "too_large"            # the request needs more rows than the whole budget


@dataclass(frozen=True)
class Refused:
    """`submit` refused the request; `message` is fit for the client (`rate_limited`)."""
    id: int
    reason: RefusalReason
    message: str
    expected_wait_s: float


# ----- the plan: what to run in the next step ------------------------------------------------------

@dataclass(frozen=True)
class PrefillChunk:
    """Prefill positions [start, end) of the request's prefix; `start == 0` is its first chunk, and
    after the `last` one the request decodes in the same step."""
    id: int
    start: int
    end: int
    last: bool


@dataclass(frozen=True)
class FlushItem:
    """Flush the request's decoder once it holds exactly `tokens` speech tokens; `final`: the last flush."""
    id: int
    tokens: int
    final: bool


@dataclass(frozen=True)
class StepPlan:
    """One step: prefill chunks first, then one decode step over `decode`, then the flushes."""
    prefill: list[PrefillChunk]
    decode: list[int]
    flush: list[FlushItem]

    @property
    def idle(self) -> bool:
        return not (self.prefill or self.decode or self.flush)


class BatchScheduler:
    """The policy's state: every live request, the row budget, and the measured service time."""

    def __init__(self, config: ScheduleConfig) -> None:
        self.config = config

    @property
    def free_rows(self) -> int:
        """Rows not held by an admitted request."""
        raise NotImplementedError

    def expected_wait_s(self, now: float, priority: int = 1) -> float:
        """How long a request of `priority` submitted now would wait for rows (an estimate)."""
        raise NotImplementedError

    def submit(self, request: BatchRequest, now: float) -> Refused | None:
        """Queue `request`, or refuse it (too many rows for the budget, or the expected wait too long)."""
        raise NotImplementedError

    def apply(self, event: Event, now: float) -> None:
        """Record one event (an unknown or finished id is ignored: events race with the request's end)."""
        raise NotImplementedError

    def apply_all(self, events: Iterable[Event], now: float) -> None:
        for event in events:
            self.apply(event, now)

    def plan(self, now: float) -> StepPlan:
        """The next step. The executor runs all of it; the policy counts it as done when it returns."""
        raise NotImplementedError

    def over(self) -> list[int]:
        """Requests that ended since the last call (final flush planned, cancelled, finished): their
        rows are free; the executor closes what it holds for them."""
        raise NotImplementedError

