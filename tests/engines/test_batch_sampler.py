"""The counter-based sampler: draws follow the softmax of the filtered logits, are a pure function of
(seed, step, vocab index), and a row's token never depends on the other rows of its batch."""

from __future__ import annotations

import torch

from stream.engines.chatterbox.batch_sampler import sample, uniforms

LOGITS = torch.tensor([1.0, 0.5, 0.0, -1.0, 2.0, 0.2])
# chi-square with 5 degrees of freedom: P(X > 20.5) = 0.001; the draws are fixed by the seed, so
# the test is deterministic, and a biased hash or a wrong filter lands far above this.
CHI2_BOUND = 20.5


def _settings(n: int, temperature: float = 1.0, top_p: float = 1.0, min_p: float = 0.0) -> dict:
    return {"temperature": torch.full((n,), temperature), "top_p": torch.full((n,), top_p),
            "min_p": torch.full((n,), min_p)}


def _chi2(tokens: torch.Tensor, probs: torch.Tensor) -> float:
    observed = torch.bincount(tokens, minlength=probs.numel()).double()
    expected = probs.double() * tokens.numel()
    return float(((observed - expected) ** 2 / expected).sum())


def test_draws_over_steps_follow_the_softmax():
    n = 20_000
    tokens = sample(LOGITS.expand(n, -1), **_settings(n), seed=torch.full((n,), 42), step=torch.arange(n))
    assert _chi2(tokens, torch.softmax(LOGITS, -1)) < CHI2_BOUND


def test_draws_over_seeds_follow_the_tempered_softmax():
    n = 20_000
    tokens = sample(LOGITS.expand(n, -1), **_settings(n, temperature=0.7), seed=torch.arange(n) * 7919,
                    step=torch.zeros(n, dtype=torch.long))
    assert _chi2(tokens, torch.softmax(LOGITS / 0.7, -1)) < CHI2_BOUND


def test_a_skewed_softmax_is_rejected_by_the_bound():
    n = 20_000
    tokens = sample(LOGITS.expand(n, -1), **_settings(n), seed=torch.full((n,), 42), step=torch.arange(n))
    assert _chi2(tokens, torch.softmax(LOGITS * 1.2, -1)) > CHI2_BOUND


def test_min_p_and_top_p_only_leave_the_kept_tokens():
    n = 5_000
    probs = torch.softmax(LOGITS, -1)          # 0.19 0.11 0.07 0.03 0.52 0.08
    steps, seeds = torch.arange(n), torch.full((n,), 5)
    min_p = sample(LOGITS.expand(n, -1), **_settings(n, min_p=0.3), seed=seeds, step=steps)
    assert set(min_p.tolist()) == {0, 4}       # kept: p >= 0.3 * 0.52
    top_p = sample(LOGITS.expand(n, -1), **_settings(n, top_p=0.7), seed=seeds, step=steps)
    assert set(top_p.tolist()) == {0, 4}       # 0.52 + 0.19 reaches 0.7
    kept = probs[[0, 4]] / probs[[0, 4]].sum()
    assert abs(float((top_p == 4).double().mean()) - float(kept[1])) < 0.03


def test_temperature_zero_is_greedy_per_row():
    logits = torch.stack([LOGITS, LOGITS.flip(0)])
    settings = {"temperature": torch.tensor([0.0, 0.0]), "top_p": torch.ones(2), "min_p": torch.zeros(2)}
    tokens = sample(logits, **settings, seed=torch.tensor([1, 2]), step=torch.tensor([0, 9]))
    assert tokens.tolist() == [4, 1]


def test_uniforms_are_a_pure_function_of_seed_step_and_index():
    a = uniforms(torch.tensor([3, 3, 4, 3 + 2**40]), torch.tensor([0, 1, 0, 0]), 64)
    b = uniforms(torch.tensor([3 + 2**40, 3]), torch.tensor([0, 0]), 64)
    assert torch.equal(a[0], b[1]) and torch.equal(a[3], b[0])
    for i, j in ((0, 1), (0, 2), (0, 3)):   # another step, another seed, another high seed word
        assert not torch.equal(a[i], a[j])
    assert float(a.min()) > 0.0 and float(a.max()) < 1.0


def test_a_rows_token_does_not_depend_on_its_batch():
    torch.manual_seed(0)
    vocab = 300
    logits = torch.randn(7, vocab) * 3
    settings = {"temperature": torch.tensor([0.8, 1.0, 0.0, 1.3, 0.5, 1.0, 0.9]),
                "top_p": torch.tensor([0.9, 1.0, 1.0, 0.8, 1.0, 0.95, 1.0]),
                "min_p": torch.tensor([0.05, 0.0, 0.1, 0.0, 0.02, 0.0, 0.2])}
    seed, step = torch.tensor([11, 12, 13, 14, 15, 16, 17]), torch.tensor([0, 5, 2, 9, 1, 1, 30])
    together = sample(logits, **settings, seed=seed, step=step)
    alone = [int(sample(logits[i:i + 1], **{k: v[i:i + 1] for k, v in settings.items()},
                        seed=seed[i:i + 1], step=step[i:i + 1])[0]) for i in range(7)]
    order = torch.tensor([6, 2, 0, 5, 3, 1, 4])
    shuffled = sample(logits[order], **{k: v[order] for k, v in settings.items()}, seed=seed[order], step=step[order])
    assert together.tolist() == alone and shuffled.tolist() == together[order].tolist()
    assert len(set(together.tolist())) > 1


def test_float64_logits_give_the_float32_draws():
    n = 2_000
    settings = _settings(n, temperature=0.9, top_p=0.95, min_p=0.02)
    seed, step = torch.full((n,), 9), torch.arange(n)
    single = sample(LOGITS.expand(n, -1), **settings, seed=seed, step=step)
    double = sample(LOGITS.double().expand(n, -1), **settings, seed=seed, step=step)
    assert (single == double).double().mean() > 0.99
