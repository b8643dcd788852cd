"""`bench_chatterbox --fast-path` on the reduced checkpoint: the report's shape, and equal tokens on both sides."""

from __future__ import annotations

import json

from benchmarks.bench_chatterbox import main
from tests.chatterbox_checkpoint import shared_checkpoint


def test_fast_path_mode_reports_both_sides_with_equal_tokens(tmp_path_factory, tmp_path):
    out = tmp_path / "fast-path.json"
    main(["--fast-path", "--reduced", "--tokens", "8", "--reps", "1", "--voice-seconds", "2",
          "--checkpoint", str(shared_checkpoint(tmp_path_factory)), "--json", str(out)])
    report = json.loads(out.read_text())
    assert report["tokens"] == 8 and report["reps"] == 1 and report["sampler"] == "package"
    assert report["tokens_equal"] is True
    for side in ("fast", "loop"):
        assert report[side]["first_chunk_ms"] > 0 and report[side]["ms_per_token"] > 0
        assert len(report[side]["first_chunk_ms_each"]) == len(report[side]["ms_per_token_each"]) == 1
    (pair,) = report["pairs"]
    assert pair["order"] == ["fast", "loop"] and pair["tokens_equal"] is True
    assert pair["fast"]["tokens"] == pair["loop"]["tokens"] == 8   # random weights never stop early here
    assert report["ratio_ms_per_token_median"] == round(pair["ratio_ms_per_token"], 3)
    assert set(report["uptime"]) == {"before", "after"}
