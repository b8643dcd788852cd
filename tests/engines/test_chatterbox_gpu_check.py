"""`benchmarks.gpu_check --device cpu --quick`: the GPU check's correctness stages on a CPU (reduced T3)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("chatterbox", reason="the chatterbox extra is not installed (pip install 'voicewire[chatterbox]')")

pytestmark = pytest.mark.chatterbox


def test_gpu_check_quick_mode_passes_on_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--device", "cpu", "--quick", "--tokens", "8",
                    "--json", str(out)], check=True, timeout=600)
    report = json.loads(out.read_text())
    stages = report["stages"]
    assert report["label"].startswith("random weights")
    assert stages["static_equals_dynamic_fp32"]["ok"]
    assert stages["bf16_logits"]["finite"] and stages["bf16_logits"]["relative_error_vs_fp32"] < 0.05
    assert {"original_fp32_eager", "original_bf16_eager", "turbo_dynamic_eager", "turbo_static_eager"} <= set(stages)
    assert stages["prefix_kv_fp32"]["ok"] and stages["prefix_kv_fp32"]["tokens_equal"]
    assert stages["turbo_static_equals_dynamic_fp32"]["ok"]
    assert stages["batched_padded_equals_unpadded_float64"]["ok"]
    assert set(stages["batched_step_bfloat16"]["ms_per_step_by_rows"]) == {"2", "8"}
