"""Padded batched T3 steps (`T3Batch(buckets=...)`): inert padding rows never change a real row, the
padded step stays free of host syncs, and on CUDA the captured graph replays the eager step.

A reduced random-weight T3 (the fixture of `test_batched_t3`); the CUDA test skips without CUDA.
"""

from __future__ import annotations

import pytest

pytest.importorskip("chatterbox", reason="the chatterbox extra is not installed (pip install 'voicewire[chatterbox]')")

import torch  # noqa: E402

from stream.engines.chatterbox.batched_graphs import bucket_for, check_buckets, default_buckets  # noqa: E402
from stream.engines.chatterbox.batched_t3 import T3Batch  # noqa: E402
from tests.engines.test_batched_t3 import POSITIONS, ROWS, _prefix, _settings, _text, _two_open_groups, t3s  # noqa: E402, F401
from tests.engines.test_chatterbox_static_decode import _NoHostSync  # noqa: E402

pytestmark = pytest.mark.chatterbox

BUCKETS = (2, 4, 8)
# (voice, text seed, text length, CFG, token cap, join iteration): steps of 3, 5, 6, 4, 2 and 1 real rows as
# groups join and leave - padded to 4, 8 or 2, or filling a bucket exactly with fewer groups than rows.
GROUPS = [(0, 1, 10, True, 9, 0), (1, 2, 12, False, 12, 0), (2, 3, 8, True, 6, 2), (0, 4, 9, False, 10, 3)]


def _run(t3, voices, dtype: torch.dtype, device: str = "cpu", **options) -> tuple[list[list[int]], list[torch.Tensor]]:
    """Every group's tokens and the hidden states of every step, on one pool; groups join at staggered
    iterations and leave at their token cap (the stop token)."""
    batch = T3Batch(t3, rows=ROWS, max_positions=POSITIONS, device=device, dtype=dtype, **options)
    stop = t3.hp.stop_speech_token
    open_: dict[int, int] = {}
    tokens: list[list[int]] = [[] for _ in GROUPS]
    hidden: list[torch.Tensor] = []
    for iteration in range(40):
        for i, (voice, seed, length, cfg, cap, join) in enumerate(GROUPS):
            if join == iteration:
                embeds = _prefix(t3, voices[voice], 0.5, _text(t3, seed, length), cfg).to(device)
                settings = _settings(0.5 if cfg else 0.0, cap, temperature=0.0 if i == 3 else 0.8)
                open_[i] = batch.open(embeds, settings, seed=seed)
                batch.prefill(open_[i], 0, batch.prefix_length(open_[i]))
        if not open_:
            break
        names = sorted(open_)
        hidden.append(torch.cat([batch.last_hidden(open_[i]) for i in names]).cpu())
        for i, token in zip(names, batch.step([open_[i] for i in names]).tolist(), strict=True):
            if token == stop:
                batch.close(open_.pop(i))
            else:
                tokens[i].append(token)
    assert batch.free_rows == ROWS
    return tokens, hidden


def test_inert_padding_rows_change_no_real_row(t3s):  # noqa: F811
    """float64: the padded step gives exactly the unpadded step's tokens and hidden states."""
    t3 = t3s[0][torch.float64]
    plain_tokens, plain_hidden = _run(t3, t3s[1], torch.float64)
    padded_tokens, padded_hidden = _run(t3, t3s[1], torch.float64, buckets=BUCKETS)
    assert padded_tokens == plain_tokens
    assert [len(t) for t in plain_tokens] == [cap for *_, cap, _ in GROUPS]
    assert len(padded_hidden) == len(plain_hidden)
    for padded, plain in zip(padded_hidden, plain_hidden, strict=True):
        assert torch.equal(padded, plain)


def test_padded_step_performs_no_host_sync(t3s):  # noqa: F811
    batch = T3Batch(t3s[0][torch.float32], rows=ROWS, max_positions=POSITIONS, device="cpu", dtype=torch.float32,
                    buckets=BUCKETS, cuda_graphs=True)      # off CUDA: the same padded step, eager
    with_cfg, without = _two_open_groups(batch, t3s)
    guard = _NoHostSync()
    with guard:
        assert batch.step([with_cfg, without]).shape == (2,)     # 3 rows padded to 4
        assert batch.step([without]).shape == (1,)               # 1 row padded to 2
        batch.step([with_cfg])                                   # 2 rows: the bucket is full
    assert "index_copy_" in guard.ops and "scaled_dot_product_attention" in guard.ops


def test_buckets_and_their_errors(t3s):  # noqa: F811
    assert default_buckets(128) == (2, 4, 8, 16, 32, 64, 128)
    assert default_buckets(32)[-1] == 32 and default_buckets(6) == (2, 4, 8) and default_buckets(1) == (2,)
    assert bucket_for(3, (2, 4, 8)) == 4 and bucket_for(4, (2, 4, 8)) == 4
    assert check_buckets([8, 2, 4], 8) == (2, 4, 8)
    with pytest.raises(ValueError, match="exceed the largest bucket"):
        bucket_for(9, (2, 4, 8))
    t3 = t3s[0][torch.float32]
    with pytest.raises(ValueError, match="must hold the pool's 6 rows"):
        T3Batch(t3, rows=6, max_positions=POSITIONS, device="cpu", dtype=torch.float32, buckets=(2, 4))
    with pytest.raises(ValueError, match="cuda_graphs needs buckets"):
        T3Batch(t3, rows=6, max_positions=POSITIONS, device="cpu", dtype=torch.float32, cuda_graphs=True)
    padded = T3Batch(t3, rows=6, max_positions=POSITIONS, device="cpu", dtype=torch.float32, buckets=(8,))
    assert padded.rows == padded.row_budget == padded.free_rows == 6     # the scratch row is not handed out


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: capture and replay of the batched step")
def test_cuda_graph_replay_gives_the_eager_tokens(t3s):  # noqa: F811
    t3 = t3s[0][torch.float32].to("cuda")
    try:
        eager_tokens, eager_hidden = _run(t3, t3s[1], torch.float32, "cuda", buckets=BUCKETS)
        graph_tokens, graph_hidden = _run(t3, t3s[1], torch.float32, "cuda", buckets=BUCKETS, cuda_graphs=True)
    finally:
        t3.to("cpu")
    assert graph_tokens == eager_tokens
    for graphed, eager in zip(graph_hidden, eager_hidden, strict=True):
        torch.testing.assert_close(graphed, eager, atol=1e-5, rtol=0)
