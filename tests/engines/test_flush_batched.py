"""`flush_many`: several requests' flushes batched (issue 13) equal each decoder's own flush.

Four decoders (different voices and prompt lengths, speeds, CFM steps, staggered token counts, one
final) are flushed twice, batched and alone; the audio and the decoders' later flushes must agree:
to ~1e-12 at float64, within float32 rounding at float32. Random-weight S3Gen (`s3gen_fixtures`).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("chatterbox", reason="the chatterbox extra is not installed (pip install 'voicewire[chatterbox]')")

import torch  # noqa: E402

from stream.engines.chatterbox import batched_flush  # noqa: E402
from stream.engines.chatterbox.batched_flush import flush_many  # noqa: E402
from tests.engines.s3gen_fixtures import decoder, one_torch_thread, random_s3gen, random_tokens  # noqa: E402, F401

pytestmark = [pytest.mark.chatterbox, pytest.mark.usefixtures("one_torch_thread")]

# (seed, prompt tokens, CFM steps, speed, tokens before the first flush, tokens added before the second)
SPECS = [(1, 4, 2, 1.0, 9, 5), (2, 6, 2, 1.25, 10, 3), (3, 4, 2, 0.8, 6, 0), (4, 4, 3, 1.0, 9, 3)]
FINAL_FIRST = {2}          # decoder 2 ends with the first flush
FINAL_SECOND = {0}         # decoder 0 ends with the second; 1 and 3 stay open
# Decoders 0 and 3 (CFM steps 2 and 3: two flow batches) share their first HiFT call's shape: one HiFT batch.


def _decoders(s3gen):
    decoders = [decoder(s3gen, seed=seed, prompt_tokens=prompt, cfm_steps=steps, speed=speed)
                for seed, prompt, steps, speed, _, _ in SPECS]
    for d, (seed, *_, first, _) in zip(decoders, SPECS, strict=True):
        for t in random_tokens(seed, first):
            d.add(t)
    return decoders


def _second_round(decoders) -> list[int]:
    """Add the second round's tokens; the indices still open."""
    open_ = [i for i in range(len(SPECS)) if i not in FINAL_FIRST]
    for i in open_:
        seed, *_, first, more = SPECS[i]
        for t in random_tokens(seed, first + more)[first:]:
            decoders[i].add(t)
    return open_


def _batch_sizes(monkeypatch) -> dict[str, list[int]]:
    """Record how many requests each batched flow pass and HiFT call of `flush_many` took."""
    sizes: dict[str, list[int]] = {"flow": [], "hift": []}
    for name, key in (("run_flow", "flow"), ("run_vocoder", "hift")):
        real = getattr(batched_flush, name)

        def spy(model, requests, *args, _real=real, _key=key):
            sizes[_key].append(len(requests))
            return _real(model, requests, *args)

        monkeypatch.setattr(batched_flush, name, spy)
    return sizes


def _compare(dtype: torch.dtype, atol: float, monkeypatch) -> None:
    s3gen = random_s3gen(dtype)
    alone, batched = _decoders(s3gen), _decoders(s3gen)
    sizes = _batch_sizes(monkeypatch)
    first_alone = [d.flush(i in FINAL_FIRST) for i, d in enumerate(alone)]
    first_batched = flush_many([(d, i in FINAL_FIRST) for i, d in enumerate(batched)])
    assert sorted(sizes["flow"]) == [1, 3]          # CFM steps 2 (three requests) and 3 (one)
    assert 2 in sizes["hift"]                       # decoders 0 and 3 went through HiFT together
    assert [len(a) for a in first_batched] == [len(a) for a in first_alone]
    assert all(len(a) > 0 for a in first_alone)
    for a, b in zip(first_alone, first_batched, strict=True):
        np.testing.assert_allclose(b, a, atol=atol, rtol=0)
    for a, b in zip(alone, batched, strict=True):
        assert (a.frames_done, a._frames_out, len(a.tokens)) == (b.frames_done, b._frames_out, len(b.tokens))

    open_ = _second_round(alone)
    assert _second_round(batched) == open_
    second_alone = [alone[i].flush(i in FINAL_SECOND) for i in open_]
    second_batched = flush_many([(batched[i], i in FINAL_SECOND) for i in open_])
    assert [len(a) for a in second_batched] == [len(a) for a in second_alone]
    for a, b in zip(second_alone, second_batched, strict=True):
        np.testing.assert_allclose(b, a, atol=atol, rtol=0)
    # The final phrase has its one-shot length: 960 samples per token at speed 1.
    total = len(first_alone[0]) + len(second_alone[0])
    assert total == (SPECS[0][4] + SPECS[0][5]) * 960


def test_batched_flushes_equal_flushes_alone_float64(monkeypatch):
    _compare(torch.float64, atol=1e-9, monkeypatch=monkeypatch)


def test_batched_flushes_equal_flushes_alone_float32(monkeypatch):
    _compare(torch.float32, atol=1e-4, monkeypatch=monkeypatch)


def test_a_decoder_may_appear_once():
    d = decoder(random_s3gen(), seed=9)
    with pytest.raises(ValueError, match="more than once"):
        flush_many([(d, False), (d, True)])


def test_nothing_due_gives_empty_audio_without_a_flow_pass():
    d = decoder(random_s3gen(), seed=9)
    d.add(5)                                   # one token: still inside the encoder's look-ahead
    assert [a.size for a in flush_many([(d, False)])] == [0]
    assert d.frames_done == 0
