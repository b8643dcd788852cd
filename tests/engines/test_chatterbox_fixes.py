"""Review defects of the Chatterbox engine (issue 12), each pinned by a test that fails on the old code.

These need the package's classes but no checkpoint: a reduced T3 is built in memory.
"""

from __future__ import annotations

import inspect
import threading
import time

import pytest

pytest.importorskip("chatterbox", reason="the chatterbox extra is not installed (pip install 'voicewire[chatterbox]')")

import torch  # noqa: E402

from stream.core.protocol import GenerationSettings  # noqa: E402
from stream.engines.chatterbox import ChatterboxEngine  # noqa: E402
from stream.engines.chatterbox.conditioning_cache import ConditioningCache  # noqa: E402
from stream.engines.chatterbox.decoding import meanflow_solve  # noqa: E402
from stream.engines.chatterbox.loading import cast_t3  # noqa: E402
from stream.engines.chatterbox.sampling import TokenReadback  # noqa: E402
from stream.settings import Settings  # noqa: E402
from tests.chatterbox_checkpoint import reduced_t3  # noqa: E402

pytestmark = pytest.mark.chatterbox


def _angles(inv_freq: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """The rotary angles as the Llama rotary embedding forms them (float32 outer product)."""
    return positions.float()[:, None] * inv_freq.float()[None, :]


def test_bfloat16_cast_keeps_rope_tables_float32():
    from chatterbox.models.t3 import T3

    with reduced_t3():
        t3 = T3().eval()
    rotary = t3.tfmr.rotary_emb
    reference = rotary.inv_freq.clone()
    positions = torch.tensor([300, 1200])
    naive = _angles(reference.to(torch.bfloat16), positions)   # what a plain `.to(bfloat16)` leaves
    assert (naive - _angles(reference, positions)).abs().max() > 0.1
    cast_t3(t3, torch.bfloat16)
    assert t3.speech_head.weight.dtype == torch.bfloat16
    assert rotary.inv_freq.dtype == torch.float32 and torch.equal(rotary.inv_freq, reference)
    assert rotary.original_inv_freq.dtype == torch.float32
    assert torch.equal(_angles(rotary.inv_freq, positions), _angles(reference, positions))
    x = torch.zeros(1, 1, t3.dim, dtype=torch.bfloat16)
    cos, _ = rotary(x, positions[None])
    expected = _angles(reference, positions).cos()
    assert (cos.float()[0, :, : expected.shape[1]] - expected).abs().max() < 1e-2   # bf16 rounding of cos only


@pytest.mark.parametrize(("variant", "cls_path"), [("chatterbox-turbo", "chatterbox.tts_turbo.ChatterboxTurboTTS"),
                                                   ("chatterbox", "chatterbox.tts.ChatterboxTTS")])
def test_sampling_defaults_match_the_packages_generate(tmp_path, variant, cls_path):
    import importlib

    module, _, name = cls_path.rpartition(".")
    signature = inspect.signature(getattr(importlib.import_module(module), name).generate)
    engine = ChatterboxEngine(Settings(data_dir=str(tmp_path)), variant=variant)
    defaults = engine.generation(GenerationSettings())
    used = {"temperature", "top_p", "repetition_penalty"} | (set() if engine.spec.turbo else {"min_p", "cfg_weight"})
    for field in used:
        assert getattr(defaults, field) == signature.parameters[field].default, field
    assert engine.generation(GenerationSettings(top_p=1.0)).top_p == 1.0       # an explicit value wins


class _Bf16Estimator(torch.nn.Module):
    """Stands in for the package's meanflow estimator: bf16 weights, which float32 inputs alone would fail."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(80, 80, dtype=torch.bfloat16)

    @property
    def dtype(self) -> torch.dtype:
        return self.proj.weight.dtype

    def forward(self, x, *, mask, mu, t, spks, cond, r):
        return self.proj((x + mu + cond).transpose(1, 2)).transpose(1, 2) * mask + spks[:, :, None] * t * r


def test_meanflow_solve_runs_a_bf16_estimator_on_float32_inputs():
    frames = 12
    z, mu, cond = (torch.randn(1, 80, frames) for _ in range(3))
    mask, spks = torch.ones(1, 1, frames), torch.randn(1, 80)
    out = meanflow_solve(_Bf16Estimator(), z, mu=mu, mask=mask, spks=spks, cond=cond, t_span=torch.linspace(0, 1, 3))
    assert out.dtype == torch.float32 and out.shape == z.shape and torch.isfinite(out).all()


def test_token_readback_returns_tokens_in_order_on_cpu():
    readback = TokenReadback(torch.device("cpu"))
    for value in (5, 17):
        readback.push(torch.tensor([[value]]))
    assert [readback.pop(), readback.pop()] == [5, 17]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: pinned buffer + event path")
def test_token_readback_through_pinned_buffer_on_cuda():
    readback = TokenReadback(torch.device("cuda"))
    values = []
    for value in range(6):
        readback.push(torch.tensor([[value]], device="cuda"))
        if value:
            values.append(readback.pop())      # one step behind, as the decode loop reads
    values.append(readback.pop())
    assert values == list(range(6))


def test_conditioning_cache_key_locks_do_not_grow():
    cache: ConditioningCache[str] = ConditioningCache(None, 4, "model", dump=str.encode, load=bytes.decode)
    for i in range(50):
        cache.get_or_prepare(f"clip-{i}", lambda i=i: f"value-{i}")
    assert cache._key_locks == {}
    calls: list[int] = []
    gate = threading.Event()

    def slow() -> str:
        calls.append(1)
        gate.wait(5)
        return "shared"

    threads = [threading.Thread(target=cache.get_or_prepare, args=("same", slow)) for _ in range(4)]
    for t in threads:
        t.start()
    while not calls:
        time.sleep(0.01)
    gate.set()
    for t in threads:
        t.join()
    assert len(calls) == 1 and cache._key_locks == {}


def test_benchmark_uses_a_ten_second_voice_by_default():
    from benchmarks.bench_chatterbox import parse_args

    assert parse_args([]).voice_seconds == 10.0
