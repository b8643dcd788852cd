"""Every error status of the HTTP speech endpoints, over real HTTP; the server keeps serving after each."""

from __future__ import annotations

import httpx
import pytest
import requests

from stream.accounts.keys import create_key

TTS = "/v1/chatterbox-tts"
SPEECH = "/v1/audio/speech"


def speech(text: str = "Hi there.", **extra) -> dict:
    return {"model": "tts-1", "voice": "alloy", "input": text, **extra}


@pytest.mark.parametrize(("path", "body", "status", "code", "fragment"), [
    (TTS, {"text": "x", "temperature": 2.5}, 422, "out_of_range", "temperature: input should be less than or equal to 2"),
    (TTS, {"text": "x", "repetition_penalty": 0.5}, 422, "out_of_range", "repetition_penalty: input should be greater"),
    (TTS, {"text": "x", "top_p": "lots"}, 422, "invalid_message", "top_p: Input should be a valid number"),
    (TTS, {"text": "x", "seed": 1.5}, 422, "invalid_message", "seed: Input should be a valid integer"),
    (TTS, {"text": "x", "seed": -1}, 422, "out_of_range", "seed: input should be greater than or equal to 0"),
    (TTS, {"text": ""}, 422, "invalid_message", "text: String should have at least 1 character"),
    (TTS, {"exaggeration": 1}, 422, "invalid_message", "text: field required"),
    (TTS, {"text": "x", "temprature": 1}, 422, "invalid_message", "temprature: unknown field"),
    (TTS, {"text": "x", "output_format": "aac"}, 422, "invalid_message", "output_format: Input should be"),
    (TTS, {"text": "x", "sample_rate": 12345}, 422, "invalid_message", "sample_rate: Input should be"),
    (TTS, {"text": "x", "voice": "a", "reference_audio": "b"}, 422, "invalid_message", "voice: give either"),
    (TTS, {"text": "x", "reference_audio": "AAAA"}, 422, "unsupported", "reference_audio: the piper engine"),
    (TTS, {"text": "x", "voice": "nobody"}, 404, "voice_not_found", "voice: no voice with id or name 'nobody'"),
    (TTS, ["not", "an", "object"], 422, "invalid_message", "Input should be a valid dictionary"),
    (SPEECH, speech(speed=0.1), 422, "out_of_range", "speed: input should be greater than or equal to 0.25"),
    (SPEECH, speech(stream_format="sse"), 422, "invalid_message", "stream_format: Input should be 'audio'"),
    (SPEECH, {"model": "tts-1", "input": "x"}, 422, "invalid_message", "voice: field required"),
    (SPEECH, speech(voice={"name": "x"}), 422, "invalid_message", "voice"),
])
def test_validation_errors_name_the_field_and_rule(server, path, body, status, code, fragment):
    r = requests.post(server.http_url + path, json=body, timeout=30)
    assert r.status_code == status, r.text
    payload = r.json()
    error = payload["error"] if path == SPEECH else payload
    assert error["code"] == code and fragment in error["message"]


def test_invalid_json_is_400(server):
    for path in (TTS, SPEECH):
        r = requests.post(server.http_url + path, data=b'{"text": ', headers={"content-type": "application/json"})
        assert r.status_code == 400 and "invalid JSON" in r.text


def test_oversize_bodies_are_413_declared_or_chunked(make_server):
    srv = make_server(max_http_body_bytes=2000)
    big = {"text": "x", "reference_audio": "A" * 4000}
    declared = httpx.post(srv.http_url + TTS, json=big)
    assert declared.status_code == 413 and declared.json()["code"] == "body_too_large"

    def chunks():
        yield b'{"text": "x", "reference_audio": "'
        for _ in range(10):
            yield b"A" * 500
        yield b'"}'

    chunked = httpx.post(srv.http_url + SPEECH, content=chunks(), headers={"content-type": "application/json"})
    assert chunked.status_code == 413 and chunked.json()["error"]["code"] == "body_too_large"


def test_text_over_the_limit_is_413(make_server):
    srv = make_server(max_text_chars_per_context=50)
    r = httpx.post(srv.http_url + TTS, json={"text": "y" * 51})
    assert r.status_code == 413 and r.json() == {
        "type": "error", "code": "text_too_long", "fatal": False,
        "message": "text: at most 50 characters per request (got 51)"}
    r = httpx.post(srv.http_url + SPEECH, json=speech("y" * 51))
    assert r.status_code == 413 and r.json()["error"]["param"] == "text"


def test_missing_and_bad_keys_are_401_before_validation(make_server):
    srv = make_server(api_keys=("static-key",))
    create_key(srv.runtime.storage.keys)
    for path, body in ((TTS, {"text": "x", "temperature": 99}), (SPEECH, speech())):
        missing = httpx.post(srv.http_url + path, json=body)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        wrong = httpx.post(srv.http_url + path, json=body, headers={"x-api-key": "nope"})
        assert wrong.status_code == 401 and "invalid or revoked" in wrong.text
    ok = httpx.post(srv.http_url + SPEECH, json=speech(), headers={"authorization": "Bearer static-key"}, timeout=60)
    assert ok.status_code == 200 and "x-remaining-credits" not in ok.headers  # static keys are unmetered


def test_server_keeps_serving_and_counts_http_requests(server):
    for body in ({"text": "x", "temperature": 9}, {"text": "Fine."}):
        requests.post(server.http_url + TTS, json=body, timeout=60)
    assert requests.get(server.http_url + "/healthz").json()["status"] == "ok"
    metrics = requests.get(server.http_url + "/metrics").text
    assert 'voicewire_http_requests_total{endpoint="/v1/chatterbox-tts",status="422"} 1.0' in metrics
    assert 'voicewire_http_requests_total{endpoint="/v1/chatterbox-tts",status="200"} 1.0' in metrics


def test_openapi_describes_every_field_with_its_range(server):
    schema = requests.get(server.http_url + "/openapi.json").json()
    components = schema["components"]["schemas"]
    tts = components["ChatterboxTTSRequest"]["properties"]
    expected = {"exaggeration": (0, 2), "temperature": (0, 2), "cfg_weight": (0, 2), "min_p": (0, 1),
                "top_p": (0, 1), "repetition_penalty": (1, 2)}
    for name, (low, high) in expected.items():
        assert (tts[name]["minimum"], tts[name]["maximum"]) == (low, high)
    for model in ("ChatterboxTTSRequest", "SpeechRequest"):
        for name, prop in components[model]["properties"].items():
            assert prop.get("description"), f"{model}.{name} has no description"
    assert "/v1/chatterbox-tts" in schema["paths"] and "/v1/audio/speech" in schema["paths"]
    assert requests.get(server.http_url + "/docs").status_code == 200
