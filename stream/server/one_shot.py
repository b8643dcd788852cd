"""The one-shot driver: a complete text in, shaped engine-rate audio out, through the same core.

The HTTP endpoints have the whole text up front, yet they speak it exactly as a websocket turn
would: the session cuts it with the engine's policy (first phrase early for TTFA), starts each
phrase's synthesis as the previous one finishes producing, and shapes phrase joins; this driver
only runs the jobs and yields the audio.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import aclosing

import numpy as np

from stream.audio.phrase_audio import ShapedPhraseAudio
from stream.core.actions import Action, Complete, SendAudio, SendMessage
from stream.core.errors import InternalError
from stream.core.protocol import GenerationSettings
from stream.core.server_messages import PhraseMessage
from stream.core.session import Session
from stream.core.synthesis import Voice
from stream.server.runtime import Runtime
from stream.server.synthesis_jobs import SynthesisJobs

# Typical speaking rate. With the whole text at hand, every phrase already cut is audio the
# listener will hear before the next one is needed, so later phrases are cut at sentence boundaries.
SPEECH_CHARS_PER_S = 15.0


async def speak(runtime: Runtime, text: str, voice: Voice, generation: GenerationSettings) -> AsyncIterator[np.ndarray]:
    """Yield mono float32 audio at the engine's rate for `text`, phrase by phrase.

    Closing the iterator early (the client went away) stops the running synthesis jobs. An engine
    failure raises its protocol error (`InternalError` for anything else).
    """
    async with aclosing(speak_timed(runtime, text, voice, generation)) as events:
        async for event in events:
            if isinstance(event, SendAudio):
                yield event.payload


async def speak_timed(runtime: Runtime, text: str, voice: Voice,
                      generation: GenerationSettings) -> AsyncIterator[SendAudio | PhraseMessage]:
    """`speak`, with the timing: each phrase's `PhraseMessage` (its text and `start_ms`) before its
    audio, and each piece of audio as the session's `SendAudio` (samples in `payload`, its times)."""
    rate = runtime.engine.sample_rate
    session = Session(runtime.settings.limits, runtime.engine.policy,
                      lambda _encoding, _rate: ShapedPhraseAudio(rate), time.monotonic())
    outbound: deque[Action] = deque()
    jobs = SynthesisJobs(runtime, session, lambda actions: outbound.extend(jobs.run(actions)))
    try:
        outbound.extend(jobs.run(session.say("speech", text, voice, generation, ("pcm_f32le", rate), time.monotonic(),
                                             SPEECH_CHARS_PER_S)))
        while True:
            while outbound:
                action = outbound.popleft()
                if isinstance(action, SendAudio):
                    yield action
                elif isinstance(action, Complete):
                    runtime.metrics.characters.inc(len(text))
                    return
                elif isinstance(action, SendMessage) and isinstance(action.message, PhraseMessage):
                    yield action.message
                elif isinstance(action, SendMessage) and action.message.type == "error":
                    raise jobs.failure or InternalError(action.message.message)
            actions = await jobs.step()
            if actions is None:  # every phrase is cut up front, so a phrase in flight always has a job
                raise InternalError("speech: the session stopped reading before the text was spoken")
            outbound.extend(jobs.run(actions))
    finally:
        jobs.stop_all()
