"""The analytic H100 cost model and the simulated sweep that drives the real batching policy with it.

Nothing here times anything: the model's units and shape, and the simulation's behaviour
(deterministic, worse with more sessions, the serial engine worse than the batched one).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import runpy
from pathlib import Path

import pytest

from benchmarks import simulate_gpu
from benchmarks.cost_model import H100, PARAMETERS, CostModel, FlushShape
from benchmarks.simulate_gpu import SerialPolicy, Workload, capacity, simulate

SHORT = Workload(horizon_s=6.0)


def test_every_parameter_names_its_source():
    assert set(PARAMETERS) == {f.name for f in dataclasses.fields(CostModel)}
    assert all(len(source) > 10 for source in PARAMETERS.values())


def test_t3_sizes_are_the_packages_llama_config():
    spec = importlib.util.find_spec("chatterbox")
    if spec is None:
        pytest.skip("chatterbox extra not installed")
    # Read the config module alone: the package's __init__ pulls in its audio stack.
    path = Path(spec.submodule_search_locations[0]) / "models" / "t3" / "llama_configs.py"
    config = runpy.run_path(str(path))["LLAMA_CONFIGS"]["Llama_520M"]
    assert (H100.t3_layers, H100.t3_hidden, H100.t3_intermediate) == (
        config["num_hidden_layers"], config["hidden_size"], config["intermediate_size"])
    assert config["num_attention_heads"] * config["head_dim"] == H100.t3_hidden
    assert config["num_key_value_heads"] == config["num_attention_heads"]   # KV bytes assume no GQA


def test_units_weights_and_kv_bytes():
    # 30 layers x (4 x 1024^2 + 3 x 1024 x 4096) + the 8194-row speech head: about 512 M parameters
    assert 500e6 < H100.t3_params < 520e6
    assert H100.kv_bytes_per_position == 2 * 30 * 1024 * 2          # K and V, bf16
    weights_s = H100.t3_params * 2 / (3.35e12 * H100.bandwidth_efficiency)
    assert 0.3e-3 < weights_s < 0.5e-3                               # ~1 GB at ~2.7 TB/s


def test_step_time_is_seconds_and_grows_with_rows_and_cache():
    one = H100.t3_step_s(2, 2 * 150)
    assert 1e-3 < one < 10e-3           # milliseconds, not microseconds or seconds
    assert H100.t3_step_s(128, 128 * 150) > H100.t3_step_s(64, 64 * 150) > one
    assert H100.t3_step_s(64, 64 * 600) > H100.t3_step_s(64, 64 * 150)
    # batching: 64 rows cost far less than 32 steps of 2 rows
    assert H100.t3_step_s(64, 64 * 150) < 4 * one
    assert H100.t3_step_s(0, 0) == 0.0


def test_flush_batches_amortise_the_kernel_floor_and_pad_to_buckets():
    single = H100.flush_s([FlushShape(538, 16)])
    eight = H100.flush_s([FlushShape(538, 16)] * 8)
    assert single < eight < 8 * single / 2
    assert H100.bucket(538) == 544 and H100.bucket(544) == 544
    # a short request padded to a longer one's bucket costs as much as the longer one
    assert H100.flush_s([FlushShape(520, 16), FlushShape(700, 16)]) == H100.flush_s([FlushShape(700, 16)] * 2)
    assert H100.flush_s([]) == 0.0


def test_scaled_changes_one_parameter():
    assert H100.scaled("cfm_steps", 0.5).cfm_steps == 5
    assert H100.scaled("graph_kernel_s", 2.0).graph_kernel_s == 2 * H100.graph_kernel_s
    assert H100.scaled("estimator_flops", 2.0).estimator_flops == tuple(2 * c for c in H100.estimator_flops)
    assert H100.scaled("cfm_steps", 0.5).hbm_bytes_per_s == H100.hbm_bytes_per_s


def test_simulation_is_deterministic_for_a_seed():
    assert simulate(6, workload=SHORT) == simulate(6, workload=SHORT)
    assert simulate(6, workload=SHORT) != simulate(6, workload=dataclasses.replace(SHORT, seed=1))


def test_more_sessions_wait_longer():
    few, many = simulate(4, workload=SHORT), simulate(32, workload=SHORT)
    assert few.turns > 0 and many.turns > few.turns
    assert many.ttfa_engine_p95_ms > few.ttfa_engine_p95_ms
    assert many.mean_decode_rows > few.mean_decode_rows


def test_serial_engine_is_worse_than_batching():
    batched, serial = simulate(8, "batched", workload=SHORT), simulate(8, "serial", workload=SHORT)
    assert serial.ttfa_engine_p95_ms > batched.ttfa_engine_p95_ms
    assert serial.mean_decode_rows == 2.0 and serial.mean_flush_batch == 1.0   # one CFG pair at a time


def test_a_slower_gpu_serves_fewer_sessions():
    counts = (2, 4, 8, 16, 32)
    base = capacity("batched", H100, SHORT, counts)
    assert base > 0
    assert capacity("batched", H100.scaled("graph_kernel_s", 4.0), SHORT, counts) < base


def test_serial_policy_runs_one_request_to_completion_first():
    from stream.core.batch_schedule import BatchRequest, Tokens

    policy = SerialPolicy()
    for i, priority in ((1, 1), (2, 0)):
        policy.submit(BatchRequest(id=i, rows=2, prefill_tokens=40, priority=priority, deadline=None,
                                   first_chunk_tokens=8, max_chunk_tokens=48, lookahead_tokens=3), 0.0)
    first = policy.plan(0.0)
    assert [c.id for c in first.prefill] == [2] and first.decode == [2]      # priority 0 first
    for _ in range(10):
        policy.apply(Tokens(2, 1), 0.0)
        assert policy.plan(0.0).decode == [2]                                  # request 1 waits
    policy.apply(Tokens(2, 1, done=True), 0.0)
    final = policy.plan(0.0)
    assert final.flush[-1].final and final.flush[-1].id == 2 and not final.decode
    assert policy.plan(0.0).prefill[0].id == 1


def test_main_writes_json_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out, png = tmp_path / "sim.json", tmp_path / "sim.png"
    simulate_gpu.main(["--quick", "--sessions", "2", "4", "--json", str(out), "--plot", str(png)])
    report = json.loads(out.read_text())
    assert report["label"].startswith("simulated") and report["model"]["name"]
    assert {(p["engine"], p["sessions"]) for p in report["points"]} == {
        (e, n) for e in ("batched", "batched-flush-when-due", "serial") for n in (2, 4)}
    assert png.stat().st_size > 1000


def test_fit_to_a_gpu_check_report_recovers_the_kernel_floors():
    truth = dataclasses.replace(H100, graph_kernel_s=3e-6, eager_op_s=7e-6)
    kv = round(2 * (34 + 34 + 100 / 2))
    stages = {"original_bf16_graph": {"ms_per_step": 1000 * truth.t3_step_s(2, kv)},
              "original_bf16_eager": {"ms_per_step": 1000 * dataclasses.replace(
                  truth, graph_kernel_s=truth.eager_op_s).t3_step_s(2, kv)}}
    fitted = H100.fitted_to_gpu_check({"t3": "full size", "tokens": 100, "stages": stages})
    assert fitted.graph_kernel_s == pytest.approx(3e-6)
    assert fitted.eager_op_s == pytest.approx(7e-6)
    with pytest.raises(ValueError, match="reduced"):
        H100.fitted_to_gpu_check({"t3": "reduced (2 layers)", "stages": stages})
    with pytest.raises(ValueError, match="original_bf16_graph"):
        H100.fitted_to_gpu_check({"t3": "full size", "stages": {}})
