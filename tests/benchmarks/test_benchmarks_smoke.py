"""Tiny runs of the benchmark scenarios against a real piper server: they finish and report well.

Speed is not asserted (CI machines are shared and noisy); the shape of the report is.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from benchmarks import concurrency, tables, ttfa

FAST = ["--kinds", "npc", "--rate", "150", "--buffers-ms", "0,100"]


def test_ttfa_scenario_reports_every_path_ratio_and_target(tmp_path):
    ttfa.main([*FAST, "--replies", "2", "--warmup", "0", "--out", str(tmp_path), "--name", "smoke"])
    report = json.loads((tmp_path / "smoke.json").read_text())
    assert (tmp_path / "smoke.png").stat().st_size > 1000
    assert report["scenario"] == "ttfa" and report["engine"]["timing_only"] is False
    assert sorted({(t["path"], t["reply"]) for t in report["turns"]}) == sorted(
        (p, r) for p in ("voicewire", "baseline_a", "baseline_b") for r in ("npc-00", "npc-01")
    )
    for path in ("voicewire", "baseline_a", "baseline_b"):
        s = report["summary"][path]
        assert s["turns"] == 2 and s["ttfa_ms"]["n"] == 2
        assert 0 < s["ttfb_ms"]["p50"] <= s["ttfa_ms"]["p50"]
        assert set(s["gaps"]) == {"0ms", "100ms"}
    ours = [t for t in report["turns"] if t["path"] == "voicewire"]
    assert all(t["server_ttfa_ms"] is not None and t["phrases"] >= 1 and t["first_phrase"] for t in ours)
    assert report["ratios"]["ttfa_vs_a"]["n"] == 2 and report["ratios"]["ttfa_vs_a"]["p50"] > 0
    assert set(report["targets"]) == {"gapped_turns_100ms"}  # no `long` replies, no peer in this run
    assert report["machine"]["cores"] >= 1 and report["pacing"]["tokens_per_second"] == 150
    assert "load average" in report["machine"]["uptime_before"] and report["machine"]["uptime_after"]
    assert "| (a) whole reply, one call | 2 |" in tables.ttfa_markdown(report)
    assert (tmp_path / "smoke.md").read_text().strip() == tables.ttfa_markdown(report).strip()


@pytest.mark.skipif(importlib.util.find_spec("RealtimeTTS") is None, reason="baseline (c) needs the 'peer' extra")
def test_ttfa_with_the_peer_pairs_every_path_per_reply_and_pass(tmp_path):
    # In a child process: RealtimeTTS opens PyAudio, which loads ALSA's configuration once per process
    # and would keep the speaker-playback tests from pointing it at their null device.
    subprocess.run([sys.executable, "-m", "benchmarks.ttfa", *FAST, "--replies", "1", "--warmup", "0", "--passes",
                    "2", "--peer", "--no-stock", "--out", str(tmp_path), "--name", "peer"], check=True, timeout=600)
    report = json.loads((tmp_path / "peer.json").read_text())
    paths = ("voicewire", "baseline_a", "baseline_b", "baseline_c")
    assert sorted((t["path"], t["run"]) for t in report["turns"]) == sorted((p, r) for p in paths for r in (0, 1))
    assert report["summary"]["baseline_c"]["ttfa_ms"]["n"] == 2 and report["ratios"]["ttfa_vs_c"]["n"] == 2
    assert {"ttfa_vs_c_p50", "ttfa_vs_c_p90", "gapped_turns_100ms"} <= set(report["targets"])
    settings = report["peers"]["baseline_c"]
    assert settings["package"] == "realtimetts 0.8.10" and settings["TextToAudioStream"]["tokenizer"] == "rule-based"
    assert settings["play_async"]["minimum_first_fragment_length"] == 10
    assert "RealtimeTTS settings in this run" in tables.ttfa_markdown(report)


def test_concurrency_scenario_reports_each_level_and_the_capacity(tmp_path):
    concurrency.main(
        [
            *FAST,
            "--sessions",
            "1,2",
            "--turns",
            "1",
            "--stagger-ms",
            "0",
            "--think-ms",
            "0",
            "--full-sweep",
            "--p95-bound-ms",
            "60000",
            "--out",
            str(tmp_path),
            "--name",
            "smoke",
        ]
    )
    report = json.loads((tmp_path / "smoke.json").read_text())
    assert (tmp_path / "smoke.png").stat().st_size > 1000
    assert [lv["sessions"] for lv in report["levels"]] == [1, 2]
    assert [lv["turns"] for lv in report["levels"]] == [1, 2]
    for lv in report["levels"]:
        assert lv["ttfa_ms"]["p95"] > 0 and lv["cpu"]["server_mean"] is not None
        assert set(lv["gaps"]) == {"0ms", "100ms"}
    assert report["capacity"]["bound_ms"] == 60000 and report["capacity"]["buffer"] == "100ms"
    assert len(report["turns"]) == 3
    assert "Largest N" in tables.concurrency_markdown(report)


@pytest.mark.parametrize("levels", ["0,1", "x", ""])
def test_concurrency_rejects_a_bad_level_list_before_starting_a_server(levels, capsys):
    with pytest.raises(SystemExit):
        concurrency.main(["--sessions", levels])
    assert "--sessions" in capsys.readouterr().err
