"""A short load run in CI: 16 concurrent sessions for 20 s of realistic turns, with barge-ins and
dropped sockets, against a real `voicewire serve --engine piper` process. Nothing may go wrong:
no error frames, no broken text coverage, and a clean exit on SIGTERM afterwards."""

from __future__ import annotations

import signal

import pytest

from benchmarks.load import build_parser, rss_after_warmup, rss_line, run_load, start_server

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
    assert report["rss_mb"]["after_warmup"]["warmup_s"] == 5.0  # max(ramp 3 s, a quarter of 20 s)
    assert "after warm-up (5 s)" in rss_line(report)
    assert exit_code in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after a clean shutdown


def test_rss_after_warmup_is_judged_from_warmup_to_the_deadline():
    # 200 MB at start, a climb while sessions come up, then +1 MB per minute, then the deadline's drain.
    samples = [(0.0, 200.0, 0.0), (10.0, 600.0, 1.0), (20.0, 900.0, 2.0)]
    samples += [(float(t), 900.0 + (t - 20) / 60, None) for t in range(30, 621, 10)]
    samples += [(630.0, 1100.0, None)]
    warm = rss_after_warmup(samples, 150.0, 600.0)
    assert warm["from_s"] == 150.0 and warm["to_s"] == 600.0
    assert warm["first"] == pytest.approx(902.2, abs=0.1) and warm["last"] == pytest.approx(909.7, abs=0.1)
    assert warm["slope_mb_per_min"] == pytest.approx(1.0)
    assert warm["max"] < 1000 and warm["growth"] == pytest.approx(7.5, abs=0.1)
    at = [t for t, _ in warm["checkpoints"]]  # every tenth of the span, at the nearest sample
    assert len(at) == 11 and at[0] == 150.0 and at[-1] == 600.0
    assert all(40 <= b - a <= 50 for a, b in zip(at, at[1:], strict=False))
    assert rss_after_warmup(samples[:3], 150.0, 600.0) is None
    report = {"rss_mb": {"start": 200.0, "end": 1100.0, "max": 1100.0, "after_warmup": warm}}
    assert rss_line(report) == ("RSS: 200 MB at start; after warm-up (150 s): 902 -> 910 MB at 600 s, slope "
                                "+1.0 MB/min, max 910 MB; 1100 MB at the end (after the deadline's drain), max 1100 MB")
