"""The two ways TTS is wired to an LLM without voicewire, on the same engine and token schedule.

(a) wait for the whole reply, then synthesize it in one call (how the hosted API and the
`chatterbox` package's `generate()` are used today); (b) sentence at a time: each sentence goes to
the engine once the LLM has finished it, one call after another, with no streaming inside a call.

The synthesis calls are real and timed; they are placed on the reply's token schedule, which is
exactly what happens when the LLM runs elsewhere: the caller only waits for text, and one
synthesis runs at a time. Network and encoding are free here, which favours the baselines.
"""

from __future__ import annotations

import re
import time

import numpy as np

from .corpus import Reply
from .engines import OneShot
from .measure import Arrival, TurnAudio, measure_turn
from .scenario import Schedule, TurnRecord, record

_END = re.compile(r"""[.!?…]+["'”’)\]]*(?=\s|$)|\n""")
_TITLES = frozenset({"dr", "mr", "mrs", "ms", "st", "prof", "mt"})


def sentences(text: str) -> list[tuple[int, int]]:
    """Spans that partition `text` into sentences (list lines count as sentences), whitespace kept."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _END.finditer(text):
        word = re.search(r"(\w+)$", text[start : match.start()])
        if match.group() == "." and word and word.group(1).lower() in _TITLES:
            continue
        end = match.end()
        while end < len(text) and text[end].isspace():
            end += 1
        if text[start:end].strip():
            spans.append((start, end))
            start = end
    if text[start:].strip():
        spans.append((start, len(text)))
    elif spans:
        spans[-1] = (spans[-1][0], len(text))
    return spans


def _timed(one_shot: OneShot, text: str, phrases: int):
    began = time.perf_counter()
    audio = one_shot.synthesize(text, phrases)
    return audio, time.perf_counter() - began


def whole_reply(
    reply: Reply, sched: Schedule, one_shot: OneShot, buffers_s: tuple[float, ...], phrases: int = 1
) -> TurnRecord:
    """Baseline (a): text complete -> one call -> all audio at once.

    `phrases` is how many phrases voicewire cut the reply into; an engine with a per-phrase token
    budget gets that many budgets, so both paths make about the same amount of audio.
    """
    ready = sched.offsets[-1]
    audio, took = _timed(one_shot, sched.text.strip(), phrases)
    turn = TurnAudio((Arrival(ready + took, audio.size),), audio, one_shot.sample_rate)
    return record(
        reply,
        "baseline_a",
        sched,
        turn,
        measure_turn(turn, buffers_s),
        text_wait_s=ready,
        synth_s=took,
        phrases=1,
        first_phrase=sched.text,
        extra={"synth_s_total": took},
    )


def sentence_at_a_time(
    reply: Reply, sched: Schedule, one_shot: OneShot, buffers_s: tuple[float, ...]
) -> TurnRecord:
    """Baseline (b): each sentence synthesized in one call once its last character has arrived."""
    text = sched.text
    spans = sentences(text)
    arrivals, pieces, free, busy, first = [], [], 0.0, 0.0, None
    for start, end in spans:
        piece = text[start:end].strip()
        ready = sched.available_at(start + len(text[start:end].rstrip()))
        audio, took = _timed(one_shot, piece, 1)
        begin = max(ready, free)
        free = begin + took
        busy += took
        if first is None:
            first = (ready, took)
        arrivals.append(Arrival(free, audio.size))
        pieces.append(audio)
    turn = TurnAudio(tuple(arrivals), np.concatenate(pieces), one_shot.sample_rate)
    assert first is not None
    return record(
        reply,
        "baseline_b",
        sched,
        turn,
        measure_turn(turn, buffers_s),
        text_wait_s=first[0],
        synth_s=first[1],
        phrases=len(spans),
        first_phrase=text[slice(*spans[0])],
        extra={"synth_s_total": busy},
    )
