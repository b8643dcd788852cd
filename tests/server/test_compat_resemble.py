"""The Resemble-compatible websocket, driven by pipecat's ResembleAITTSService (only its URL and key changed)."""

from __future__ import annotations

from pipecat.frames.frames import (
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
)
from pipecat.pipeline.worker import PipelineParams
from pipecat.services.resembleai.tts import ResembleAITTSService
from pipecat.tests.utils import SleepFrame, run_test

from clients import llm_deltas

REPLY = "Sure, I can help with that. The museum opens at nine. Tickets cost twelve dollars."


async def test_pipecat_resemble_speaks_a_multi_sentence_reply(server):
    tts = ResembleAITTSService(api_key="unused", url=f"ws://127.0.0.1:{server.port}/resemble/stream",
                               settings=ResembleAITTSService.Settings(voice="default"))
    frames = [LLMFullResponseStartFrame(), *(LLMTextFrame(d) for d in llm_deltas(REPLY)), LLMFullResponseEndFrame()]
    down, _ = await run_test(tts, frames_to_send=[*frames, SleepFrame(2.0)],
                             pipeline_params=PipelineParams(audio_out_sample_rate=22050))
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert audio and all(f.sample_rate == 22050 for f in audio)
    assert 3.0 < sum(len(f.audio) for f in audio) / 2 / 22050 < 10.0   # every sentence, not just the first
    assert len({f.context_id for f in audio}) == 3                     # pipecat sends one request per sentence
