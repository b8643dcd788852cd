"""`POST /v1/audio/speech` driven by the official `openai` package pointed at the server (`base_url`)."""

from __future__ import annotations

import asyncio
import io
import time

import numpy as np
import openai
import pytest
import soundfile

from stream.accounts.keys import create_key
from tests.wire import RawPeer

TEXT = ("Sure, here is the plan for today. First we check the calendar, then we answer the messages "
        "that came in overnight, and finally we book the train for Friday.")


def client_for(server, key: str = "unused", **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.http_url + "/v1", api_key=key, max_retries=0, **kwargs)


@pytest.mark.parametrize("response_format", ["wav", "mp3", "opus", "flac"])
def test_sdk_create_returns_a_decodable_file(server, response_format):
    response = client_for(server).audio.speech.create(model="tts-1", voice="alloy", input="Hello from the SDK.",
                                                      response_format=response_format)
    audio, rate = soundfile.read(io.BytesIO(response.content))
    assert rate == 24_000 and audio.size / rate > 0.5
    assert response.response.headers["x-sample-rate"] == "24000"


def test_sdk_pcm_is_24khz_s16le_and_speed_is_honoured(server):
    sdk = client_for(server)
    normal = sdk.audio.speech.create(model="gpt-4o-mini-tts", voice="nova", input=TEXT, response_format="pcm",
                                     extra_body={"temperature": 0, "exaggeration": 0})
    fast = sdk.audio.speech.create(model="gpt-4o-mini-tts", voice="nova", input=TEXT, response_format="pcm",
                                   speed=2.0, extra_body={"temperature": 0, "exaggeration": 0})
    seconds = len(normal.content) / 2 / 24_000
    assert len(normal.content) % 2 == 0 and 5.0 < seconds < 20.0
    assert len(fast.content) < 0.7 * len(normal.content)
    assert np.abs(np.frombuffer(normal.content, "<i2")).max() > 1000


def test_streaming_response_helper_first_bytes_arrive_at_about_websocket_ttfa(server, tmp_path):
    sdk = client_for(server)
    started = time.monotonic()
    with sdk.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input=TEXT,
                                                         response_format="pcm") as response:
        assert response.headers.get("transfer-encoding") == "chunked"
        first_at, parts = None, []
        for part in response.iter_bytes():
            first_at = first_at or time.monotonic() - started
            parts.append(part)
        total = time.monotonic() - started
    assert len(parts) > 2 and first_at < 0.6 * total
    with sdk.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input="Saved as it streams.",
                                                         response_format="mp3") as response:
        response.stream_to_file(tmp_path / "speech.mp3")
    audio, rate = soundfile.read(tmp_path / "speech.mp3")
    assert rate == 24_000 and audio.size / rate > 0.5

    async def websocket_ttfa() -> float:
        peer, _ = await RawPeer.open(server.ws_url)
        await peer.send({"type": "text", "context_id": "c", "text": TEXT})
        await peer.send({"type": "end", "context_id": "c"})
        done, _ = await peer.until("done", "c")
        await peer.close()
        return done["ttfa_ms"] / 1000

    ttfa = asyncio.run(websocket_ttfa())
    # same text, same engine: the HTTP body's first bytes come within a generous margin of the ws TTFA
    assert first_at < 3 * ttfa + 0.5, (first_at, ttfa)


async def test_async_sdk_streams_too(server):
    sdk = openai.AsyncOpenAI(base_url=server.http_url + "/v1", api_key="unused", max_retries=0)
    async with sdk.audio.speech.with_streaming_response.create(model="tts-1", voice="echo", input=TEXT,
                                                               response_format="wav") as response:
        data = b"".join([part async for part in response.iter_bytes()])
    audio, rate = soundfile.read(io.BytesIO(data))
    assert data[:4] == b"RIFF" and rate == 24_000 and audio.size / rate > 5.0
    await sdk.close()


def test_sdk_sees_openai_shaped_errors(server):
    sdk = client_for(server)
    with pytest.raises(openai.UnprocessableEntityError) as bad_speed:
        sdk.audio.speech.create(model="tts-1", voice="alloy", input="x", speed=9)
    assert bad_speed.value.body["param"] == "speed" and bad_speed.value.body["code"] == "out_of_range"
    with pytest.raises(openai.UnprocessableEntityError, match="response_format"):
        sdk.audio.speech.create(model="tts-1", voice="alloy", input="x", response_format="aac")
    with pytest.raises(openai.UnprocessableEntityError, match="exagerration: unknown field"):
        sdk.audio.speech.create(model="tts-1", voice="alloy", input="x", extra_body={"exagerration": 1})
    with pytest.raises(openai.NotFoundError, match="no voice with id or name 'narrator'"):
        sdk.audio.speech.create(model="tts-1", voice={"id": "narrator"}, input="x")
    with pytest.raises(openai.UnprocessableEntityError, match="reference_audio: the piper engine cannot clone"):
        sdk.audio.speech.create(model="tts-1", voice="alloy", input="x",
                                extra_body={"reference_audio": "https://example.com/a.mp3"})


def test_sdk_keys_and_credits(make_server):
    srv = make_server()
    _, secret = create_key(srv.runtime.storage.keys, credits=30)
    with pytest.raises(openai.AuthenticationError, match="invalid or revoked"):
        client_for(srv, "vw_wrong").audio.speech.create(model="tts-1", voice="alloy", input="Hi.")
    sdk = client_for(srv, secret)
    response = sdk.audio.speech.with_raw_response.create(model="tts-1", voice="alloy", input="Twenty characters!!!")
    assert response.headers["x-remaining-credits"] == "10"
    with pytest.raises(openai.APIStatusError) as exhausted:
        sdk.audio.speech.create(model="tts-1", voice="alloy", input="Eleven char")
    assert exhausted.value.status_code == 402
    assert exhausted.value.body == {"message": "credits: this needs 11 credits (one per character); the key has 10 left",
                                    "type": "insufficient_quota", "param": "credits", "code": "insufficient_credits"}
