"""ElevenLabs-compatible endpoints, driven by the real client libraries (only their URL and key changed)."""

from __future__ import annotations

import re

import httpx
from pipecat.frames.frames import (
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSTextFrame,
)
from pipecat.pipeline.worker import PipelineParams
from pipecat.services.elevenlabs.tts import ElevenLabsTTSService
from pipecat.tests.utils import SleepFrame, run_test

from clients import llm_deltas

REPLY = "Sure, I can help with that. The museum opens at nine, and tickets cost twelve dollars."
LONG = ("Let me tell you a long story about the sea. It begins on a grey morning in a small harbour town, "
        "where the fishing boats were already out and the gulls were loud. Nobody expected the storm. ") * 6


def llm_turn(text: str) -> list:
    return [LLMFullResponseStartFrame(), *(LLMTextFrame(d) for d in llm_deltas(text)), LLMFullResponseEndFrame()]


def metric(server, name: str, labels: str) -> float:
    body = httpx.get(f"{server.http_url}/metrics").text
    match = re.search(rf"^{name}\{{{labels}\}} (\S+)$", body, re.M)
    return float(match.group(1)) if match else 0.0


def pipecat_tts(server) -> ElevenLabsTTSService:
    return ElevenLabsTTSService(api_key="unused", url=f"ws://127.0.0.1:{server.port}/elevenlabs",
                                settings=ElevenLabsTTSService.Settings(voice="default", model="eleven_flash_v2_5"))


async def test_pipecat_speaks_a_turn_with_word_timestamps(server):
    down, _ = await run_test(pipecat_tts(server), frames_to_send=[*llm_turn(REPLY), SleepFrame(0.5)],
                             pipeline_params=PipelineParams(audio_out_sample_rate=16000))
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert audio and all(f.sample_rate == 16000 for f in audio)
    assert 3.0 < sum(len(f.audio) for f in audio) / 2 / 16000 < 10.0
    words = [f for f in down if isinstance(f, TTSTextFrame)]
    assert " ".join(f.text for f in words).split() == REPLY.split()
    pts = [f.pts for f in words]
    assert pts == sorted(pts) and pts[-1] > pts[0]
    ignored = 'endpoint="elevenlabs/multi-stream-input",field="model_id"'
    assert metric(server, "voicewire_compat_ignored_fields_total", ignored) >= 1


async def test_pipecat_interruption_stops_the_context_and_no_stale_audio_follows(server):
    tts = pipecat_tts(server)
    down, _ = await run_test(tts, frames_to_send=[
        *llm_turn(LONG), SleepFrame(1.0), InterruptionFrame(), SleepFrame(1.0),
        *llm_turn("New answer."), SleepFrame(1.5)])
    cut = next(i for i, f in enumerate(down) if isinstance(f, InterruptionFrame))
    first_ids = {f.context_id for f in down[:cut] if isinstance(f, TTSAudioRawFrame)}
    later = [f for f in down[cut:] if isinstance(f, TTSAudioRawFrame)]
    assert len(first_ids) == 1, "audio of the long turn should have started before the interruption"
    assert later and not first_ids & {f.context_id for f in later}, "stale audio after the interruption"
    assert sum(len(f.audio) for f in down[:cut] if isinstance(f, TTSAudioRawFrame)) / 2 / 24000 < 40.0
    assert metric(server, "voicewire_contexts_total", 'outcome="cancelled"') == 1
