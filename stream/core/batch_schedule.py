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
- flush batching: a flush step costs a fixed launch floor whatever its batch, and every decoding
  row waits for it, so a due flush that can wait is held for a batch: its listener's deadline is
  known and further off than `hold_horizon_s` (one flush step, measured, plus
  `flush_hold_margin_s`; plus `final_flush_lead_s` for a final flush, since the context's next
  phrase starts when it is done). A first chunk (its listener has nothing to play) may wait only
  while its flush would still end within `first_chunk_budget_s` of its submission. A step flushes
  when any due flush cannot wait, or a full batch is due; it then takes the most urgent
  `max_flush_batch` in the order above, held ones riding along. Never held: a flush whose listener
  ran dry or whose deadline is unknown, and any flush of a step with nothing else to run (the
  executor would idle, not wait).
- pause stops a request's decode and flushes (it keeps its rows); resume continues it; cancel
  frees its rows at once (before the next plan).
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

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
    hold_flushes: bool = True          # hold flushes with slack to batch them (False: each flushes when due)
    expected_flush_s: float = 0.1      # a flush step's duration until one has been measured
    flush_hold_margin_s: float = 0.05  # slack kept beyond one flush step when holding a flush
    first_chunk_budget_s: float = 0.2  # a first chunk may wait for a batch while its flush ends within this of submission
    final_flush_lead_s: float = 0.5    # extra slack a held final flush keeps: the context's next phrase waits on it

    def __post_init__(self) -> None:
        for name in ("row_budget", "prefill_chunk_tokens", "max_flush_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1 (got {getattr(self, name)})")
        for name in ("max_queue_wait_s", "expected_service_s", "aging_s", "undated_slack_s", "expected_flush_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be positive (got {getattr(self, name)})")
        for name in ("flush_hold_margin_s", "final_flush_lead_s", "first_chunk_budget_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must not be negative (got {getattr(self, name)})")


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
    release: list[int] = field(default_factory=list)  # rows freed since the last plan (decode over,
                                                      # cancelled, finished): close them before prefill

    @property
    def idle(self) -> bool:
        return not (self.prefill or self.decode or self.flush or self.release)


class _Phase(enum.Enum):
    QUEUED = "queued"          # waiting for rows
    PREFILL = "prefill"        # admitted, prefix being prefilled
    DECODE = "decode"          # one token per step
    DRAIN = "drain"            # decoding over, rows released, flushes left


@dataclass
class _Live:
    """The policy's record of one request."""

    request: BatchRequest
    seq: int
    submitted: float
    deadline: float | None
    phase: _Phase = _Phase.QUEUED
    admitted: float = 0.0
    prefilled: int = 0
    steps: int = 0             # decode steps planned
    tokens: int = 0            # speech tokens read back
    done: bool = False         # the last token was read back (EOS or the cap)
    paused: bool = False
    has_audio: bool = False    # a flush reached the listener
    chunk: int = 0             # the size of the chunk whose flush is due next
    next_flush_at: int = 0     # token count at which the next non-final flush is due
    due_since: float | None = None

    @property
    def decoding(self) -> bool:
        cap = self.request.max_new_tokens
        return self.phase is _Phase.DECODE and not self.done and (cap is None or self.steps < cap)


class BatchScheduler:
    """The policy's state: every live request, the row budget, and the measured service time."""

    def __init__(self, config: ScheduleConfig) -> None:
        self.config = config
        self._live: dict[int, _Live] = {}
        self._order = itertools.count()
        self._used_rows = 0
        self._released: list[int] = []
        self._service_s = config.expected_service_s
        self._flush_s = config.expected_flush_s
        self._flushed_at: float | None = None     # when the last plan that flushed was made

    # ----- introspection ---------------------------------------------------------------------------
    @property
    def free_rows(self) -> int:
        """Rows not held by an admitted request."""
        return self.config.row_budget - self._used_rows

    @property
    def queued(self) -> int:
        return sum(live.phase is _Phase.QUEUED for live in self._live.values())

    @property
    def active(self) -> int:
        """Requests holding rows (prefilling or decoding)."""
        return sum(live.phase in (_Phase.PREFILL, _Phase.DECODE) for live in self._live.values())

    @property
    def hold_horizon_s(self) -> float:
        """A held flush is released when its deadline is this close: one flush step (its duration
        measured: the time from a plan that flushed to the next plan) plus the margin."""
        return self._flush_s + self.config.flush_hold_margin_s

    def __contains__(self, request_id: int) -> bool:
        return request_id in self._live

    def expected_wait_s(self, now: float, priority: int = 1, rows: int = 1) -> float:
        """How long a request of `priority` and `rows` submitted now would wait for rows: the rows
        queued ahead of it, plus its own, beyond the free ones, each budget's worth taking one
        measured service time."""
        ahead = sum(live.request.rows for live in self._queue(now) if self._rank(live, now)[0] <= priority)
        short = ahead + rows - self.free_rows
        return 0.0 if short <= 0 else math.ceil(short / self.config.row_budget) * self._service_s

    # ----- input -----------------------------------------------------------------------------------
    def submit(self, request: BatchRequest, now: float) -> Refused | None:
        """Queue `request`, or refuse it (too many rows for the budget, or the expected wait too long)."""
        if request.id in self._live:
            raise ValueError(f"id: request {request.id} is already scheduled")
        budget = self.config.row_budget
        if request.rows > budget:
            return Refused(request.id, RefusalReason.TOO_LARGE,
                           f"the request needs {request.rows} decoding rows; the engine has {budget}", math.inf)
        wait = self.expected_wait_s(now, request.priority, request.rows)
        if wait > self.config.max_queue_wait_s:
            return Refused(request.id, RefusalReason.QUEUE_WAIT,
                           f"the engine is at capacity: expected wait {wait:.1f} s exceeds "
                           f"{self.config.max_queue_wait_s:g} s; retry shortly", wait)
        first = request.first_chunk_tokens
        self._live[request.id] = _Live(request, next(self._order), now, request.deadline, chunk=first,
                                       next_flush_at=first + request.lookahead_tokens)
        return None

    def apply(self, event: Event, now: float) -> None:
        """Record one event (an unknown or finished id is ignored: events race with the request's end)."""
        live = self._live.get(event.id)
        if live is None:
            return
        if isinstance(event, Cancel | Finished):
            self._drop(live)
        elif isinstance(event, Pause):
            live.paused = True
        elif isinstance(event, Resume):
            live.paused = False
        elif isinstance(event, SetDeadline):
            live.deadline = event.deadline
        elif isinstance(event, Tokens):
            live.tokens += event.count
            live.done = live.done or event.done
        elif isinstance(event, FlushDone):
            live.has_audio = True

    def apply_all(self, events: Iterable[Event], now: float) -> None:
        for event in events:
            self.apply(event, now)

    # ----- the plan --------------------------------------------------------------------------------
    def plan(self, now: float) -> StepPlan:
        """The next step. The executor runs all of it; the policy counts it as done when it returns."""
        if self._flushed_at is not None:   # the executor plans again as soon as a step is done
            self._flush_s += 0.2 * ((now - self._flushed_at) - self._flush_s)
            self._flushed_at = None
        for live in list(self._live.values()):
            if live.phase is _Phase.DECODE and not live.decoding:
                self._release(live)
                self._service_s += 0.2 * ((now - live.admitted) - self._service_s)
        self._admit(now)
        prefill = self._prefill(now)
        decode = [live.request.id for live in self._by_rank(self._live.values(), now) if live.decoding
                  and not live.paused]
        for request_id in decode:
            self._live[request_id].steps += 1
        flush = self._flush(now, hold=bool(prefill or decode))
        if flush:
            self._flushed_at = now
        release, self._released = self._released, []
        return StepPlan(prefill, decode, flush, release)

    def _admit(self, now: float) -> None:
        for live in self._queue(now):
            if live.request.rows > self.free_rows:
                return  # the head waits for rows; nothing behind it overtakes it
            live.phase, live.admitted = _Phase.PREFILL, now
            self._used_rows += live.request.rows

    def _prefill(self, now: float) -> list[PrefillChunk]:
        budget = self.config.prefill_chunk_tokens
        chunks: list[PrefillChunk] = []
        prefilling = [live for live in self._live.values() if live.phase is _Phase.PREFILL]
        for live in self._by_rank(prefilling, now):
            if budget == 0:
                break
            start = live.prefilled
            end = min(live.request.prefill_tokens, start + budget)
            budget -= end - start
            live.prefilled = end
            last = end == live.request.prefill_tokens
            chunks.append(PrefillChunk(live.request.id, start, end, last))
            if last:
                live.phase = _Phase.DECODE
        return chunks

    def _flush(self, now: float, hold: bool) -> list[FlushItem]:
        """The step's flushes; with `hold` (the step runs other work) flushes that can wait are held
        for a batch. A step with nothing else to do never holds: the executor would idle, not wait."""
        due: list[tuple[tuple[int, float, int], _Live, FlushItem]] = []
        urgent = False
        for live in self._live.values():
            item = self._due(live)
            if item is None:
                live.due_since = None
                continue
            if live.due_since is None:
                live.due_since = now
            if live.paused:
                continue
            deadline = live.deadline if live.deadline is not None else live.due_since + self.config.undated_slack_s
            # A listener with nothing to play: a first phrase's before its first chunk, or one whose
            # deadline passed (it ran dry); these go before listeners still playing.
            dry = (not live.has_audio and live.request.priority == 0) or deadline <= now
            due.append(((0 if dry else 1, deadline, live.seq), live, item))
            if not live.has_audio and live.request.priority == 0:   # a first chunk: its TTFA budget
                can_wait = (self.config.hold_flushes
                            and now + self.hold_horizon_s < live.submitted + self.config.first_chunk_budget_s)
            else:
                can_wait = not dry and self._can_wait(live, item, now)
            urgent = urgent or not can_wait
        if hold and not urgent and len(due) < self.config.max_flush_batch:
            return []   # every listener has audio enough to wait for a fuller batch
        due.sort(key=lambda entry: entry[0])
        items = []
        for _, live, item in due[: self.config.max_flush_batch]:
            items.append(item)
            live.due_since = None
            if item.final:
                self._drop(live)
            else:
                live.chunk = min(live.request.max_chunk_tokens or live.chunk, live.chunk * 2)
                live.next_flush_at += live.chunk
        return items

    def _can_wait(self, live: _Live, item: FlushItem, now: float) -> bool:
        """The flush may be held: holding is on, and its listener's deadline is known and further off
        than the horizon (plus the lead, for a final flush)."""
        lead = self.config.final_flush_lead_s if item.final else 0.0
        return (self.config.hold_flushes and live.deadline is not None
                and live.deadline - now > self.hold_horizon_s + lead)

    @staticmethod
    def _due(live: _Live) -> FlushItem | None:
        """The request's next flush, if one is due: non-final ones first, as a serial run would do them."""
        if live.phase not in (_Phase.DECODE, _Phase.DRAIN):
            return None
        if live.tokens >= live.next_flush_at:
            return FlushItem(live.request.id, live.next_flush_at, final=False)
        if live.done:
            return FlushItem(live.request.id, live.tokens, final=True)
        return None

    # ----- bookkeeping -----------------------------------------------------------------------------
    def _release(self, live: _Live) -> None:
        """Decoding is over: free the rows now; flushes may remain (DRAIN)."""
        self._used_rows -= live.request.rows
        self._released.append(live.request.id)
        live.phase = _Phase.DRAIN

    def _drop(self, live: _Live) -> None:
        if live.phase in (_Phase.PREFILL, _Phase.DECODE):
            self._release(live)
        del self._live[live.request.id]

    def _rank(self, live: _Live, now: float) -> tuple[float, float, int]:
        """Priority aged by waiting time, then deadline (none: last), then arrival."""
        aged = live.request.priority - (now - live.submitted) / self.config.aging_s
        return aged, math.inf if live.deadline is None else live.deadline, live.seq

    def _by_rank(self, lives: Iterable[_Live], now: float) -> list[_Live]:
        return sorted(lives, key=lambda live: self._rank(live, now))

    def _queue(self, now: float) -> list[_Live]:
        return self._by_rank((live for live in self._live.values() if live.phase is _Phase.QUEUED), now)
