"""A short load run in CI: 16 concurrent sessions for 20 s of realistic turns, with barge-ins and
dropped sockets, against a real `voicewire serve --engine piper` process. Nothing may go wrong:
no error frames, no broken text coverage, and a clean exit on SIGTERM afterwards."""

from __future__ import annotations

import signal

import pytest

from benchmarks.load import build_parser, run_load, start_server

pytestmark = pytest.mark.slow


async def test_sixteen_sessions_for_twenty_seconds():
    args = build_parser().parse_args(["--sessions", "16", "--duration", "20", "--ramp-s", "3",
                                      "--cancel-rate", "0.2", "--disconnect-rate", "0.1", "--rss-interval-s", "2",
                                      "--kinds", "chat", "npc", "--quiet"])
    proc, url = start_server(args)
    try:
        report = await run_load(url, proc.pid, args)
    finally:
        proc.send_signal(signal.SIGTERM)
        exit_code = proc.wait(30)
    assert report["errors"] == {}
    assert report["coverage_violations"] == 0, report["coverage_examples"]
    assert report["turns_done"] >= 16
    assert report["turns_cancelled"] + report["disconnects"] > 0  # the run did exercise both
    assert report["ttfa_ms"]["p95"] is not None
    assert len(report["rss_mb"]["samples"]) >= 5
    assert exit_code in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after a clean shutdown
