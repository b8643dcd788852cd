"""ElevenLabs-compatible endpoints, driven by the real client libraries (only their URL and key changed)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator

import aiohttp
import httpx
import numpy as np
import pytest
import soundfile
import uvicorn
import websockets
from elevenlabs import VoiceSettings
from elevenlabs.client import ElevenLabs
from elevenlabs.core.api_error import ApiError
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT
from livekit.plugins import elevenlabs as livekit_elevenlabs
from pipecat.frames.frames import (
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSTextFrame,
)
from pipecat.pipeline.worker import PipelineParams
from pipecat.services.elevenlabs.tts import ElevenLabsHttpTTSService, ElevenLabsTTSService
from pipecat.tests.utils import SleepFrame, run_test

from clients import llm_deltas
from stream.server.app import create_app
from stream.server.runtime import build_runtime
from stream.server.serving import uvicorn_config
from stream.settings import Settings
from tests.agent_adapters.test_adapters_pipecat import check_interruption_cuts_the_turn
from tests.conftest import ServerHandle, free_port

REPLY = "Sure, I can help with that. The museum opens at nine, and tickets cost twelve dollars."
KEY = "static-key-for-tests"
EL_MULTI = "/v1/text-to-speech/default/multi-stream-input"
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
    await check_interruption_cuts_the_turn(pipecat_tts(server))
    assert metric(server, "voicewire_contexts_total", 'outcome="cancelled"') == 1


def decode_mp3(data: bytes) -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    return samples, rate


def sdk(server) -> ElevenLabs:
    return ElevenLabs(api_key="unused", base_url=f"http://127.0.0.1:{server.port}/elevenlabs")


async def test_sdk_http_convert_and_stream_decode_to_the_requested_format(server):
    client = sdk(server)
    mp3 = b"".join(await asyncio.to_thread(lambda: list(client.text_to_speech.convert(
        "default", text="A one shot sentence.", model_id="eleven_multilingual_v2"))))
    samples, rate = decode_mp3(mp3)
    assert rate == 44100 and 0.8 < len(samples) / rate < 4.0
    pcm = b"".join(await asyncio.to_thread(lambda: list(client.text_to_speech.stream(
        "default", text="Streamed as it is made. Two sentences.", output_format="pcm_16000",
        voice_settings=VoiceSettings(stability=0.3, style=0.2)))))
    assert 1.5 < len(pcm) / 2 / 16000 < 6.0
    voices = await asyncio.to_thread(lambda: client.voices.get_all())
    assert "default" in {v.voice_id for v in voices.voices}


async def test_http_refusals_have_elevenlabs_error_shape(make_server):
    keyed = make_server(api_keys=("static-key-for-tests",))
    base = f"{keyed.http_url}/elevenlabs/v1/text-to-speech/default"
    async with httpx.AsyncClient() as http:
        denied = await http.post(base, json={"text": "Hi."})
        bad_format = await http.post(base + "?output_format=opus_48000_64", json={"text": "Hi."},
                                     headers={"xi-api-key": "static-key-for-tests"})
        no_text = await http.post(base, json={"model_id": "x"}, headers={"xi-api-key": "static-key-for-tests"})
        unknown_voice = await http.post(base.replace("default", "nobody"), json={"text": "Hi."},
                                        headers={"xi-api-key": "static-key-for-tests"})
    assert denied.status_code == 401 and denied.json()["detail"]["status"] == "unauthorized"
    assert bad_format.status_code == 422 and "opus_48000_64" in bad_format.json()["detail"]["message"]
    assert no_text.status_code == 422 and no_text.json()["detail"]["message"].startswith("text")
    assert unknown_voice.status_code == 404 and unknown_voice.json()["detail"]["status"] == "voice_not_found"
    assert (await asyncio.to_thread(httpx.get, f"{keyed.http_url}/healthz")).status_code == 200


async def test_livekit_plugin_streams_a_reply_through_its_stream_api(server):
    async with aiohttp.ClientSession() as session:
        tts = livekit_elevenlabs.TTS(api_key="unused", voice_id="default", encoding="pcm_24000",
                                     base_url=f"http://127.0.0.1:{server.port}/elevenlabs/v1", http_session=session)
        stream = tts.stream()
        for delta in llm_deltas(REPLY):
            stream.push_text(delta)
        stream.end_input()
        events = [ev async for ev in stream]
        await stream.aclose()
        whole = await tts.synthesize("A one shot sentence.").collect()
        await tts.aclose()
    frames = [ev.frame for ev in events]
    assert frames and all(f.sample_rate == 24000 for f in frames)
    assert 3.0 < sum(f.duration for f in frames) < 10.0
    words = [w for f in frames for w in f.userdata.get(USERDATA_TIMED_TRANSCRIPT, [])]
    assert "".join(words).split() == REPLY.split()
    assert whole.sample_rate == 24000 and 0.8 < whole.duration < 4.0


@pytest.fixture
def tls_server(piper_engine, tmp_path, monkeypatch) -> Iterator[ServerHandle]:
    """A keyed server on https/wss: the SDK's realtime helper always connects with wss://. Its
    self-signed certificate is the only one the client trusts (SSL_CERT_FILE)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    settings = Settings(port=free_port(), data_dir=str(tmp_path / "data"), api_keys=(KEY,))
    runtime = build_runtime(settings, engine=piper_engine)
    config = uvicorn_config(create_app(runtime), settings, host="127.0.0.1", log_level="warning", lifespan="on",
                            ssl_certfile=str(cert), ssl_keyfile=str(key), timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "TLS test server did not start"
        time.sleep(0.02)
    handle = ServerHandle(runtime, settings.port, server, thread)
    yield handle
    handle.stop()


@pytest.mark.filterwarnings("ignore:ConnectionClosed.code is deprecated:DeprecationWarning")  # the SDK's own use
async def test_sdk_realtime_helper_streams_mp3_by_default(tls_server):
    client = ElevenLabs(api_key=KEY, base_url=f"https://127.0.0.1:{tls_server.port}/elevenlabs")
    text = (w for w in ["Hello ", "from ", "the ", "realtime ", "helper. ", "It ", "sends ", "no ", "format."])
    mp3 = b"".join(await asyncio.to_thread(lambda: list(client.text_to_speech.convert_realtime("default", text=text))))
    samples, rate = decode_mp3(mp3)
    assert rate == 44100 and 1.5 < len(samples) / rate < 8.0
    with pytest.raises(ApiError) as refused:
        await asyncio.to_thread(lambda: list(ElevenLabs(api_key="wrong", base_url=client._client_wrapper.get_base_url())
                                             .text_to_speech.convert_realtime("default", text=iter(["Hi."]))))
    assert refused.value.status_code == 1008


async def test_alignment_spans_each_message_and_phrases_start_where_voicewire_says(server):
    """Each message's alignment spans exactly its audio, and every phrase's first character starts
    within one chunk of the phrase's `start_ms` on `/v1/stream` for the same text."""
    text = "Sure, I can help with that. The museum opens at nine, and tickets cost twelve dollars. "
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "init", "output_format": {"sample_rate": 16000}}))
        await ws.send(json.dumps({"type": "text", "context_id": "c", "text": text}))
        await ws.send(json.dumps({"type": "end", "context_id": "c"}))
        phrases = [m async for m in _until(ws, "done") if m["type"] == "phrase" and m["text"].strip()]
    url = f"ws://127.0.0.1:{server.port}/elevenlabs{EL_MULTI}?output_format=pcm_16000"
    async with websockets.connect(url) as ws:
        for message in ({"text": text, "context_id": "c"}, {"context_id": "c", "flush": True},
                        {"context_id": "c", "close_context": True}):
            await ws.send(json.dumps(message))
        clock, chunk, times = 0.0, 0.0, []
        async for raw in ws:
            message = json.loads(raw)
            if message.get("isFinal"):
                break
            duration = len(base64.b64decode(message["audio"])) / 2 / 16.0
            alignment = message["alignment"]
            assert abs(alignment["charStartTimesMs"][-1] + alignment["charDurationsMs"][-1] - duration) <= 1
            times += [(char, clock + start) for char, start in zip(alignment["chars"], alignment["charStartTimesMs"],
                                                                   strict=True)]
            clock, chunk = clock + duration, max(chunk, duration)
    spoken = "".join(char for char, _ in times)
    assert spoken.split() == text.split()
    for phrase in phrases:
        at = spoken.index(phrase["text"].strip())
        assert abs(times[at][1] - phrase["start_ms"]) <= chunk, (phrase, times[at])


async def _until(ws, kind: str):
    async for raw in ws:
        message = json.loads(raw)
        yield message
        if message["type"] == kind:
            return


async def test_pipecat_http_service_speaks_with_word_timestamps(server):
    async with aiohttp.ClientSession() as session:
        tts = ElevenLabsHttpTTSService(api_key="unused", aiohttp_session=session,
                                       base_url=f"http://127.0.0.1:{server.port}/elevenlabs",
                                       settings=ElevenLabsHttpTTSService.Settings(voice="default"))
        down, _ = await run_test(tts, frames_to_send=[*llm_turn(REPLY), SleepFrame(0.5)],
                                 pipeline_params=PipelineParams(audio_out_sample_rate=16000))
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert audio and 3.0 < sum(len(f.audio) for f in audio) / 2 / 16000 < 10.0
    words = [f.text for f in down if isinstance(f, TTSTextFrame)]
    assert " ".join(words).split() == REPLY.split()


async def test_sdk_with_timestamps_convert_and_stream(server):
    client = sdk(server)
    whole = await asyncio.to_thread(lambda: client.text_to_speech.convert_with_timestamps(
        "default", text="Timed, in one piece.", output_format="pcm_16000"))
    seconds = len(base64.b64decode(whole.audio_base_64)) / 2 / 16000
    assert "".join(whole.alignment.characters) == "Timed, in one piece."
    ends = whole.alignment.character_end_times_seconds
    assert ends == sorted(ends) and seconds - 1.0 < ends[-1] <= seconds + 0.01
    pieces = await asyncio.to_thread(lambda: list(client.text_to_speech.stream_with_timestamps(
        "default", text="Streamed with timing. Second sentence.")))
    mp3 = b"".join(base64.b64decode(p.audio_base_64) for p in pieces)
    assert decode_mp3(mp3)[1] == 44100
    assert "".join(c for p in pieces if p.alignment for c in p.alignment.characters) == \
        "Streamed with timing. Second sentence."


async def test_livekit_plugin_aclose_mid_turn_cancels_and_the_next_turn_speaks(server):
    async with aiohttp.ClientSession() as session:
        tts = livekit_elevenlabs.TTS(api_key="unused", voice_id="default", encoding="pcm_16000",
                                     base_url=f"http://127.0.0.1:{server.port}/elevenlabs/v1", http_session=session)
        stream = tts.stream()
        stream.push_text(LONG)            # input not ended: the interruption closes an open context
        await asyncio.wait_for(stream.__anext__(), 10)
        await stream.aclose()
        nxt = tts.stream()
        nxt.push_text("New answer.")
        nxt.end_input()
        events = await asyncio.wait_for(_collect(nxt), 10)
        await nxt.aclose()
        await tts.aclose()
    assert 0.3 < sum(ev.frame.duration for ev in events) < 3.0
    for _ in range(50):   # the cancel is counted once the server has processed close_context
        if metric(server, "voicewire_contexts_total", 'outcome="cancelled"') == 1:
            break
        await asyncio.sleep(0.1)
    assert metric(server, "voicewire_contexts_total", 'outcome="cancelled"') == 1


async def _collect(stream) -> list:
    return [ev async for ev in stream]
