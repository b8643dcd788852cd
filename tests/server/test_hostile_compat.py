"""Hostile input on the compat endpoints: each gets its protocol's error frame, and the session and the
server stay up (a normal turn follows on the same socket unless the error is fatal)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from tests.hostile_corpus import NOT_JSON

KEY = "static-key-for-tests"
EL = "/elevenlabs/v1/text-to-speech/default/multi-stream-input?output_format=pcm_16000"
EL_BAD_FIELDS = [
    ({"text": 5, "context_id": "c"}, "text"),
    ({"text": "Hi.", "context_id": "c", "voice_settings": "loud"}, "voice_settings"),
    ({"text": "Hi.", "context_id": "c", "voice_settings": {"stability": 9}}, "voice_settings.stability"),
    ({"text": "Hi.", "context_id": "c" * 129}, "context_id"),
    ({"text": "Hi.", "context_id": "has space"}, "context_id"),
    ({"text": "Hi.", "context_id": "c", "flush": "yes please"}, "flush"),
    ([1, 2, 3], "JSON object"),
]
RESEMBLE_BAD = [
    ({"voice_uuid": "default", "request_id": 1}, "data"),
    ({"voice_uuid": "default", "data": "Hi.", "request_id": -1}, "request_id"),
    ({"voice_uuid": "default", "data": "Hi.", "request_id": "one"}, "request_id"),
    ({"voice_uuid": "default", "data": "Hi.", "request_id": 1, "precision": "PCM_24"}, "precision"),
    ({"voice_uuid": "default", "data": "Hi.", "request_id": 1, "binary_response": True}, "binary_response"),
    ({"voice_uuid": "nobody", "data": "Hi.", "request_id": 1}, "nobody"),
    ({"voice_uuid": "default", "data": "Hi.", "request_id": 1, "sample_rate": 4}, "sample_rate"),
]


async def receive_json(ws) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def el_turn_speaks(ws, cid: str) -> None:
    for message in ({"text": "Still here. ", "context_id": cid}, {"context_id": cid, "flush": True},
                    {"context_id": cid, "close_context": True}):
        await ws.send(json.dumps(message))
    got_audio = False
    while not (msg := await receive_json(ws)).get("isFinal"):
        got_audio |= bool(msg.get("audio"))
    assert got_audio and msg["contextId"] == cid


async def test_elevenlabs_bad_frames_get_an_error_and_the_session_goes_on(server):
    frames = [*NOT_JSON, *(json.dumps(body) for body, _ in EL_BAD_FIELDS)]
    fragments = ["JSON"] * len(NOT_JSON) + [fragment for _, fragment in EL_BAD_FIELDS]
    async with websockets.connect(f"ws://127.0.0.1:{server.port}{EL}", max_size=None) as ws:
        for i, (frame, fragment) in enumerate(zip(frames, fragments, strict=True)):
            await ws.send(frame)
            error = await receive_json(ws)
            assert error["error"] in ("invalid_json", "invalid_message", "out_of_range"), (frame[:40], error)
            assert fragment in error["message"], (frame[:40], error)
            if i % 10 == 0:
                await el_turn_speaks(ws, f"turn-{i}")
        await ws.send(b"\x00\xff binary")
        assert (await receive_json(ws))["error"] == "invalid_json"
        await ws.send(json.dumps({"text": "Again. ", "context_id": "turn-0"}))    # a finished context
        assert (await receive_json(ws))["error"] == "context_closed"
        await el_turn_speaks(ws, "last")


@pytest.mark.parametrize(("path", "close", "fragment"), [
    ("/elevenlabs/v1/text-to-speech/default/stream-input?output_format=opus_48000_64", 1008, "output_format"),
    ("/elevenlabs/v1/text-to-speech/default/stream-input?output_format=ulaw_16000", 1008, "output_format"),
    ("/elevenlabs/v1/text-to-speech/default/stream-input", 1008, "API key"),
])
async def test_elevenlabs_refusals_at_the_door(make_server, path, close, fragment):
    server = make_server(api_keys=(KEY,))
    refused_format = "output_format" in path   # refused before any message; a missing key after the first
    headers = {"xi-api-key": KEY} if refused_format else {}
    async with websockets.connect(f"ws://127.0.0.1:{server.port}{path}", additional_headers=headers) as ws:
        if not refused_format:
            await ws.send(json.dumps({"text": " "}))
        error = await receive_json(ws)
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert fragment in error["message"] and error["code"] == close and ws.close_code == close
    assert httpx.get(f"{server.http_url}/healthz").status_code == 200


async def test_elevenlabs_in_message_key_and_unknown_voice(make_server):
    server = make_server(api_keys=(KEY,))
    base = f"ws://127.0.0.1:{server.port}/elevenlabs/v1/text-to-speech"
    async with websockets.connect(f"{base}/default/stream-input?output_format=pcm_16000") as ws:
        await ws.send(json.dumps({"text": " ", "xi_api_key": KEY}))
        await ws.send(json.dumps({"text": "Keyed in the message. "}))
        await ws.send(json.dumps({"text": ""}))
        messages = [json.loads(m) async for m in ws]
    assert messages[-1] == {"isFinal": True} and any(m.get("audio") for m in messages)
    async with websockets.connect(f"{base}/nobody/multi-stream-input", additional_headers={"xi-api-key": KEY}) as ws:
        await ws.send(json.dumps({"text": "Hi. ", "context_id": "a"}))
        error = await receive_json(ws)
        assert error["error"] == "voice_not_found" and error["contextId"] == "a"
        await ws.send(json.dumps({"close_socket": True}))
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 1000


async def test_resemble_bad_requests_get_an_error_and_the_socket_serves_the_next(server):
    async with websockets.connect(f"ws://127.0.0.1:{server.port}/resemble/stream") as ws:
        for frame in ["{", "[1]", *(json.dumps(body) for body, _ in RESEMBLE_BAD)]:
            await ws.send(frame)
            error = await receive_json(ws)
            assert error["type"] == "error" and error["status_code"] >= 400, (frame, error)
        for body, fragment in RESEMBLE_BAD:
            await ws.send(json.dumps(body))
            assert fragment in (await receive_json(ws))["message"]
        await ws.send(json.dumps({"voice_uuid": "default", "data": "Still here.", "request_id": 7}))
        kinds = []
        while (msg := await receive_json(ws))["type"] != "audio_end":
            kinds.append(msg["type"])
        assert kinds and set(kinds) == {"audio"} and msg["request_id"] == 7
    assert httpx.get(f"{server.http_url}/healthz").status_code == 200
