"""A scripted stand-in for the drivers: feeds a `Session` and keeps the books on what it asked for.

No socket, no thread, no sleep: time is a number the test moves, engine events are method calls.
Audio "chunks" are sample counts, so every sample sent can be added up exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stream.core.actions import (
    Action,
    Close,
    Complete,
    Refund,
    SendAudio,
    SendMessage,
    StartJob,
    StopJob,
)
from stream.core.limits import Limits
from stream.core.normalizer import NormalizerOptions
from stream.core.phrase_audio import AudioPiece
from stream.core.protocol import TextMessage
from stream.core.segmenter import CutterConfig
from stream.core.session import Session
from stream.core.speech_policy import SpeechPolicy
from stream.core.synthesis import Voice

VOICE = Voice(id="joe", name="joe")
RATE = 1000          # output samples per second: 1 sample = 1 ms, so timings read plainly
PAUSE = 50           # samples of pause the fake audio adds after a sentence end
POLICY = SpeechPolicy(
    cutter=CutterConfig(first_min_words=2, first_max_words=5, min_words=2, soft_chars=120, hard_chars=300,
                        stall_s=0.3, ahead_relaxed_s=3.0, ahead_starving_s=0.5, relaxed_min_chars=80),
    normalizer=NormalizerOptions(spell_out_numbers=False))


class CountingAudio:
    """Chunks are sample counts; a phrase ending in '.' gets a pause unless it is the last."""

    def push(self, chunk: int) -> AudioPiece:
        return AudioPiece(chunk, chunk)

    def end_phrase(self, text: str, last: bool) -> AudioPiece:
        pause = 0 if last or not text.rstrip().endswith(".") else PAUSE
        return AudioPiece(pause, pause)


@dataclass
class Script:
    """Executes actions as a driver would, recording them; `running` are jobs started, not stopped or ended."""

    limits: Limits = field(default_factory=Limits)
    now: float = 0.0
    actions: list[Action] = field(default_factory=list)
    running: dict[int, StartJob] = field(default_factory=dict)
    stopped: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.session = Session(self.limits, POLICY, lambda _encoding, _rate: CountingAudio(), self.now)

    def run(self, actions: list[Action]) -> list[Action]:
        for action in actions:
            if isinstance(action, StartJob):
                assert action.job_id not in self.running
                self.running[action.job_id] = action
            elif isinstance(action, StopJob):
                self.running.pop(action.job_id, None)
                self.stopped.append(action.job_id)
        self.actions += actions
        return actions

    # -- client ---------------------------------------------------------------------------------
    def text(self, cid: str, text: str, **fields) -> list[Action]:
        msg = TextMessage(type="text", context_id=cid, text=text, **fields)
        self.session.admit(self.now)
        self.session.check_text(msg)
        return self.run(self.session.text(msg, self.now, VOICE, ("pcm_s16le", RATE)))

    def phrases(self, cid: str, *texts: str) -> list[Action]:
        """Each text as its own phrase (sent, then flushed), e.g. a current phrase and the next."""
        return [a for text in texts for a in self.text(cid, text) + self.flush(cid)]

    def prefetching(self, cid: str = "a") -> tuple[int, int]:
        """Two phrases; the first one's synthesis has produced a chunk and finished, so the second
        is prefetched. Returns (the job being read, the prefetched job)."""
        self.phrases(cid, "One two three.", " Four five six seven.")
        current = self.reading()
        self.chunk(100)
        prefetched = [a for a in self.produced() if isinstance(a, StartJob)]
        assert len(prefetched) == 1
        return current, prefetched[0].job_id

    def end(self, cid: str) -> list[Action]:
        return self.run(self.session.end(cid, self.now))

    def flush(self, cid: str) -> list[Action]:
        return self.run(self.session.flush(cid, self.now))

    def cancel(self, cid: str) -> list[Action]:
        return self.run(self.session.cancel(cid, self.now))

    def at(self, now: float) -> list[Action]:
        self.now = now
        return self.run(self.session.tick(now))

    # -- engine ---------------------------------------------------------------------------------
    def reading(self) -> int:
        job = self.session.reading()
        assert job is not None, "the session reads no job now"
        return job

    def chunk(self, samples: int, job: int | None = None) -> list[Action]:
        return self.run(self.session.chunk(self.reading() if job is None else job, samples, self.now))

    def produced(self, job: int | None = None) -> list[Action]:
        return self.run(self.session.job_produced(self.reading() if job is None else job, self.now))

    def ended(self, job: int | None = None) -> list[Action]:
        job = self.reading() if job is None else job
        if job == self.session.reading():  # its chunks are all read: the job is over
            self.running.pop(job, None)
        return self.run(self.session.job_ended(job, self.now))

    def speak_phrase(self, samples: int = 100) -> list[Action]:
        """The engine says the phrase being read in one chunk, finishes producing, then its end is read."""
        return self.chunk(samples) + self.produced() + self.ended()

    def speak_all(self, samples: int = 100) -> list[Action]:
        out: list[Action] = []
        while self.session.reading() is not None:
            out += self.speak_phrase(samples)
        return out

    # -- what went out -------------------------------------------------------------------------
    def messages(self, kind: str | None = None) -> list:
        sent = [a.message for a in self.actions if isinstance(a, SendMessage | Complete)]
        return [m for m in sent if kind is None or m.type == kind]

    def audio(self, cid: str) -> list[SendAudio]:
        return [a for a in self.actions if isinstance(a, SendAudio) and a.context_id == cid]

    def refunded(self) -> int:
        return sum(a.characters for a in self.actions if isinstance(a, Refund))

    def closes(self) -> list[Close]:
        return [a for a in self.actions if isinstance(a, Close)]


def of(actions: list[Action], kind: type) -> list:
    return [a for a in actions if isinstance(a, kind)]
