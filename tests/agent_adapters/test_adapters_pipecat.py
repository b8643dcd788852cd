"""The pipecat service inside a real pipecat pipeline, against a real voicewire server (piper)."""

from __future__ import annotations

import base64
import json
import re

import httpx
import numpy as np
import pytest
from pipecat.frames.frames import (
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from pipecat.pipeline.worker import PipelineParams
from pipecat.tests.utils import SleepFrame, run_test

from agent_adapters.pipecat_tts import VoicewireTTSService
from clients import llm_deltas
from stream.core.server_messages import AudioMessage, DoneMessage, PhraseMessage, dump_message
from tests import deprecations
from tests.scripted_peer import ready, scripted_server, with_extra_field


@pytest.fixture(autouse=True)
def deprecations_fail():
    """Pipecat's deprecations raise where they are called (tests/deprecations.py)."""
    with deprecations.raised():
        yield

REPLY = "Sure, I can help with that. The museum opens at nine, and tickets cost twelve dollars."
LONG = ("Let me tell you a long story about the sea. It begins on a grey morning in a small harbour town, "
        "where the fishing boats were already out and the gulls were loud. Nobody expected the storm. ") * 6


def llm_turn(text: str) -> list:
    return [LLMFullResponseStartFrame(), *(LLMTextFrame(d) for d in llm_deltas(text)), LLMFullResponseEndFrame()]


def cancelled_contexts(server) -> float:
    body = httpx.get(f"{server.http_url}/metrics").text
    match = re.search(r'^voicewire_contexts_total\{outcome="cancelled"\} (\S+)$', body, re.M)
    return float(match.group(1)) if match else 0.0


async def test_turn_produces_audio_at_pipeline_rate_and_word_frames(server):
    tts = VoicewireTTSService(url=server.ws_url, settings=VoicewireTTSService.Settings(exaggeration=0.8))
    down, _ = await run_test(tts, frames_to_send=[*llm_turn(REPLY), SleepFrame(0.5)],
                             pipeline_params=PipelineParams(audio_out_sample_rate=16000))
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert audio and all(f.sample_rate == 16000 and f.num_channels == 1 for f in audio)
    seconds = sum(len(f.audio) for f in audio) / 2 / 16000
    assert 3.0 < seconds < 10.0
    kinds = [type(f) for f in down]
    assert kinds.index(TTSStartedFrame) < kinds.index(TTSAudioRawFrame) < kinds.index(TTSStoppedFrame)
    assert len({f.context_id for f in audio}) == 1  # one voicewire context per LLM turn
    words = [f.text for f in down if isinstance(f, TTSTextFrame)]
    assert " ".join(words).split() == REPLY.split()  # phrase timing became word timestamps
    pts = [f.pts for f in down if isinstance(f, TTSTextFrame)]
    assert pts == sorted(pts) and pts[-1] > pts[0]


async def test_engine_rate_is_resampled_when_the_pipeline_rate_is_not_served(server):
    tts = VoicewireTTSService(url=server.ws_url)
    down, _ = await run_test(tts, frames_to_send=[*llm_turn("Short and sweet."), SleepFrame(0.3)],
                             pipeline_params=PipelineParams(audio_out_sample_rate=32000))
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert audio and all(f.sample_rate == 32000 for f in audio)
    assert 0.5 < sum(len(f.audio) for f in audio) / 2 / 32000 < 4.0


async def check_interruption_cuts_the_turn(tts) -> None:
    """A long turn, an interruption mid-turn, then a new turn: the long turn's audio stops at the
    interruption (cut short, not played out) and none of it follows the interruption."""
    down, _ = await run_test(tts, frames_to_send=[
        *llm_turn(LONG), SleepFrame(1.0), InterruptionFrame(), SleepFrame(1.0),
        *llm_turn("New answer."), SleepFrame(1.5)])
    cut = next(i for i, f in enumerate(down) if isinstance(f, InterruptionFrame))
    first_ids = {f.context_id for f in down[:cut] if isinstance(f, TTSAudioRawFrame)}
    later = [f for f in down[cut:] if isinstance(f, TTSAudioRawFrame)]
    assert len(first_ids) == 1, "audio of the long turn should have started before the interruption"
    assert later and not first_ids & {f.context_id for f in later}, "stale audio after the interruption"
    spoken_before = sum(len(f.audio) for f in down[:cut] if isinstance(f, TTSAudioRawFrame)) / 2 / 24000
    assert spoken_before < 40.0  # the long turn (about 70 s of speech) was cut short, not played out


async def test_interruption_cancels_on_the_server_and_no_stale_audio_follows(server):
    before = cancelled_contexts(server)
    await check_interruption_cuts_the_turn(VoicewireTTSService(url=server.ws_url))
    assert cancelled_contexts(server) == before + 1


async def test_settings_frame_applies_to_the_next_context(server):
    tts = VoicewireTTSService(url=server.ws_url)
    delta = VoicewireTTSService.Settings(exaggeration=1.5, temperature=0.0)
    down, _ = await run_test(tts, frames_to_send=[
        *llm_turn("First turn."), SleepFrame(1.0), TTSUpdateSettingsFrame(delta=delta),
        *llm_turn("Second turn."), SleepFrame(1.0)])
    assert tts._settings.exaggeration == 1.5
    assert tts._turn_settings() == {"generation": {"exaggeration": 1.5, "temperature": 0.0}}
    contexts = []
    for f in down:
        if isinstance(f, TTSAudioRawFrame) and f.context_id not in contexts:
            contexts.append(f.context_id)
    assert len(contexts) == 2


@pytest.mark.parametrize("rate", [8000, 48000])
async def test_native_server_rates_are_requested_directly(server, rate):
    tts = VoicewireTTSService(url=server.ws_url)
    down, _ = await run_test(tts, frames_to_send=[*llm_turn("Hello."), SleepFrame(0.3)],
                             pipeline_params=PipelineParams(audio_out_sample_rate=rate))
    assert tts._wire_rate == rate
    assert all(f.sample_rate == rate for f in down if isinstance(f, TTSAudioRawFrame))


async def test_a_newer_servers_extra_fields_and_message_types_do_not_disturb_a_turn():
    pcm = np.zeros(4800, "<i2").tobytes()  # 0.2 s at 24 kHz
    opened: set[str] = set()

    def newer_server(message: dict) -> list[str]:
        """A turn as a newer server sends it: every message with a field, and a type, unknown here."""
        cid = message.get("context_id")
        if message["type"] == "init":
            replies = [ready(24000)]
        elif message["type"] == "text" and cid not in opened:
            opened.add(cid)
            replies = [PhraseMessage(context_id=cid, index=0, text=REPLY, start_ms=0),
                       {"type": "word_timestamps", "context_id": cid, "words": []},
                       AudioMessage(context_id=cid, seq=0, audio=base64.b64encode(pcm).decode(), start_ms=0,
                                    duration_ms=200)]
        elif message["type"] == "end":
            replies = [DoneMessage(context_id=cid, ttfa_ms=5, audio_ms=200, characters=len(REPLY), phrases=1)]
        else:
            replies = []
        return [json.dumps(r) if isinstance(r, dict) else with_extra_field(dump_message(r)) for r in replies]

    async with scripted_server(newer_server) as peer:
        tts = VoicewireTTSService(url=peer.url)
        down, _ = await run_test(tts, frames_to_send=[*llm_turn(REPLY), SleepFrame(0.5)],
                                 pipeline_params=PipelineParams(audio_out_sample_rate=24000))
    assert b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame)) == pcm
    assert " ".join(f.text for f in down if isinstance(f, TTSTextFrame)).split() == REPLY.split()
    assert any(isinstance(f, TTSStoppedFrame) for f in down)


async def test_a_deprecated_pipecat_call_fails_these_tests():
    from pipecat.workers.runner import WorkerRunner

    with pytest.raises(DeprecationWarning, match="`WorkerRunner.run\\(worker\\)` is deprecated"):
        await WorkerRunner(handle_sigint=False).run(object())


def test_the_service_derives_from_no_deprecated_pipecat_class():
    # pipecat marks classes with PEP 702 `@deprecated` (`__deprecated__`); its own module subclasses
    # the deprecated AudioContextTTSService at import, so that warning is ignored in pyproject.toml
    assert [c.__name__ for c in VoicewireTTSService.__mro__ if getattr(c, "__deprecated__", None)] == []
