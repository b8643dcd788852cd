"""The load run against the batching Chatterbox engine (issue 13): four voice-agent sessions for 20 s
of realistic turns, with barge-ins and dropped sockets, on a real server whose engine batches every
session's phrases (reduced random checkpoint, phrases capped at 12 tokens). Nothing may go wrong:
no error frames, no broken text coverage, and the decode steps really were shared."""

from __future__ import annotations

import copy
import dataclasses
import os
import re

import httpx
import pytest

pytest.importorskip("chatterbox", reason="the chatterbox extra is not installed (pip install 'voicewire[chatterbox]')")

from benchmarks.load import build_parser, run_load  # noqa: E402
from stream.engines.chatterbox.batching import BatchingExecutor  # noqa: E402
from stream.engines.chatterbox.engine import StreamTuning  # noqa: E402
from stream.settings import Limits, Settings  # noqa: E402
from tests.chatterbox_checkpoint import TEST_TUNING, shared_engine  # noqa: E402
from tests.conftest import start_server  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.chatterbox, pytest.mark.timeout(900)]

SESSIONS = 4


def steps_with_rows(metrics: str, rows: int) -> float:
    """Decode steps of at least `rows` rows, read from the `voicewire_engine_batch_rows` histogram."""
    buckets = {float(le): float(n) for le, n in
               re.findall(r'voicewire_engine_batch_rows_bucket\{le="([^"]+)"\} (\S+)', metrics)}
    return buckets[float("inf")] - max(n for le, n in buckets.items() if le < rows)


async def test_four_sessions_of_realistic_turns_on_the_batching_engine(tmp_path, tmp_path_factory):
    engine = copy.copy(shared_engine(tmp_path_factory))
    engine.tuning = StreamTuning(**{**TEST_TUNING, "max_new_tokens": 12})
    engine.settings = dataclasses.replace(engine.settings, batch_rows=2 * SESSIONS)
    # Full-size S3Gen flushes of four sessions on a 2-core CPU: the stall limit is for a hung engine.
    handle = start_server(engine, Settings(port=0, data_dir=str(tmp_path),
                                           limits=Limits(engine_stall_timeout_s=600)))
    try:
        assert isinstance(handle.runtime.executor, BatchingExecutor)
        args = build_parser().parse_args(["--url", handle.ws_url, "--sessions", str(SESSIONS), "--duration", "20",
                                          "--ramp-s", "2", "--cancel-rate", "0.4", "--disconnect-rate", "0.2",
                                          "--kinds", "chat", "npc", "--turn-timeout-s", "400", "--quiet"])
        report = await run_load(handle.ws_url, os.getpid(), args)
        metrics = httpx.get(f"{handle.http_url}/metrics").text
    finally:
        handle.stop()
    assert report["errors"] == {}
    assert report["coverage_violations"] == 0, report["coverage_examples"]
    assert report["turns_done"] + report["turns_cancelled"] >= SESSIONS
    assert report["turns_cancelled"] + report["disconnects"] > 0   # the run did exercise both
    assert report["ttfa_ms"]["p95"] is not None
    assert steps_with_rows(metrics, 4) > 0   # two CFG sessions or more decoded in one step
