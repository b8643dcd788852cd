"""Chatterbox batching over the real websocket: a seeded turn sounds the same beside busy sessions,
concurrent sessions share decode steps, and the row budget is reported (random weights, real server)."""

from __future__ import annotations

import asyncio
import base64
import copy
import dataclasses
import re

import httpx
import numpy as np
import pytest

pytest.importorskip("chatterbox", reason="the chatterbox extra is not installed (pip install 'voicewire[chatterbox]')")

from stream.audio.codecs import decode_samples  # noqa: E402
from stream.engines.chatterbox.batching import BatchingExecutor  # noqa: E402
from stream.engines.chatterbox.engine import StreamTuning  # noqa: E402
from stream.settings import Limits, Settings  # noqa: E402
from tests.chatterbox_checkpoint import TEST_TUNING, shared_engine  # noqa: E402
from tests.conftest import start_server  # noqa: E402
from tests.wire import RawPeer  # noqa: E402

pytestmark = [pytest.mark.chatterbox, pytest.mark.timeout(600)]   # full-size S3Gen flushes on a shared CPU

ROWS = 12
TEXTS = ["Sure, I can help with that.", "The weather is lovely today.", "Let me check the order for you.",
         "That will be ready on Monday.", "Thanks for waiting a moment.", "Is there anything else at all?"]


@pytest.fixture
def server(tmp_path, tmp_path_factory):
    """A server whose engine batches 12 rows (6 CFG sessions) and caps phrases at 12 tokens."""
    engine = copy.copy(shared_engine(tmp_path_factory))
    engine.tuning = StreamTuning(**{**TEST_TUNING, "max_new_tokens": 12})
    engine.settings = dataclasses.replace(engine.settings, batch_rows=ROWS)
    # Six sessions' full-size S3Gen flushes together take minutes on a loaded 2-core CPU: the stall
    # limit (meant for a hung engine) must not cut them.
    limits = Limits(engine_stall_timeout_s=600)
    handle = start_server(engine, Settings(port=0, data_dir=str(tmp_path), limits=limits))
    assert isinstance(handle.runtime.executor, BatchingExecutor)
    yield handle
    handle.stop()


async def speak(url: str, text: str, seed: int) -> np.ndarray:
    """One session, one seeded turn; its PCM."""
    peer, _ = await RawPeer.open(url)
    await peer.send({"type": "text", "context_id": "c", "text": text, "generation": {"seed": seed}})
    await peer.send({"type": "end", "context_id": "c"})
    _, seen = await peer.until("done", "c", timeout=280)
    await peer.close()
    audio = [decode_samples(base64.b64decode(m["audio"]), "pcm_s16le") for m in seen if m["type"] == "audio"]
    return np.concatenate(audio)


def batch_rows_at_least(metrics: str, rows: int) -> float:
    """Decode steps with at least `rows` rows, from the `voicewire_engine_batch_rows` histogram."""
    buckets = {float(le): float(n) for le, n in
               re.findall(r'voicewire_engine_batch_rows_bucket\{le="([^"]+)"\} (\S+)', metrics)}
    below = max(le for le in buckets if le < rows)
    return buckets[float("inf")] - buckets[below]


async def test_a_seeded_turn_sounds_the_same_beside_five_busy_sessions(server):
    alone = await speak(server.ws_url, TEXTS[0], seed=11)
    together = await asyncio.gather(speak(server.ws_url, TEXTS[0], seed=11),
                                    *(speak(server.ws_url, text, seed=20 + i) for i, text in enumerate(TEXTS[1:])))
    assert len(together[0]) == len(alone) > 0
    np.testing.assert_allclose(together[0], alone, atol=2e-3)
    assert all(len(pcm) > 0 for pcm in together[1:])


async def test_concurrent_sessions_share_decode_steps(server):
    sessions = 3
    before = httpx.get(f"{server.http_url}/metrics").text
    assert batch_rows_at_least(before, 2 * sessions) == 0
    await asyncio.gather(*(speak(server.ws_url, text, seed=i) for i, text in enumerate(TEXTS[:sessions])))
    metrics = httpx.get(f"{server.http_url}/metrics").text
    assert batch_rows_at_least(metrics, 2 * sessions) > 0      # CFG: two rows per session, all in one step
    assert "voicewire_engine_step_seconds_count" in metrics
    assert float(re.search(r"voicewire_engine_queue_wait_seconds_count (\S+)", metrics)[1]) >= sessions
    assert "voicewire_engine_deadline_misses_total" in metrics


async def test_the_row_budget_is_in_ready_and_healthz(server):
    peer, ready = await RawPeer.open(server.ws_url)
    await peer.close()
    assert ready["limits"]["engine_batch_rows"] == ROWS
    assert ready["limits"]["engine_max_queue_wait_s"] > 0
    assert "batching" in ready["capabilities"]["notes"]
    health = httpx.get(f"{server.http_url}/healthz").json()
    assert health["limits"]["engine_batch_rows"] == ROWS
