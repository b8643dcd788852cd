"""One-shot speech: a complete text in, shaped engine-rate audio out, along the websocket's path.

The HTTP endpoints have the whole text up front, but they speak it exactly as a websocket turn
would: the same phrase cutter and normalizer per engine, the same inference pool, the same
phrase-join shaping and pauses. The next phrase's synthesis starts as soon as the current one's
finishes, so it overlaps the sending of the current one, and the first phrase is cut early for TTFA.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np

from stream.audio.codecs import PhraseShaper, pause_after
from stream.core.errors import InternalError, ProtocolError
from stream.core.normalizer import NormalizerOptions, normalize
from stream.core.protocol import GenerationSettings
from stream.core.segmenter import CutterConfig, PhraseCutter
from stream.engines.base import SynthesisRequest, Voice
from stream.inference.pool import ChunkStream
from stream.server.runtime import Runtime

log = logging.getLogger("voicewire.speech")

# Typical speaking rate. With the whole text at hand, every phrase already cut is audio the
# listener will hear before the next one is needed, so the cutter is told that much is "ahead"
# and cuts later phrases at sentence boundaries instead of starving-mode clauses.
SPEECH_CHARS_PER_S = 15.0
_WORDS = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True)
class SpokenPhrase:
    text: str          # exactly as given
    speak: str         # normalized for the engine; "" means nothing to say


def cut_phrases(text: str, engine_name: str) -> list[SpokenPhrase]:
    """Cut a complete text into phrases with the engine's cutter policy and normalize each one."""
    cutter = PhraseCutter(CutterConfig.for_engine(engine_name))
    options = NormalizerOptions.for_engine(engine_name)
    now = time.monotonic()
    texts: list[str] = []
    emitted = 0
    for word in _WORDS.findall(text):
        cutter.set_audio_ahead(emitted / SPEECH_CHARS_PER_S)
        for phrase in cutter.push(word, now):
            texts.append(phrase)
            emitted += len(phrase)
    texts += cutter.end()
    return [SpokenPhrase(t, normalize(t, options)) for t in texts]


async def speak(runtime: Runtime, text: str, voice: Voice, generation: GenerationSettings) -> AsyncIterator[np.ndarray]:
    """Yield mono float32 audio at the engine's rate for `text`, phrase by phrase.

    Closing the iterator early (the client went away) stops the running synthesis jobs. An engine
    failure raises `InternalError`.
    """
    engine = runtime.engine
    phrases = [p for p in cut_phrases(text, engine.name) if p.speak]
    shaper = PhraseShaper(engine.sample_rate)
    jobs: dict[int, tuple[ChunkStream, float]] = {}   # started, not yet fully sent
    next_index = 0
    closing = False

    def start_next() -> None:
        nonlocal next_index
        if closing or next_index >= len(phrases):
            return
        index, next_index = next_index, next_index + 1
        request = SynthesisRequest(text=phrases[index].speak, voice=voice, generation=generation,
                                   first_in_context=index == 0)
        limits = runtime.settings.limits
        job = runtime.pool.stream(lambda cancel: engine.synthesize(request, cancel), threading.Event(),
                                  lookahead=limits.send_buffer_chunks, stall_timeout_s=limits.engine_stall_timeout_s,
                                  priority=0 if index == 0 else 1)
        jobs[index] = (job, time.monotonic())
        # The next phrase's synthesis starts when this one's worker is free, overlapping the sending.
        job.done.add_done_callback(lambda _: start_next())

    try:
        for index, phrase in enumerate(phrases):
            if index not in jobs:  # normally already started when the previous phrase's worker finished
                start_next()
            job, started = jobs[index]
            first_chunk = True
            async for chunk in job:
                if first_chunk:
                    runtime.metrics.engine_first_chunk.observe(time.monotonic() - started)
                    first_chunk = False
                yield shaper.push(chunk)
            last = index == len(phrases) - 1
            yield shaper.finish(0.0 if last else pause_after(phrase.text))
            runtime.metrics.characters.inc(len(phrase.text))
            del jobs[index]
    except ProtocolError:
        raise
    except Exception as exc:
        log.exception("one-shot synthesis failed")
        raise InternalError(f"synthesis failed: {type(exc).__name__}: {exc}") from exc
    finally:
        closing = True
        for job, _ in jobs.values():
            job.stop()
