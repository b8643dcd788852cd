"""A voice uploaded through one replica is used by a session on the other, and its deletion reaches
the other within 1 s: two Chatterbox replicas (random weights, reduced T3, CPU) on the session's
Ray cluster, sharing its database. Piper cannot clone voices, so the other cluster tests cannot
show this. The upload's answer does not say which replica took it, so the voice is resolved and
spoken on both replicas: one of them is the replica that did not take it."""

from __future__ import annotations

import asyncio
import base64
import io
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("chatterbox", reason="the chatterbox extra is not installed (pip install 'voicewire[chatterbox]')")

from stream.audio.codecs import decode_samples  # noqa: E402
from stream.server.ray_serve import ServeArgs, deployment_options  # noqa: E402
from stream.storage import PROPAGATION_BOUND_S  # noqa: E402
from tests.chatterbox_checkpoint import _SHARED, speechlike_clip  # noqa: E402
from tests.cluster.chatterbox_replica import replica_class  # noqa: E402
from tests.cluster.conftest import Cluster  # noqa: E402
from tests.wire import RawPeer  # noqa: E402

# Two Chatterbox replicas loading on a busy 2-core machine can take minutes; the turn itself takes seconds.
pytestmark = [pytest.mark.slow, pytest.mark.chatterbox, pytest.mark.timeout(600)]

APP = "voicewire-chatterbox"
PREFIX = "/chatterbox"     # beside the Piper app at "/": the proxy routes by the longest prefix
BUILD_CHECKPOINT = "import sys, pathlib\nfrom tests.chatterbox_checkpoint import build_checkpoint, reduced_t3\n" \
                   "with reduced_t3():\n    build_checkpoint(pathlib.Path(sys.argv[1]))\n"


@pytest.fixture(scope="module")
def chatterbox(cluster: Cluster, tmp_path_factory) -> Iterator[Cluster]:
    """Two Chatterbox replicas as a second Serve application on the session's cluster and database."""
    from ray import serve

    args = ServeArgs.model_validate(cluster.base_args | {
        "engine": "chatterbox", "model_dir": str(checkpoint(tmp_path_factory)), "device": "cpu",
        "watermark": False, "max_sessions": 4})
    settings = replace(args.settings(), batching=False)
    options = deployment_options(args, settings)
    serve.run(serve.deployment(replica_class(), **options).bind(settings), name=APP, route_prefix=PREFIX)
    try:
        yield cluster
    finally:
        serve.delete(APP)


def checkpoint(tmp_path_factory) -> Path:
    """The session's reduced random checkpoint: the one the Chatterbox tests built in this process, or
    else one built in a child process, so that this one does not keep the full-size models' memory
    while two replicas load theirs (the machine's memory, not its CPU, is what a cluster run runs short of)."""
    if (built := _SHARED.get("checkpoint")) is not None:
        return built
    directory = tmp_path_factory.mktemp("chatterbox-ckpt")
    subprocess.run([sys.executable, "-c", BUILD_CHECKPOINT, str(directory)], check=True, timeout=600,
                   cwd=Path(__file__).parents[2])
    _SHARED["checkpoint"] = directory
    return directory


def wav_bytes(seconds: float, seed: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, speechlike_clip(seconds, seed=seed), 24_000, format="WAV")
    return buf.getvalue()


async def one_session_per_replica(ws_url: str, headers: dict) -> tuple[dict[str, RawPeer], list[RawPeer]]:
    """Open sessions until two replicas hold one each; return those and every peer opened."""
    by_replica: dict[str, RawPeer] = {}
    opened: list[RawPeer] = []
    while len(by_replica) < 2:
        assert len(opened) < 12, f"every session landed on {set(by_replica)}"
        peer, ready = await RawPeer.open(ws_url, additional_headers=headers)
        opened.append(peer)
        assert ready["type"] == "ready" and ready["engine"] == "chatterbox", ready
        by_replica.setdefault(ready["replica"], peer)
    return by_replica, opened


async def speak_with(peer: RawPeer, voice: str, context_id: str) -> tuple[dict, np.ndarray]:
    await peer.send({"type": "text", "context_id": context_id, "text": "Hi there.", "voice": voice,
                     "generation": {"seed": 1}})
    await peer.send({"type": "end", "context_id": context_id})
    done, seen = await peer.until("done", context_id, timeout=240)
    assert [m for m in seen if m["type"] == "error"] == []
    audio = [decode_samples(base64.b64decode(m["audio"]), "pcm_s16le") for m in seen if m["type"] == "audio"]
    return done, np.concatenate(audio) if audio else np.zeros(0)


async def resolve_on_init(peer: RawPeer, voice: str) -> dict:
    await peer.send({"type": "init", "voice": voice})
    return await peer.recv(timeout=240)


async def test_a_voice_uploaded_through_one_replica_speaks_on_the_other_and_its_deletion_reaches_it(
        chatterbox: Cluster):
    base = chatterbox.http_url + PREFIX
    ws_url = chatterbox.ws_url.replace("/v1/stream", PREFIX + "/v1/stream")
    by_replica, opened = await one_session_per_replica(ws_url, chatterbox.headers)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=240, headers=chatterbox.headers) as http:
            created = await http.post("/v1/voices", files={"file": ("me.wav", wav_bytes(2.0, seed=90), "audio/wav")},
                                      data={"name": "shared"})
        assert created.status_code == 201, created.text
        voice = created.json()["id"]
        # Only one replica took the upload; the other reads the clip from the database and prepares it.
        spoken = await asyncio.gather(*(speak_with(peer, voice, f"t-{n}")
                                        for n, peer in enumerate(by_replica.values())))
        for done, samples in spoken:
            assert samples.size > 0 and np.abs(samples).max() > 0
            assert samples.size / 24_000 * 1000 == pytest.approx(done["audio_ms"], abs=1)

        async with httpx.AsyncClient(base_url=base, timeout=60, headers=chatterbox.headers) as http:
            assert (await http.delete(f"/v1/voices/{voice}")).status_code == 204
        deleted = time.monotonic()
        for name, peer in by_replica.items():   # the deleting replica and the other one
            while (reply := await resolve_on_init(peer, voice))["type"] == "ready":
                assert time.monotonic() - deleted < PROPAGATION_BOUND_S, f"{voice} still resolves on {name} after 1 s"
                await asyncio.sleep(0.02)
            assert reply["code"] == "voice_not_found" and not reply["fatal"], (name, reply)
    finally:
        await asyncio.gather(*(peer.close() for peer in opened), return_exceptions=True)
