"""The scenario driver: an LLM-like token stream over the real websocket, measured at the client.

Each reply is split into LLM-like deltas (`clients.tokens.llm_deltas`) and given a send schedule
(token rate with jitter, seeded per reply) that the baselines reuse, so every path of one reply
waits for exactly the same text at exactly the same moments.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np

from clients import AudioEvent, DoneEvent, PhraseEvent, VoicewireClient
from clients.tokens import llm_deltas
from stream.audio.codecs import decode_samples

from .corpus import Reply
from .measure import Arrival, TurnAudio, TurnMetrics, measure_turn


@dataclass(frozen=True)
class Pacing:
    tokens_per_second: float = 30.0
    jitter: float = 0.3  # each inter-token interval scaled by 1 +- uniform(jitter)
    first_delay_s: float = 0.0  # the LLM's own time to first token, before t0 (not part of TTFA)


@dataclass(frozen=True)
class Schedule:
    """A reply as deltas and the offset from t0 (first delta sent) at which each one is sent."""

    deltas: tuple[str, ...]
    offsets: tuple[float, ...]

    @property
    def text(self) -> str:
        return "".join(self.deltas)

    def available_at(self, end: int) -> float:
        """When the first `end` characters of the text have all been sent."""
        sent = 0
        for delta, offset in zip(self.deltas, self.offsets, strict=True):
            sent += len(delta)
            if sent >= end:
                return offset
        raise ValueError(f"the text has only {sent} characters, not {end}")


def schedule(text: str, pacing: Pacing, seed: int) -> Schedule:
    """Deltas of `text` with the same timing law as `clients.tokens.paced`, but exposed."""
    rng = random.Random(seed)
    deltas = llm_deltas(text)
    offsets, due = [], 0.0
    for _ in deltas:
        offsets.append(due)
        if pacing.tokens_per_second > 0:
            due += (1.0 / pacing.tokens_per_second) * (1.0 + rng.uniform(-pacing.jitter, pacing.jitter))
    return Schedule(tuple(deltas), tuple(offsets))


@dataclass
class TurnRecord:
    """One turn of one path (ours or a baseline), as it goes into the JSON."""

    reply: str
    kind: str
    path: str  # "voicewire", "baseline_a", "baseline_b", "baseline_c" or "baseline_c_stock"
    tokens: int
    text_s: float  # last delta sent, from t0
    ttfa_ms: float | None
    ttfb_ms: float
    leading_silence_ms: float | None
    audio_s: float
    gaps_ms: dict[str, list[float]]
    delivery_rtf: float | None  # (last audio - first audio) / audio length: above 1 the player must starve
    text_wait_ms: float | None  # t0 -> first phrase cut (ours: `phrase` received; baselines: text complete)
    synth_ms: float | None  # ours: first `phrase` -> first audio; baselines: the first synthesis call
    server_ttfa_ms: float | None = None
    phrases: int = 0
    first_phrase: str = ""
    session: int = 0
    run: int = 0  # pass over the corpus: a reply's turns are paired within one pass
    arrivals_ms: list[tuple[float, float]] = field(default_factory=list)  # (arrival, audio length) per piece
    phrases_at_ms: list[float] = field(default_factory=list)  # ours: each `phrase` message's arrival
    extra: dict[str, float] = field(default_factory=dict)


def record(
    reply: Reply,
    path: str,
    sched: Schedule,
    audio: TurnAudio,
    metrics: TurnMetrics,
    text_wait_s: float | None,
    synth_s: float | None,
    **fields,
) -> TurnRecord:
    first, last = audio.arrivals[0].at_s, audio.arrivals[-1].at_s
    return TurnRecord(
        reply=reply.id,
        kind=reply.kind,
        path=path,
        tokens=len(sched.deltas),
        text_s=sched.offsets[-1],
        ttfa_ms=metrics.ttfa_ms,
        ttfb_ms=metrics.ttfb_ms,
        leading_silence_ms=metrics.leading_silence_ms,
        audio_s=metrics.audio_s,
        gaps_ms=metrics.gaps,
        delivery_rtf=(last - first) / metrics.audio_s if metrics.audio_s > 0 else None,
        text_wait_ms=None if text_wait_s is None else text_wait_s * 1000,
        synth_ms=None if synth_s is None else synth_s * 1000,
        arrivals_ms=[
            (round(a.at_s * 1000, 1), round(a.samples * 1000 / audio.sample_rate, 1)) for a in audio.arrivals
        ],
        **fields,
    )


async def stream_turn(
    client: VoicewireClient,
    reply: Reply,
    sched: Schedule,
    pacing: Pacing,
    generation: dict,
    buffers_s: tuple[float, ...],
) -> TurnRecord:
    """Send the reply on its schedule as one context and measure what comes back."""
    ctx = client.context(generation=generation)
    encoding, rate = client.output_format["encoding"], client.output_format["sample_rate"]

    async def send() -> None:
        if pacing.first_delay_s:
            await asyncio.sleep(pacing.first_delay_s)
        start = time.monotonic()
        for delta, offset in zip(sched.deltas, sched.offsets, strict=True):
            wait = start + offset - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await ctx.send_text(delta)
        await ctx.end()

    sender = asyncio.create_task(send())
    audio: list[AudioEvent] = []
    phrases: list[PhraseEvent] = []
    done: DoneEvent | None = None
    try:
        async for event in ctx.events():
            if isinstance(event, AudioEvent):
                audio.append(event)
            elif isinstance(event, PhraseEvent):
                phrases.append(event)
            elif isinstance(event, DoneEvent):
                done = event
    finally:
        await sender
    if not audio or done is None or ctx.sent_first_text_at is None:
        raise RuntimeError(f"turn {reply.id} ended without audio")
    t0 = ctx.sent_first_text_at
    pcm = [decode_samples(e.data, encoding) for e in audio]
    turn = TurnAudio(
        tuple(Arrival(e.received_at - t0, p.size) for e, p in zip(audio, pcm, strict=True)),
        np.concatenate(pcm),
        rate,
    )
    metrics = measure_turn(turn, buffers_s)
    phrase_at = phrases[0].received_at - t0 if phrases else None
    return record(
        reply,
        "voicewire",
        sched,
        turn,
        metrics,
        text_wait_s=phrase_at,
        synth_s=None if phrase_at is None else turn.arrivals[0].at_s - phrase_at,
        server_ttfa_ms=done.ttfa_ms,
        phrases=done.phrases,
        first_phrase=phrases[0].text if phrases else "",
        phrases_at_ms=[round((p.received_at - t0) * 1000, 1) for p in phrases],
    )


@contextlib.asynccontextmanager
async def keepalive(client: VoicewireClient, every_s: float = 20.0) -> AsyncIterator[None]:
    """Keep the session alive while the benchmark does slow work (baselines) between turns."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(every_s)
            await client.send({"type": "keepalive"})

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
