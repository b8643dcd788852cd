"""Many voice-agent sessions on one simulated H100: the real batching policy on a simulated clock.

**Simulated, analytic model, not measured.** The step durations come from `cost_model.py` (a named
analytic H100 model); the decisions come from the real policy, `stream.core.batch_schedule`, the
very code the batching executor runs. Nothing here touches a model or a GPU.

Each session is a voice agent: an LLM reply (from `benchmarks.corpus`, seeded) arrives as deltas at
30 tokens/s (x 1 +- 0.3 jitter); voicewire's phrase cutter (`stream.core.segmenter.PhraseCutter`
with Chatterbox's policy, fed the audio-ahead hint) cuts phrases; like the server's session, a
context's next phrase is submitted when the previous phrase's synthesis has finished producing,
its first phrase at priority 0 and later ones with the deadline at which the listener's audio runs
out. A phrase's speech tokens are its normalized characters x 25/14 (14 characters per second of
speech at 25 tokens per second, as `bench_chatterbox` assumes: an approximation, not the model's
EOS); its text tokens, characters (the 704-entry tokenizer is near character level). The listener plays at
real time; after the turn's audio it thinks 1-3 s and the next reply starts. Sessions start within
the first 2 s.

Per engine step the driver asks the policy for a plan, charges its duration (host overhead +
prefill chunks + one decode step over every planned row + the batched flush), then reports the
tokens and flushes back as events. The serial engine (today's: one phrase at a time, highest
priority then earliest deadline first) runs under the same model for comparison, and so does the
batching policy with flush holding off (`batched-flush-when-due`: each flush runs as soon as it
is due, the policy before flushes were held for batches). A scenario row prices the flush's
kernels eagerly (`flush_graphs=False`: the engine does not capture S3Gen in CUDA graphs yet).

Reported per session count: TTFA p50/p95 (engine: phrase submitted -> first audio, the measure of
the <= 300 ms target; turn: reply start -> first audio, which adds the wait for the first phrase's
text), gaps (the listener ran dry after audio started while the engine held the phrase it
needed), deadline misses (chunks delivered after their listener ran dry), refusals, GPU busy share;
and the largest count meeting p95 engine TTFA <= 300 ms with zero gaps and no refusal.

    python -m benchmarks.simulate_gpu                 # sweep + sensitivity, JSON and PNG in benchmarks/results/
    python -m benchmarks.simulate_gpu --quick         # shorter horizon, no sensitivity table
    python -m benchmarks.simulate_gpu --markdown      # also print the tables of docs/benchmarks.md
    python -m benchmarks.simulate_gpu --from-gpu-check gpu_check.json   # kernel floors fitted to a real GPU
"""

from __future__ import annotations

import argparse
import functools
import heapq
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from clients.tokens import llm_deltas
from stream.core.batch_schedule import (
    BatchRequest,
    BatchScheduler,
    Event,
    FlushDone,
    FlushItem,
    PrefillChunk,
    Refused,
    ScheduleConfig,
    SetDeadline,
    StepPlan,
    Tokens,
)
from stream.core.normalizer import normalize
from stream.core.segmenter import PhraseCutter
from stream.engines.chatterbox.policy import POLICY

from . import corpus
from .cost_model import H100, LABEL, MODEL_NAME, PARAMETERS, CostModel, FlushShape
from .report import RESULTS, now_utc, write_json

TOKEN_S = 0.040                   # one speech token is 40 ms of audio (25 tokens per second)
TARGET_P95_S = 0.300
SESSION_COUNTS = (8, 16, 32, 64)
SEARCH_COUNTS = (4, 8, 12, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 256)


@dataclass(frozen=True)
class Workload:
    """The sessions and the engine's per-request shape; every default is voicewire's or stated."""

    llm_tokens_per_s: float = 30.0
    jitter: float = 0.3
    think_s: tuple[float, float] = (1.0, 3.0)
    start_spread_s: float = 2.0
    horizon_s: float = 40.0            # replies start within this; the run ends when they are heard
    speech_tokens_per_char: float = 25 / 14   # 14 characters per second of speech (bench_chatterbox)
    cfg_rows: int = 2                  # CFG: a request is a row pair
    conditioning_positions: int = 34   # speaker + 32 perceiver + emotion positions before the text
    prompt_frames: int = 516           # a 10 s voice's prompt in every flow pass (issue 12)
    first_chunk_tokens: int = 8        # StreamTuning: the turn's first chunk
    first_chunk_tokens_later: int = 16
    max_chunk_tokens: int = 48
    context_tokens: int = 24           # left context re-decoded with each flush
    lookahead_tokens: int = 3          # S3Gen's pre_lookahead_len
    overlap_frames: int = 4            # HiFT overlap per chunk
    row_budget: int = 256              # KV pool: 256 rows x 1 024 positions x 120 KiB = 32 GB of 80 GB
    seed: int = 0


# ----- the serial engine: one phrase at a time, as today's single worker runs it ------------------

class Policy(Protocol):
    """What the driver needs of a policy: `BatchScheduler`'s API, which the serial engine mimics."""

    def submit(self, request: BatchRequest, now: float) -> Refused | None: ...
    def apply(self, event: Event, now: float) -> None: ...
    def plan(self, now: float) -> StepPlan: ...


@dataclass
class _Serial:
    request: BatchRequest
    arrival: int
    deadline: float | None
    tokens: int = 0
    done: bool = False
    flushed: int = 0                 # tokens covered by flushes planned so far
    chunk: int = 0
    started: bool = False


class SerialPolicy:
    """Today's engine under the batching API: the best-ranked request runs alone until its phrase is
    done (prefill, every token, its flushes inline); rank: priority, then deadline, then arrival."""

    def __init__(self) -> None:
        self._queue: dict[int, _Serial] = {}
        self._current: _Serial | None = None
        self._arrivals = 0

    def submit(self, request: BatchRequest, now: float) -> Refused | None:
        self._arrivals += 1
        self._queue[request.id] = _Serial(request, self._arrivals, request.deadline,
                                          chunk=request.first_chunk_tokens)
        return None

    def apply(self, event: Event, now: float) -> None:
        job = self._current if self._current and self._current.request.id == event.id else self._queue.get(event.id)
        if job is None:
            return
        if isinstance(event, Tokens):
            job.tokens += event.count
            job.done = job.done or event.done
        elif isinstance(event, SetDeadline):
            job.deadline = event.deadline

    def plan(self, now: float) -> StepPlan:
        if self._current is None:
            if not self._queue:
                return StepPlan([], [], [])
            best = min(self._queue.values(), key=lambda j: (j.request.priority, _inf(j.deadline), j.arrival))
            self._current = self._queue.pop(best.request.id)
        job, req = self._current, self._current.request
        if not job.started:
            job.started = True
            return StepPlan([PrefillChunk(req.id, 0, req.prefill_tokens, True)], [req.id], [])
        if job.done:
            self._current = None
            return StepPlan([], [], [FlushItem(req.id, job.tokens, True)])
        flush = []
        if job.tokens - req.lookahead_tokens - job.flushed >= job.chunk:
            job.flushed = job.tokens - req.lookahead_tokens
            job.chunk = min(req.max_chunk_tokens or job.chunk, 2 * job.chunk)
            flush = [FlushItem(req.id, job.tokens, False)]
        return StepPlan([], [req.id], flush)


def _inf(deadline: float | None) -> float:
    return math.inf if deadline is None else deadline


# ----- the sessions ---------------------------------------------------------------------------------

@dataclass
class _Phrase:
    text: str
    tokens: int                      # speech tokens it will produce
    first: bool


@dataclass
class _Job:
    id: int
    session: _Session
    phrase: _Phrase
    submitted: float
    generated: int = 0
    delivered: int = 0               # tokens whose audio reached the listener


@dataclass
class _Turn:
    start: float
    session: int
    phrase_submitted: float | None = None
    first_audio: float | None = None
    gaps: list[float] = field(default_factory=list)
    text_gaps: int = 0
    refused: bool = False
    done: bool = False
    phrases: int = 0


@dataclass
class _Session:
    index: int
    rng: random.Random
    cutter: PhraseCutter | None = None
    turn: _Turn | None = None
    pending: list[_Phrase] = field(default_factory=list)
    job: _Job | None = None           # the phrase being synthesized (at most one, like the server)
    text_done: bool = False
    play_end: float = 0.0             # when the listener's queued audio runs out


@dataclass
class PointResult:
    sessions: int
    engine: str
    turns: int
    ttfa_engine_p50_ms: float
    ttfa_engine_p95_ms: float
    ttfa_turn_p50_ms: float
    ttfa_turn_p95_ms: float
    gaps: int
    gap_s: float
    gapped_turns: int
    text_gaps: int
    deadline_misses: int
    refusals: int
    gpu_busy: float
    steps: int
    mean_decode_rows: float
    mean_flush_batch: float

    @property
    def ok(self) -> bool:
        return self.ttfa_engine_p95_ms <= TARGET_P95_S * 1000 and self.gaps == 0 and self.refusals == 0


@functools.lru_cache(maxsize=4096)
def _speakable(text: str) -> str:
    return normalize(text, POLICY.normalizer).strip()


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class Simulation:
    """One run: `sessions` voice agents against one policy and one cost model."""

    def __init__(self, sessions: int, policy: Policy, model: CostModel, workload: Workload,
                 fail_fast: bool = False) -> None:
        self.model, self.work, self.policy = model, workload, policy
        self.fail_fast = fail_fast        # stop at the first gap or refusal (the capacity search)
        self.failed = False
        self.now = 0.0
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self._jobs: dict[int, _Job] = {}
        self._next_id = 1
        self._replies = [r.text for r in corpus.select()]
        self.turns: list[_Turn] = []
        self._pending_events: list[Event] = []
        self.busy_s = 0.0
        self.steps = 0
        self._rows_sum = 0
        self._flush_sum = 0
        self._flush_steps = 0
        self.deadline_misses = 0
        self.refusals = 0
        master = random.Random(workload.seed)
        for i in range(sessions):
            session = _Session(i, random.Random(master.getrandbits(64)))
            self._at(session.rng.uniform(0, workload.start_spread_s), lambda s=session: self._start_turn(s))

    # -- event plumbing --
    def _at(self, when: float, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._events, (when, self._seq, action))

    def _run_due(self) -> None:
        while self._events and self._events[0][0] <= self.now:
            _, _, action = heapq.heappop(self._events)
            action()

    # -- the agent side --
    def _start_turn(self, s: _Session) -> None:
        if self.now > self.work.horizon_s:
            return
        s.turn = _Turn(start=self.now, session=s.index)
        self.turns.append(s.turn)
        s.cutter = PhraseCutter(POLICY.cutter)
        s.text_done = False
        s.play_end = self.now
        text = s.rng.choice(self._replies)
        when = self.now
        for delta in llm_deltas(text):
            self._at(when, lambda d=delta, s=s: self._text(s, d))
            when += (1 + s.rng.uniform(-self.work.jitter, self.work.jitter)) / self.work.llm_tokens_per_s
        self._at(when, lambda s=s: self._text(s, None))

    def _ahead_s(self, s: _Session) -> float:
        started = s.turn is not None and s.turn.first_audio is not None
        return max(0.0, s.play_end - self.now) if started else 0.0

    def _text(self, s: _Session, delta: str | None) -> None:
        assert s.cutter is not None
        s.cutter.set_audio_ahead(self._ahead_s(s))
        if delta is None:
            phrases, s.text_done = s.cutter.end(), True
        else:
            phrases = s.cutter.push(delta, self.now)
        for text in phrases:
            spoken = _speakable(text)
            if spoken:
                first = s.turn is not None and s.turn.phrases == 0
                if s.turn is not None:
                    s.turn.phrases += 1
                tokens = max(1, round(len(spoken) * self.work.speech_tokens_per_char))
                s.pending.append(_Phrase(spoken, tokens, first))
        self._next_phrase(s)
        self._maybe_end_turn(s)

    def _next_phrase(self, s: _Session) -> None:
        """Submit the session's next phrase once the previous phrase has finished producing."""
        if s.job is not None or not s.pending or s.turn is None or s.turn.refused:
            return
        phrase = s.pending.pop(0)
        w = self.work
        job = _Job(self._next_id, s, phrase, self.now)
        self._next_id += 1
        started = s.turn.first_audio is not None
        deadline = s.play_end if started else None
        request = BatchRequest(
            id=job.id, rows=w.cfg_rows, prefill_tokens=w.conditioning_positions + len(phrase.text) + 2,
            priority=0 if phrase.first else 1, deadline=deadline,
            first_chunk_tokens=w.first_chunk_tokens if phrase.first else w.first_chunk_tokens_later,
            max_chunk_tokens=w.max_chunk_tokens, lookahead_tokens=w.lookahead_tokens,
            max_new_tokens=phrase.tokens)
        if s.turn.phrase_submitted is None:
            s.turn.phrase_submitted = self.now
        refused = self.policy.submit(request, self.now)
        if refused is not None:
            self.refusals += 1
            self.failed = True
            s.turn.refused = True
            s.pending.clear()
            self._maybe_end_turn(s)
            return
        s.job = job
        self._jobs[job.id] = job

    def _maybe_end_turn(self, s: _Session) -> None:
        turn = s.turn
        if turn is None or turn.done or not s.text_done or s.pending or s.job is not None:
            return
        turn.done = True
        think = s.rng.uniform(*self.work.think_s)
        self._at(max(self.now, s.play_end) + think, lambda s=s: self._start_turn(s))

    def _deliver(self, job: _Job, tokens: int) -> None:
        """`tokens` more tokens of audio reach the listener now."""
        s, turn = job.session, job.session.turn
        if tokens <= 0 or turn is None:
            return
        if turn.first_audio is None:
            turn.first_audio = self.now
            s.play_end = self.now
        elif self.now > s.play_end + 1e-9:
            self.deadline_misses += 1
            if job.submitted <= s.play_end:
                turn.gaps.append(self.now - s.play_end)
                self.failed = True
            else:
                turn.text_gaps += 1           # the text came too late: not the engine's doing
        s.play_end = max(s.play_end, self.now) + tokens * TOKEN_S
        job.delivered += tokens
        self.policy.apply(SetDeadline(job.id, s.play_end), self.now)

    # -- the engine side --
    def _step(self, plan: StepPlan) -> float:
        m, w = self.model, self.work
        duration = m.host_step_s
        positions = sum(w.cfg_rows * (c.end - c.start) for c in plan.prefill)
        duration += m.t3_prefill_s(positions, chunks=len(plan.prefill))
        jobs = [self._jobs[i] for i in plan.decode if i in self._jobs]
        if jobs:
            kv = sum(w.cfg_rows * (w.conditioning_positions + len(j.phrase.text) + 2 + j.generated) for j in jobs)
            duration += m.t3_step_s(w.cfg_rows * len(jobs), kv)
            self._rows_sum += w.cfg_rows * len(jobs)
        shapes = []
        for item in plan.flush:
            job = self._jobs.get(item.id)
            if job is None:
                continue
            new = (item.tokens if item.final else item.tokens - w.lookahead_tokens) - job.delivered
            context = min(w.context_tokens, job.delivered)
            flow = w.prompt_frames + 2 * (context + max(new, 0) + (0 if item.final else w.lookahead_tokens))
            shapes.append(FlushShape(flow_frames=flow, new_frames=2 * max(new, 0) + w.overlap_frames))
        if shapes:
            duration += m.flush_s(shapes)
            self._flush_sum += len(shapes)
            self._flush_steps += 1
        return duration

    def _after_step(self, plan: StepPlan) -> None:
        w = self.work
        events: list[Event] = []
        for i in plan.decode:
            job = self._jobs.get(i)
            if job is None:
                continue
            job.generated += 1
            events.append(Tokens(i, 1, done=job.generated >= job.phrase.tokens))
        for item in plan.flush:
            job = self._jobs.get(item.id)
            if job is None:
                continue
            target = item.tokens if item.final else item.tokens - w.lookahead_tokens
            self._deliver(job, target - job.delivered)
            events.append(FlushDone(item.id))
            if item.final:
                self._finish(job)
        for event in events:
            self.policy.apply(event, self.now)

    def _finish(self, job: _Job) -> None:
        s = job.session
        self._jobs.pop(job.id, None)
        s.job = None
        self._next_phrase(s)
        self._maybe_end_turn(s)

    def run(self) -> None:
        limit = self.work.horizon_s + 120.0
        while self.now < limit and not (self.fail_fast and self.failed):
            self._run_due()
            plan = self.policy.plan(self.now)
            if plan.idle:
                if not self._events:
                    break
                self.now = max(self.now, self._events[0][0])
                continue
            duration = self._step(plan)
            self.busy_s += duration
            self.steps += 1
            self.now += duration
            self._after_step(plan)

    def result(self, sessions: int, engine: str) -> PointResult:
        end = self.now
        turns = [t for t in self.turns if t.phrase_submitted is not None]
        # A turn still without audio at the end counts with the time it waited (censored, not dropped).
        engine_ttfa = [(t.first_audio if t.first_audio is not None else end) - t.phrase_submitted
                       for t in turns if not t.refused]
        turn_ttfa = [(t.first_audio if t.first_audio is not None else end) - t.start for t in turns if not t.refused]
        gaps = [g for t in turns for g in t.gaps]
        return PointResult(
            sessions=sessions, engine=engine, turns=len(turns),
            ttfa_engine_p50_ms=round(1000 * _pct(engine_ttfa, 0.5), 1),
            ttfa_engine_p95_ms=round(1000 * _pct(engine_ttfa, 0.95), 1),
            ttfa_turn_p50_ms=round(1000 * _pct(turn_ttfa, 0.5), 1),
            ttfa_turn_p95_ms=round(1000 * _pct(turn_ttfa, 0.95), 1),
            gaps=len(gaps), gap_s=round(sum(gaps), 3), gapped_turns=sum(1 for t in turns if t.gaps),
            text_gaps=sum(t.text_gaps for t in turns), deadline_misses=self.deadline_misses,
            refusals=self.refusals, gpu_busy=round(self.busy_s / end, 3) if end > 0 else 0.0, steps=self.steps,
            mean_decode_rows=round(self._rows_sum / max(1, self.steps), 1),
            mean_flush_batch=round(self._flush_sum / max(1, self._flush_steps), 2))


def batch_policy(work: Workload, **config: object) -> Policy:
    return BatchScheduler(ScheduleConfig(row_budget=work.row_budget, **config))


ENGINES: dict[str, Callable[[Workload], Policy]] = {
    "batched": batch_policy,
    "batched-flush-when-due": lambda work: batch_policy(work, hold_flushes=False),
    "serial": lambda _: SerialPolicy(),
}


def simulate(sessions: int, engine: str = "batched", model: CostModel = H100,
             workload: Workload = Workload(), fail_fast: bool = False) -> PointResult:
    """One point; with `fail_fast` the run stops at the first gap or refusal (its numbers then
    cover only the time run: use it for pass/fail alone)."""
    sim = Simulation(sessions, ENGINES[engine](workload), model, workload, fail_fast)
    sim.run()
    return sim.result(sessions, engine)


def capacity(engine: str = "batched", model: CostModel = H100, workload: Workload = Workload(),
             counts: Sequence[int] = SEARCH_COUNTS) -> int:
    """The largest count in `counts` meeting the target, by bisection (assumes the pass/fail is
    monotonic in the count, which the sweep's table shows); 0 when even the smallest fails."""
    lo, hi = -1, len(counts)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if simulate(counts[mid], engine, model, workload, fail_fast=True).ok:
            lo = mid
        else:
            hi = mid
    return counts[lo] if lo >= 0 else 0


SENSITIVITY = ("hbm_bytes_per_s", "bf16_flops_per_s", "graph_kernel_s", "eager_op_s", "host_step_s",
               "t3_step_kernels_per_layer", "estimator_kernels", "estimator_flops", "encoder_kernels",
               "hift_kernels", "hift_flops_per_frame", "cfm_steps", "flush_bucket_frames")
WORKLOAD_SENSITIVITY = ("prompt_frames", "first_chunk_tokens", "speech_tokens_per_char", "llm_tokens_per_s")


def sensitivity(base: CostModel, workload: Workload, counts: Sequence[int]) -> list[dict]:
    rows = []
    for name in SENSITIVITY + WORKLOAD_SENSITIVITY:
        row: dict = {"parameter": name}
        for label, factor in (("halved", 0.5), ("doubled", 2.0)):
            if name in SENSITIVITY:
                model, work = base.scaled(name, factor), workload
            else:
                value = getattr(workload, name)
                scaled = max(1, round(value * factor)) if isinstance(value, int) else value * factor
                model, work = base, replace(workload, **{name: scaled})
            row[label] = capacity("batched", model, work, counts)
        rows.append(row)
    return rows


def pieces(model: CostModel, work: Workload) -> dict:
    """What each piece costs under the model: the numbers behind the sweep, in milliseconds."""
    positions = work.conditioning_positions + 60 + 2 + 50      # a 60-character phrase, 50 tokens in
    first = FlushShape(work.prompt_frames + 2 * (work.first_chunk_tokens + work.lookahead_tokens),
                       2 * work.first_chunk_tokens + work.overlap_frames)
    late = FlushShape(work.prompt_frames + 2 * (work.context_tokens + work.max_chunk_tokens + work.lookahead_tokens),
                      2 * work.max_chunk_tokens + work.overlap_frames)
    ms = {f"t3_step_{rows}_rows": model.t3_step_s(rows, rows * positions) for rows in (2, 16, 32, 64, 128)}
    ms["t3_prefill_96_positions_cfg"] = model.t3_prefill_s(2 * 96)
    for batch in (1, 4, 8):
        ms[f"first_flush_batch_{batch}"] = model.flush_s([first] * batch)
        ms[f"late_flush_batch_{batch}"] = model.flush_s([late] * batch)
    return {key: round(1000 * value, 2) for key, value in ms.items()}


def plot(path: Path, points: list[PointResult], label: str) -> None:
    from .report import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for engine, colour in (("batched", "tab:blue"), ("batched-flush-when-due", "tab:green"), ("serial", "tab:red")):
        pts = [p for p in points if p.engine == engine]
        if not pts:
            continue
        ax.plot([p.sessions for p in pts], [p.ttfa_engine_p95_ms for p in pts], "o-", color=colour,
                label=f"{engine}: p95 engine TTFA")
        ax.plot([p.sessions for p in pts], [p.ttfa_engine_p50_ms for p in pts], "o--", color=colour, alpha=0.5,
                label=f"{engine}: p50")
    ax.axhline(TARGET_P95_S * 1000, color="gray", linestyle=":", label="target p95 300 ms")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("concurrent voice-agent sessions")
    ax.set_ylabel("TTFA, phrase -> first audio (ms)")
    ax.set_title(f"One H100, {label}", fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _value(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(f"{v:.4g}" for v in value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def markdown(report: dict) -> str:
    """The docs' tables: parameters, pieces, the sweep and the sensitivity of the capacity."""
    model = report["model"]
    out = ["| parameter | value | source |", "|---|---|---|"]
    out += [f"| `{name}` | {_value(model[name])} | {source} |" for name, source in report["parameter_sources"].items()]
    out += ["", "| piece | ms |", "|---|---|"] + [f"| {k} | {v} |" for k, v in report["pieces_ms"].items()]
    out += ["", "| engine | sessions | turns | engine TTFA p50 / p95 ms | turn TTFA p50 / p95 ms | gaps (turns) "
            "| deadline misses | refused | GPU busy | decode rows (mean) | flushes per flush step |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in report["points"]:
        out.append(f"| {p['engine']} | {p['sessions']} | {p['turns']} | {p['ttfa_engine_p50_ms']:.0f} / "
                   f"{p['ttfa_engine_p95_ms']:.0f} | {p['ttfa_turn_p50_ms']:.0f} / {p['ttfa_turn_p95_ms']:.0f} | "
                   f"{p['gaps']} ({p['gapped_turns']}) | {p['deadline_misses']} | {p['refusals']} | "
                   f"{p['gpu_busy']:.0%} | {p['mean_decode_rows']} | {p['mean_flush_batch']} |")
    if report.get("scenarios"):
        out += ["", "| scenario | " + " | ".join(report["capacity"]) + " |", "|---|" + "---|" * len(report["capacity"])]
        out += [f"| {name} | " + " | ".join(str(caps.get(e, "")) for e in report["capacity"]) + " |"
                for name, caps in [("default (flush graphs)", report["capacity"])] + list(report["scenarios"].items())]
    if report["sensitivity"]:
        base = report["capacity"]["batched"]
        out += ["", f"| parameter (base capacity {base}) | halved | doubled |", "|---|---|---|"]
        out += [f"| `{r['parameter']}` | {r['halved']} | {r['doubled']} |" for r in report["sensitivity"]]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s horizon, no sensitivity table")
    parser.add_argument("--sessions", type=int, nargs="+", default=list(SESSION_COUNTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", action="store_true", help="also print the docs' tables")
    parser.add_argument("--from-gpu-check", type=Path, metavar="JSON",
                        help="fit the per-kernel floors to a gpu_check report of a real GPU (full-size T3)")
    parser.add_argument("--json", type=Path, default=RESULTS / "simulate-gpu-h100.json")
    parser.add_argument("--plot", type=Path, default=RESULTS / "simulate-gpu-h100.png")
    args = parser.parse_args(argv)
    work = Workload(seed=args.seed, horizon_s=10.0 if args.quick else Workload.horizon_s)
    model, label = H100, f"{LABEL} ({MODEL_NAME})"
    if args.from_gpu_check:
        check = json.loads(args.from_gpu_check.read_text())
        model = H100.fitted_to_gpu_check(check)
        label = (f"simulated: {MODEL_NAME} with per-kernel floors fitted to gpu_check on {check.get('device')} "
                 f"({check.get('date')}); bandwidth and peak still the H100 datasheet's")
    print(label)
    started = time.perf_counter()
    cost = pieces(model, work)
    print("model pieces (ms):", cost)
    points = [simulate(n, engine, model, work) for engine in ENGINES for n in args.sessions]
    for p in points:
        print(f"{p.engine:8s} {p.sessions:4d} sessions: engine TTFA p50 {p.ttfa_engine_p50_ms:7.1f} "
              f"p95 {p.ttfa_engine_p95_ms:8.1f} ms, turn p95 {p.ttfa_turn_p95_ms:8.1f} ms, gaps {p.gaps}, "
              f"misses {p.deadline_misses}, refused {p.refusals}, GPU busy {p.gpu_busy:.0%}, "
              f"rows {p.mean_decode_rows}, flush batch {p.mean_flush_batch}")
    best = {engine: capacity(engine, model, work) for engine in ENGINES}
    print(f"largest count at p95 <= {TARGET_P95_S * 1000:.0f} ms with zero gaps: {best}")
    eager = replace(model, flush_graphs=False)
    scenarios = {"flush kernels eager (`flush_graphs=False`)": {
        engine: capacity(engine, eager, work) for engine in ENGINES}}
    print("scenarios:", scenarios)
    table = [] if args.quick else sensitivity(model, work, SEARCH_COUNTS)
    for row in table:
        print(f"  {row['parameter']:28s} halved {row['halved']:4d}  doubled {row['doubled']:4d}")
    report = {
        "label": label, "model": model.as_dict(), "parameter_sources": PARAMETERS, "workload": work.__dict__,
        "policy": "stream.core.batch_schedule.BatchScheduler (defaults; batched-flush-when-due: hold_flushes=False)",
        "date": now_utc(), "pieces_ms": cost, "scenarios": scenarios,
        "target": {"p95_engine_ttfa_ms": TARGET_P95_S * 1000, "gaps": 0, "refusals": 0},
        "points": [p.__dict__ | {"ok": p.ok} for p in points], "capacity": best,
        "sensitivity": table, "runtime_s": round(time.perf_counter() - started, 1),
    }
    write_json(args.json, report)
    plot(args.plot, points, label)
    if args.markdown:
        print(markdown(report))
    print(f"wrote {args.json} and {args.plot} ({report['runtime_s']} s)")


if __name__ == "__main__":
    main()
