"""`POST /v1/chatterbox-tts` with real clients (requests, httpx) and the hosted API's own example."""

from __future__ import annotations

import ast
import base64
import io
import subprocess
import sys

import httpx
import numpy as np
import pytest
import requests
import soundfile

from tests.chatterbox_checkpoint import speechlike_clip
from tests.clip_server import ClipServer

HOSTED_EXAMPLE_DATA = {
    "text": "Welcome to Chatterbox TTS, where your text turns into captivating audio effortlessly.",
    "exaggeration": 0.5, "temperature": 0.8, "seed": 42, "cfg_weight": 0.5, "min_p": 0.05, "top_p": 1,
    "repetition_penalty": 1.2,
}
SEGMIND_URL = "https://api.segmind.com/v1/chatterbox-tts"
SEGMIND_CLIP = ("https://segmind-resources.s3.amazonaws.com/input/"
                "ef2a2b5c-3e3a-4051-a437-20a72bf175de-sample_audio.mp3")


def hosted_example(url: str, clip_url: str) -> str:
    """The Python example from the hosted API's page, verbatim except for its two URLs."""
    source = '''import requests
import base64
# Use this function to convert an image file from the filesystem to base64
def image_file_to_base64(image_path):
    with open(image_path, 'rb') as f:
        image_data = f.read()
    return base64.b64encode(image_data).decode('utf-8')
# Use this function to fetch an image from a URL and convert it to base64
def image_url_to_base64(image_url):
    response = requests.get(image_url)
    image_data = response.content
    return base64.b64encode(image_data).decode('utf-8')
# Use this function to convert a list of image URLs to base64
def image_urls_to_base64(image_urls):
    return [image_url_to_base64(url) for url in image_urls]
api_key = "YOUR_API_KEY"
url = "https://api.segmind.com/v1/chatterbox-tts"
# Request payload
data = {
"text": "Welcome to Chatterbox TTS, where your text turns into captivating audio effortlessly.",
"reference_audio": "https://segmind-resources.s3.amazonaws.com/input/ef2a2b5c-3e3a-4051-a437-20a72bf175de-sample_audio.mp3",
"exaggeration": 0.5,
"temperature": 0.8,
"seed": 42,
"cfg_weight": 0.5,
"min_p": 0.05,
"top_p": 1,
"repetition_penalty": 1.2
}
headers = {'x-api-key': api_key}
response = requests.post(url, json=data, headers=headers)
print(response.content) # The response is the generated image
'''
    return source.replace(SEGMIND_URL, url).replace(SEGMIND_CLIP, clip_url)


def run_example(tmp_path, url: str, clip_url: str) -> bytes:
    script = tmp_path / "hosted_example.py"
    script.write_text(hosted_example(url, clip_url))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return ast.literal_eval(done.stdout.strip())


def mp3_clip(seconds: float = 3.0) -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, speechlike_clip(seconds, 24_000), 24_000, format="MP3")
    return buf.getvalue()


def decode(data: bytes) -> tuple[np.ndarray, int]:
    audio, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    return audio, rate


def test_hosted_example_without_reference_audio_support_gets_the_documented_error(server, tmp_path):
    """On an engine without cloning (piper) the example's reference_audio is refused, clearly."""
    out = run_example(tmp_path, server.http_url + "/v1/chatterbox-tts", "https://example.com/clip.mp3")
    assert b'"code":"unsupported"' in out and b"reference_audio: the piper engine cannot clone voices" in out


@pytest.mark.chatterbox
def test_hosted_example_runs_unmodified_and_writes_a_playable_file(make_server, tmp_path, tmp_path_factory):
    """The hosted API's own example, its URLs pointed here: cloning from an MP3 fetched by URL."""
    pytest.importorskip("chatterbox", reason="the chatterbox extra is not installed")
    from tests.chatterbox_checkpoint import shared_engine

    srv = make_server(engine=shared_engine(tmp_path_factory), allow_private_urls=True)
    clips = ClipServer(routes={"/sample_audio.mp3": (mp3_clip(), "audio/mpeg")})
    try:
        out = run_example(tmp_path, srv.http_url + "/v1/chatterbox-tts", clips.url("/sample_audio.mp3"))
    finally:
        clips.close()
    (tmp_path / "hosted.wav").write_bytes(out)
    audio, rate = soundfile.read(tmp_path / "hosted.wav")
    assert out[:4] == b"RIFF" and rate == 24_000 and audio.size > 0 and np.isfinite(audio).all()


def test_requests_default_wav_and_every_format(server):
    for format_name, check in (("wav", b"RIFF"), ("flac", b"fLaC"), ("mp3", None), ("opus", b"OggS"), ("pcm", None)):
        r = requests.post(server.http_url + "/v1/chatterbox-tts",
                          json={**HOSTED_EXAMPLE_DATA, "output_format": format_name}, timeout=120)
        assert r.status_code == 200, r.text
        assert int(r.headers["content-length"]) == len(r.content)
        if check:
            assert r.content.startswith(check)
        if format_name == "pcm":
            audio = np.frombuffer(r.content, "<i2")
            assert r.headers["content-type"] == "audio/pcm" and r.headers["x-sample-rate"] == "22050"
        else:
            audio, rate = decode(r.content)
            assert rate == int(r.headers["x-sample-rate"])
        assert audio.size / int(r.headers["x-sample-rate"]) > 2.0
    plain = requests.post(server.http_url + "/v1/chatterbox-tts", json={"text": "Just the text."}, timeout=60)
    assert plain.headers["content-type"] == "audio/wav" and "x-remaining-credits" not in plain.headers


def test_accept_header_picks_the_format_and_the_field_wins(server):
    url = server.http_url + "/v1/chatterbox-tts"
    body = {"text": "Hello there."}
    assert requests.post(url, json=body, headers={"Accept": "audio/flac"}).content[:4] == b"fLaC"
    assert requests.post(url, json=body, headers={"Accept": "audio/mpeg;q=0.5, audio/ogg"}).content[:4] == b"OggS"
    assert requests.post(url, json=body, headers={"Accept": "text/html, */*;q=0.8"}).content[:4] == b"RIFF"
    assert requests.post(url, json={**body, "output_format": "wav"},
                         headers={"Accept": "audio/flac"}).content[:4] == b"RIFF"
    refused = requests.post(url, json=body, headers={"Accept": "text/html"})
    assert refused.status_code == 406 and "accept:" in refused.json()["message"]


def test_sample_rate_follows_the_request_and_the_codec(server):
    url = server.http_url + "/v1/chatterbox-tts"
    r = requests.post(url, json={"text": "Resampled for the phone.", "sample_rate": 8000})
    _, rate = decode(r.content)
    assert rate == 8000
    opus = requests.post(url, json={"text": "Opus at a rate it takes.", "output_format": "opus", "sample_rate": 22050})
    assert opus.headers["x-sample-rate"] == "24000"


async def test_httpx_streamed_answer_starts_before_synthesis_ends(server):
    text = ("This is the first sentence of a longer answer. " * 6).strip()
    async with httpx.AsyncClient(timeout=120) as client:
        async with client.stream("POST", server.http_url + "/v1/chatterbox-tts",
                                 json={"text": text, "stream": True}) as r:
            assert r.status_code == 200 and r.headers.get("transfer-encoding") == "chunked"
            parts = [part async for part in r.aiter_raw()]
    assert len(parts) > 2
    audio, rate = decode(b"".join(parts))
    assert rate == 22050 and audio.size / rate > 5.0


def test_inline_reference_audio_is_refused_on_an_engine_without_cloning(server):
    clip = base64.b64encode(mp3_clip()).decode()
    for reference in (clip, "data:audio/mpeg;base64," + clip, "http://127.0.0.1:9/clip.mp3"):
        r = requests.post(server.http_url + "/v1/chatterbox-tts", json={"text": "Hi there.", "reference_audio": reference})
        assert r.status_code == 422
        assert r.json()["code"] == "unsupported" and r.json()["message"].startswith("reference_audio:")


@pytest.mark.chatterbox
def test_reference_audio_forms_and_refusals_on_a_cloning_engine(make_server, tmp_path_factory):
    """Inline base64 and data: URIs clone; undecodable audio is 415; a loopback URL is refused by default."""
    pytest.importorskip("chatterbox", reason="the chatterbox extra is not installed")
    from tests.chatterbox_checkpoint import shared_engine

    srv = make_server(engine=shared_engine(tmp_path_factory))
    url = srv.http_url + "/v1/chatterbox-tts"
    clip = base64.b64encode(mp3_clip()).decode()
    for reference in (clip, "data:audio/mpeg;base64," + clip):
        r = requests.post(url, json={"text": "Cloned, inline.", "reference_audio": reference, "seed": 1}, timeout=300)
        assert r.status_code == 200, r.text
        assert decode(r.content)[1] == 24_000
    garbage = base64.b64encode(b"definitely not audio" * 10).decode()
    bad = requests.post(url, json={"text": "x", "reference_audio": garbage})
    assert bad.status_code == 415 and bad.json()["message"].startswith("reference_audio: unreadable audio")
    clips = ClipServer(routes={"/voice.mp3": (mp3_clip(), "audio/mpeg")})
    try:
        refused = requests.post(url, json={"text": "x", "reference_audio": clips.url("/voice.mp3")})
    finally:
        clips.close()
    assert refused.status_code == 422 and refused.json()["code"] == "bad_reference_url"
    assert "a loopback address" in refused.json()["message"] and clips.hits["/voice.mp3"] == 0


def test_generation_fields_a_request_leaves_out_stay_unset_for_the_engines_defaults():
    """Turbo's package default top_p (0.95) must fill a request that names no top_p, over HTTP too."""
    from stream.server.http.chatterbox_tts import ChatterboxTTSRequest
    from stream.server.http.common import generation_of

    settings = generation_of(ChatterboxTTSRequest(text="Hi.", temperature=0.5))
    assert settings.model_fields_set == {"temperature"} and settings.top_p == 1.0
