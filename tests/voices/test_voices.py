"""Voices API and voice resolution on a real app: Chatterbox (random weights) clones, Piper refuses."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
import soundfile as sf

from stream.core.errors import BadAudio, VoiceNotFound
from stream.core.protocol import InlineVoice
from stream.server.app import create_app
from stream.server.runtime import build_runtime
from stream.settings import Settings
from tests.chatterbox_checkpoint import speechlike_clip


def wav_bytes(seconds: float, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, speechlike_clip(seconds, seed=seed), 24_000, format="WAV")
    return buf.getvalue()


def app_client(engine, data_dir) -> tuple[httpx.AsyncClient, object]:
    runtime = build_runtime(Settings(data_dir=str(data_dir)), engine=engine)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime)), base_url="http://test")
    return client, runtime


async def test_piper_refuses_cloning_with_unsupported(piper_engine, tmp_path):
    client, runtime = app_client(piper_engine, tmp_path)
    async with client:
        r = await client.post("/v1/voices", files={"file": ("a.wav", wav_bytes(2.0), "audio/wav")})
        assert r.status_code == 422 and r.json()["code"] == "unsupported"
        # Only the built-in voice: nothing was stored.
        assert [v["id"] for v in (await client.get("/v1/voices")).json()["voices"]] == ["joe"]
    runtime.close()


@pytest.mark.parametrize("keys", [("good-key",), ()], ids=["keys", "open"])
async def test_voices_api_needs_a_valid_key_when_the_server_has_keys(piper_engine, tmp_path, keys):
    runtime = build_runtime(Settings(data_dir=str(tmp_path), api_keys=keys), engine=piper_engine)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime)), base_url="http://test")
    requests = [("GET", "/v1/voices", {}, 200),
                ("POST", "/v1/voices", {"files": {"file": ("a.wav", wav_bytes(2.0), "audio/wav")}}, 422),
                ("POST", "/v1/voices", {"json": {"audio": "AAAA", "bogus": 1}}, 422),
                ("DELETE", "/v1/voices/v_nope", {}, 404)]
    async with client:
        for method, path, kwargs, status in requests:
            for bad in ({}, {"x-api-key": "wrong"}, {"authorization": "Bearer wrong"}):
                r = await client.request(method, path, headers=bad, **kwargs)
                if keys:
                    assert r.status_code == 401 and r.json()["code"] == "unauthorized", (method, bad, r.text)
                    assert r.headers["www-authenticate"] == "Bearer"
                else:
                    assert r.status_code == status, (method, bad, r.text)
            for good in ({"x-api-key": "good-key"}, {"authorization": "Bearer good-key"}):
                r = await client.request(method, path, headers=good, **kwargs)
                assert r.status_code == status, (method, good, r.text)
    runtime.close()


@pytest.fixture(scope="module")
def chatterbox(tmp_path_factory):
    pytest.importorskip("chatterbox", reason="the chatterbox extra is not installed")
    from tests.chatterbox_checkpoint import shared_engine

    return shared_engine(tmp_path_factory)


@pytest.mark.chatterbox
async def test_voices_api_add_list_delete_and_bad_audio(chatterbox, tmp_path):
    client, runtime = app_client(chatterbox, tmp_path)
    async with client:
        r = await client.post("/v1/voices", files={"file": ("me.wav", wav_bytes(2.0, seed=40), "audio/wav")},
                              data={"name": "me"})
        assert r.status_code == 201, r.text
        first = r.json()
        assert first["name"] == "me" and first["format"] == "WAV" and first["seconds"] == pytest.approx(2.0)
        r = await client.post("/v1/voices", json={"audio": base64.b64encode(wav_bytes(1.5, seed=41)).decode()})
        assert r.status_code == 201, r.text
        second = r.json()
        listed = (await client.get("/v1/voices")).json()["voices"]
        assert [(v["id"], v["builtin"]) for v in listed] == [("default", True), (first["id"], False),
                                                             (second["id"], False)]

        for kwargs, rule in (
            ({"files": {"file": ("x.wav", b"", "audio/wav")}}, "empty"),
            ({"files": {"file": ("x.wav", b"not audio at all" * 20, "audio/wav")}}, "unreadable"),
            ({"files": {"file": ("x.wav", wav_bytes(0.3), "audio/wav")}}, "shorter than"),
            ({"json": {"audio": "%%%"}}, "not valid base64"),
        ):
            r = await client.post("/v1/voices", **kwargs)
            assert r.status_code == 415 and r.json()["code"] == "bad_audio" and rule in r.json()["message"]
        r = await client.post("/v1/voices", json={"audio": "AAAA", "bogus": 1})
        assert r.status_code == 422 and r.json()["code"] == "invalid_message"

        assert (await client.delete(f"/v1/voices/{first['id']}")).status_code == 204
        r = await client.delete(f"/v1/voices/{first['id']}")
        assert r.status_code == 404 and r.json()["code"] == "voice_not_found"
        assert [v["id"] for v in (await client.get("/v1/voices")).json()["voices"]] == ["default", second["id"]]
    with pytest.raises(VoiceNotFound):
        await runtime.voices.resolve(first["id"])
    runtime.close()


@pytest.mark.chatterbox
async def test_resolve_by_id_name_inline_and_after_restart(chatterbox, tmp_path):
    client, runtime = app_client(chatterbox, tmp_path)
    async with client:
        stored = (await client.post("/v1/voices", files={"file": ("a.wav", wav_bytes(2.0, seed=50), "audio/wav")},
                                    data={"name": "anna"})).json()
    prepared = chatterbox.preparations
    by_id = await runtime.voices.resolve(stored["id"])
    by_name = await runtime.voices.resolve("anna")
    assert by_id.conditioning is by_name.conditioning and chatterbox.preparations == prepared
    # A new library over the same database (a restart): found in SQLite, conditioning from the cache.
    restarted = build_runtime(Settings(data_dir=str(tmp_path)), engine=chatterbox)
    again = await restarted.voices.resolve("anna", context_id="c1")
    assert again.id == stored["id"] and chatterbox.preparations == prepared
    inline = InlineVoice(reference_audio="data:audio/wav;base64," + base64.b64encode(wav_bytes(2.0, seed=50)).decode())
    same_clip = await restarted.voices.resolve(inline)
    assert same_clip.conditioning is again.conditioning      # same content, same cache entry
    with pytest.raises(BadAudio) as err:
        await restarted.voices.resolve(InlineVoice(reference_audio="AAAA"), context_id="c2")
    assert err.value.context_id == "c2" and err.value.message.startswith("voice.reference_audio:")
    with pytest.raises(VoiceNotFound):
        await restarted.voices.resolve("nobody")
    assert np.isfinite(same_clip.conditioning.t3_prefix.numpy()).all()
    runtime.close()
    restarted.close()
