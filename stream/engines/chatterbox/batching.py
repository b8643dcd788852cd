"""The batching executor: one scheduler loop per device runs every Chatterbox request in one batch.

The thread pool runs one phrase per engine call, so N sessions on a GPU take N turns of a small,
launch-bound decode. Here one loop thread owns the device and, every iteration:

1. applies the commands that arrived (submit, cancel, pause, resume, deadline) - `submit` and the
   handles only put a command on a thread-safe queue, so they never block;
2. asks the policy (`stream.core.batch_schedule`, plain Python) for a `StepPlan`;
3. closes the rows of requests that stopped decoding, opens and prefills (in chunks) admitted ones,
   runs one batched decode step over every active request (`batched_t3.T3Batch`: a fixed KV pool,
   a CFG request is 2 rows) and reads the previous step's tokens back (one step behind, so the
   device keeps working while the host reads);
4. feeds each request's tokens to its own `PhraseDecoder` and runs the flushes the policy picked
   together (`batched_flush.flush_many`); each request's audio goes to the engine's watermark stage
   (Perth on a CPU worker of its own, in order per phrase), so the loop goes on with the device
   while a chunk is marked, and from there to the request's sink.

A request's chunking (tokens per flush) is its own (`StreamTuning.chunk_sizes`): the policy plans a
flush at the exact token count a serial run would flush at, and the loop feeds the decoder exactly
that many tokens first, so the batch never changes where a chunk ends. Its tokens come from the
runner's counter-based sampler, a function of (seed, step) per row, so they do not depend on which
requests share the batch either.
"""

from __future__ import annotations

import itertools
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from stream.core import batch_schedule as bs
from stream.core.errors import OutOfRange, RateLimited
from stream.core.synthesis import SynthesisRequest
from stream.engines.chatterbox import conditioning as cond_mod
from stream.engines.chatterbox.batched_flush import flush_many
from stream.engines.chatterbox.batched_t3 import RowSettings, prefix_embeds_for
from stream.engines.chatterbox.decoding import SPEECH_VOCAB, PhraseDecoder
from stream.engines.chatterbox.sampling import token_cap
from stream.engines.chatterbox.watermark import WatermarkStage
from stream.inference.executor import ChunkSink, Executor, RequestHandle
from stream.inference.observer import EngineObserver, ExecutorLimits, NullObserver

if TYPE_CHECKING:
    from stream.engines.chatterbox.engine import ChatterboxEngine

log = logging.getLogger("voicewire.batching")

__all__ = ["BatchingExecutor", "T3Runner"]


class T3Runner(Protocol):
    """What the loop needs of the batched T3 (`batched_t3.T3Batch`)."""

    @property
    def row_budget(self) -> int: ...

    def open(self, prefix_embeds: torch.Tensor, settings: RowSettings, seed: int) -> int: ...

    def prefill(self, group: int, start: int, end: int) -> None: ...

    def step(self, groups: Sequence[int]) -> torch.Tensor: ...

    def close(self, group: int) -> None: ...


class _Readback:
    """A step's sampled tokens brought to the host one step behind, without stalling the device.

    On CUDA the (groups,) tensor is copied into a pinned buffer with an event recorded after the
    copy, and `pop` waits on that event only, so the step queued behind it keeps running (the
    vector form of `sampling.TokenReadback`). Off CUDA there is nothing to overlap.
    """

    def __init__(self, device: torch.device, rows: int) -> None:
        self._cuda = device.type == "cuda"
        self._pending: list[tuple[list[int], torch.Tensor | list[int], torch.cuda.Event | None]] = []
        if self._cuda:
            self._host = [torch.empty(rows, dtype=torch.long, pin_memory=True) for _ in range(2)]
            self._slot = 0

    def push(self, ids: list[int], tokens: torch.Tensor) -> None:
        if not self._cuda:
            self._pending.append((ids, tokens.tolist(), None))
            return
        host = self._host[self._slot % 2][: len(ids)]
        self._slot += 1
        host.copy_(tokens, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self._pending.append((ids, host, event))

    def __len__(self) -> int:
        """Steps whose tokens are still on their way."""
        return len(self._pending)

    def pop(self) -> list[tuple[int, int]]:
        """The oldest step's (request id, token) pairs."""
        ids, tokens, event = self._pending.pop(0)
        if event is not None:
            event.synchronize()
            tokens = tokens.tolist()
        return list(zip(ids, tokens, strict=True))


# ----- commands: what handles and `submit` put on the loop's queue ---------------------------------

@dataclass(frozen=True)
class _Submit:
    job: _Job


@dataclass(frozen=True)
class _Stop:
    pass


_Command = _Submit | _Stop | bs.Cancel | bs.Pause | bs.Resume | bs.SetDeadline


class _Output:
    """One request's way out: its chunks (watermarked first, when the engine marks), then exactly one
    `finished`, from whichever thread completes them; nothing reaches the sink after `finished`."""

    def __init__(self, executor: BatchingExecutor, sink: ChunkSink, handle: _BatchHandle,
                 stage: WatermarkStage | None) -> None:
        self._executor = executor
        self._sink = sink
        self._handle = handle
        self._stage = stage
        self._lock = threading.Lock()
        self._over = False

    def emit(self, audio: np.ndarray, final: bool, deadline: float | None) -> None:
        """Deliver the next piece of audio (the last when `final`); called on the loop thread."""
        if self._stage is None:
            self._deliver(audio, final, deadline)
            return
        # The stage's one worker marks a phrase's chunks in order, and each callback runs as its
        # chunk completes, so the sink hears them in order.
        marked = self._stage.submit(self, audio, final)
        marked.add_done_callback(lambda done: self._marked(done, final, deadline))

    def _marked(self, done: Future, final: bool, deadline: float | None) -> None:
        try:
            audio = done.result()
        except Exception as exc:
            log.exception("watermarking failed")
            self.finish(exc)
            return
        self._deliver(audio, final, deadline)

    def _deliver(self, audio: np.ndarray, final: bool, deadline: float | None) -> None:
        with self._lock:
            if self._over:
                return
            if audio.size:
                if deadline is not None and self._executor._clock() > deadline:
                    self._executor._observer.deadline_miss()
                self._sink.chunk(audio)
                self._handle.progressed()
            if final:
                self._over = True
                self._handle.ended()
                self._sink.finished(None)

    def finish(self, error: BaseException | None) -> None:
        """End the request early (cancel, failure, shutdown); a no-op once it is over."""
        with self._lock:
            if self._over:
                return
            self._over = True
            self._handle.ended()
            self._sink.finished(error)
        if self._stage is not None:
            self._stage.discard(self)


@dataclass
class _Job:
    """One request inside the loop; fields after `handle` are the loop thread's alone."""

    id: int
    request: SynthesisRequest
    sink: ChunkSink
    priority: int
    handle: _BatchHandle
    submitted: float
    deadline: float | None
    rows: int = 0                                           # 2 with CFG, else 1
    group: int | None = None
    prefix: torch.Tensor | None = None
    settings: RowSettings | None = None
    seed: int = 0
    cap: int = 0
    decoder: PhraseDecoder | None = None
    output: _Output | None = None
    sampled: int = 0                                        # tokens read back (EOS excluded)
    pending: list[int] = field(default_factory=list)        # speech tokens not yet fed to the decoder
    done: bool = False


class _BatchHandle(RequestHandle):
    def __init__(self, executor: BatchingExecutor, request_id: int) -> None:
        self._executor = executor
        self._id = request_id
        self._lock = threading.Lock()
        self._progress_at: float | None = None   # set while the loop works on it (admitted, unpaused)
        self._paused = False
        self._over = False

    def cancel(self) -> None:
        self._executor._command(bs.Cancel(self._id))

    def pause(self) -> None:
        with self._lock:
            self._paused = True
        self._executor._command(bs.Pause(self._id))

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            if self._progress_at is not None:
                self._progress_at = time.monotonic()
        self._executor._command(bs.Resume(self._id))

    def set_deadline(self, deadline: float | None) -> None:
        self._executor._command(bs.SetDeadline(self._id, deadline))

    def busy_s(self) -> float:
        with self._lock:
            if self._over or self._paused or self._progress_at is None:
                return 0.0
            return time.monotonic() - self._progress_at

    # -- loop side ------------------------------------------------------------------------------
    def progressed(self) -> None:
        with self._lock:
            self._progress_at = time.monotonic()

    def ended(self) -> None:
        with self._lock:
            self._over = True


class BatchingExecutor(Executor):
    """Runs a Llama Chatterbox's requests in one continuous batch on the engine's device."""

    def __init__(self, engine: ChatterboxEngine, runner: T3Runner, schedule: bs.ScheduleConfig, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if schedule.row_budget > runner.row_budget:
            raise ValueError(f"row_budget: the policy's {schedule.row_budget} rows exceed the runner's "
                             f"{runner.row_budget}")
        self._engine = engine
        self._runner = runner
        self._policy = bs.BatchScheduler(schedule)
        self._clock = clock
        self._observer: EngineObserver = NullObserver()
        self._commands: queue.SimpleQueue[_Command] = queue.SimpleQueue()
        self._ids = itertools.count(1)
        self._jobs: dict[int, _Job] = {}
        self._closed = False
        self._lock = threading.Lock()
        self._readback = _Readback(engine.loaded.tts.s3gen.device, runner.row_budget)
        self._stop_token = int(engine.loaded.tts.t3.hp.stop_speech_token)
        self._stage = engine.watermark_stage if engine.watermark else None
        self._thread = threading.Thread(target=self._loop, name="voicewire-batch", daemon=True)
        self._thread.start()

    # ----- the executor interface --------------------------------------------------------------
    def submit(self, request: SynthesisRequest, sink: ChunkSink, *, priority: int,
               deadline: float | None) -> RequestHandle:
        with self._lock:
            if self._closed:
                raise RuntimeError("batching executor is shut down")
            request_id = next(self._ids)
            handle = _BatchHandle(self, request_id)
            self._commands.put(_Submit(_Job(request_id, request, sink, priority, handle, self._clock(), deadline)))
        return handle

    def shutdown(self, timeout_s: float = 5.0) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._commands.put(_Stop())
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("batching loop still busy at shutdown; exiting without it")

    def observe(self, observer: EngineObserver) -> None:
        self._observer = observer

    def limits(self) -> ExecutorLimits:
        config = self._policy.config
        return ExecutorLimits(engine_batch_rows=config.row_budget, engine_max_queue_wait_s=config.max_queue_wait_s)

    def _command(self, command: _Command) -> None:
        self._commands.put(command)   # after shutdown nobody reads it: the request already ended

    # ----- the loop ----------------------------------------------------------------------------
    def _loop(self) -> None:
        idle = True
        with torch.inference_mode():
            # Nothing changes while a plan is idle (every request queued for rows or paused) until
            # a command arrives, so the loop sleeps on the queue then.
            while self._apply_commands(block=idle and not self._readback):
                try:
                    idle = not self._iteration()
                except Exception as exc:   # the batch's state is unknown: end every request in it
                    log.exception("batching step failed; ending %d requests", len(self._jobs))
                    self._fail_all(exc)
                    idle = True
        self._fail_all(RuntimeError("batching executor is shut down"))

    def _apply_commands(self, block: bool) -> bool:
        """Apply every queued command (waiting for one first when idle); False once stopped."""
        commands: list[_Command] = []
        if block:
            commands.append(self._commands.get())
        while True:
            try:
                commands.append(self._commands.get_nowait())
            except queue.Empty:
                break
        now = self._clock()
        for command in commands:
            if isinstance(command, _Stop):
                return False
            if isinstance(command, _Submit):
                self._admit(command.job, now)
                continue
            job = self._jobs.get(command.id)
            if job is None:
                continue
            if isinstance(command, bs.SetDeadline):
                job.deadline = command.deadline
            self._policy.apply(command, now)
            if isinstance(command, bs.Cancel):
                self._end(job, None)
        return True

    def _admit(self, job: _Job, now: float) -> None:
        """Prepare the request (tokens, prefix, decoder) and hand it to the policy, or end it."""
        job.output = _Output(self, job.sink, job.handle, self._stage)
        try:
            spec = self._prepare(job)
        except Exception as exc:   # bad input (language, voice): this request only
            job.output.finish(exc)
            return
        refused = self._policy.submit(spec, now)
        if refused is not None:
            job.output.finish(RateLimited(f"engine: {refused.message}"))
            return
        self._jobs[job.id] = job

    def _prepare(self, job: _Job) -> bs.BatchRequest:
        engine = self._engine
        request = job.request
        gen = engine.generation(request.generation)
        engine._check_language(gen.language)
        t3 = engine.loaded.tts.t3
        text_tokens = engine._text_tokens(request.text, gen.language)
        job.cap = engine.tuning.max_new_tokens or token_cap(text_tokens.shape[-1])
        cfg = gen.cfg_weight > 0.0
        prefix = cond_mod.with_emotion(t3, request.voice.conditioning.t3_prefix, gen.exaggeration)
        job.prefix = prefix_embeds_for(t3, prefix, text_tokens, cfg)
        job.rows = job.prefix.shape[0]
        job.settings = RowSettings(temperature=gen.temperature, top_p=gen.top_p, min_p=gen.min_p,
                                   repetition_penalty=gen.repetition_penalty, cfg_weight=gen.cfg_weight,
                                   max_new_tokens=job.cap)
        job.seed = gen.seed if gen.seed is not None else random.getrandbits(63)
        _, acoustic = engine._generators(job.seed)
        job.decoder = engine.phrase_decoder(request.voice, gen, acoustic, job.cap)
        tuning = engine.tuning
        first = tuning.first_chunk_tokens if request.first_in_context else tuning.first_chunk_tokens_later
        return bs.BatchRequest(id=job.id, rows=job.rows, prefill_tokens=job.prefix.shape[1],
                               priority=job.priority, deadline=job.deadline, first_chunk_tokens=first,
                               max_chunk_tokens=max(first, tuning.max_chunk_tokens),
                               lookahead_tokens=job.decoder.lookahead, max_new_tokens=job.cap)

    def _iteration(self) -> bool:
        """Run one plan; False when it had nothing to do."""
        start = self._clock()
        plan = self._policy.plan(start)
        for request_id in plan.release:
            job = self._jobs.get(request_id)
            if job is not None and job.group is not None:
                self._runner.close(job.group)
                job.group = None
        for chunk in plan.prefill:
            job = self._jobs[chunk.id]
            if chunk.start == 0 and not self._open(job, start):
                continue
            self._runner.prefill(job.group, chunk.start, chunk.end)
        rows = 0
        decode = [self._jobs[i] for i in plan.decode if i in self._jobs]   # less any that failed to open
        if decode:
            tokens = self._runner.step([job.group for job in decode])
            self._readback.push([job.id for job in decode], tokens)
            rows = sum(job.rows for job in decode)
        # The step just queued keeps the device busy while the previous one's tokens come back.
        if len(self._readback) > 1 or (self._readback and not decode):
            self._tokens(self._readback.pop())
        if plan.flush:
            self._flush(plan.flush)
        if rows:
            self._observer.decode_step(rows, self._clock() - start)
        return not plan.idle

    def _open(self, job: _Job, now: float) -> bool:
        """Give the admitted request its rows; a request the runner refuses (its settings, or a prefix
        too long for a row) ends alone."""
        try:
            job.group = self._runner.open(job.prefix, job.settings, job.seed)
        except ValueError as exc:
            self._policy.apply(bs.Finished(job.id), now)
            self._end(job, OutOfRange(f"generation: {exc}"))
            return False
        job.prefix = None   # the runner holds it now
        self._observer.queue_wait(now - job.submitted)
        job.handle.progressed()
        return True

    def _tokens(self, pairs: list[tuple[int, int]]) -> None:
        now = self._clock()
        events: list[bs.Event] = []
        for request_id, token in pairs:
            job = self._jobs.get(request_id)
            if job is None or job.done:
                continue   # cancelled meanwhile, or the step after its EOS
            stop = token == self._stop_token
            speech = not stop and token < SPEECH_VOCAB
            if not stop:
                job.sampled += 1
            if speech:
                job.pending.append(token)
            job.done = stop or job.sampled >= job.cap
            events.append(bs.Tokens(request_id, int(speech), job.done))
        self._policy.apply_all(events, now)

    def _flush(self, items: list[bs.FlushItem]) -> None:
        jobs = []
        for item in items:
            job = self._jobs[item.id]
            decoder = job.decoder
            feed = item.tokens - len(decoder.tokens)
            for token in job.pending[:feed]:
                decoder.add(token)
            del job.pending[:feed]
            jobs.append(job)
        try:
            outputs = flush_many([(job.decoder, item.final) for job, item in zip(jobs, items, strict=True)])
        except Exception as exc:
            log.exception("flush failed; ending %d requests", len(jobs))
            for job in jobs:
                self._policy.apply(bs.Finished(job.id), self._clock())
                self._end(job, exc)
            return
        self._observer.flush_batch(len(items))
        now = self._clock()
        for job, item, audio in zip(jobs, items, outputs, strict=True):
            job.output.emit(audio, item.final, job.deadline)
            self._policy.apply(bs.FlushDone(job.id), now)
            if not item.final:
                self._advance_deadline(job, audio.size / self._engine.sample_rate, now)
            if item.final:
                self._forget(job)   # its output finishes once the last chunk is marked

    def _advance_deadline(self, job: _Job, seconds: float, now: float) -> None:
        """The listener plays this chunk after the audio it had (from its deadline) or, having none
        or having run dry, from now: its audio now runs out `seconds` later. So a request's next
        flush can wait for a batch while its listener is busy, without the driver reporting playback."""
        start = now if job.deadline is None else max(job.deadline, now)
        job.deadline = start + seconds
        self._policy.apply(bs.SetDeadline(job.id, job.deadline), now)

    def _forget(self, job: _Job) -> bool:
        """Drop the request from the loop and close its rows (if still held); False if already gone."""
        if self._jobs.pop(job.id, None) is None:
            return False
        if job.group is not None:
            self._runner.close(job.group)
            job.group = None
        return True

    def _end(self, job: _Job, error: BaseException | None) -> None:
        """The request is over early (cancel, failure): forget it and tell its sink, once."""
        if self._forget(job):
            job.output.finish(error)

    def _fail_all(self, error: BaseException) -> None:
        now = self._clock()
        for job in list(self._jobs.values()):
            self._policy.apply(bs.Finished(job.id), now)
            try:
                self._end(job, error)
            except Exception:   # a runner that failed may fail to close too; the sink must still hear
                job.output.finish(error)
        self._readback = _Readback(self._engine.loaded.tts.s3gen.device, self._runner.row_budget)
