"""The S3Gen flush fast path: padded = unpadded, per-request HiFT noise, bf16 flow (issue 12 item 2).

Random-weight S3Gen from the package's class (`s3gen_fixtures`), CPU, small token counts.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

pytest.importorskip("chatterbox", reason="the chatterbox extra is not installed (pip install 'voicewire[chatterbox]')")

import torch  # noqa: E402

from stream.engines.chatterbox.decoding import (  # noqa: E402
    BUCKET_TOKENS,
    VocoderRequest,
    bucket_tokens,
    cfg_euler_solve,
    encode,
    hift_excitation,
    run_flow,
    run_vocoder,
)
from stream.engines.chatterbox.loading import cast_s3gen  # noqa: E402
from tests.engines.s3gen_fixtures import decoder, one_torch_thread, random_s3gen, random_tokens  # noqa: E402, F401

pytestmark = [pytest.mark.chatterbox, pytest.mark.usefixtures("one_torch_thread")]


def test_buckets_are_multiples_of_the_bucket_size():
    assert [bucket_tokens(n) for n in (1, BUCKET_TOKENS, BUCKET_TOKENS + 1)] == [BUCKET_TOKENS, BUCKET_TOKENS,
                                                                                 2 * BUCKET_TOKENS]


@torch.inference_mode()
def test_encoder_follows_the_packages_forward_exactly():
    flow = random_s3gen().flow
    tokens = torch.tensor([random_tokens(1, 21)])
    h, _ = flow.encoder(flow.input_embedding(tokens), torch.tensor([21]))
    assert torch.equal(encode(flow, tokens, torch.tensor([21])), flow.encoder_proj(h))


@torch.inference_mode()
def test_padded_encoder_rows_equal_unpadded():
    flow = random_s3gen().flow
    tokens = torch.tensor([random_tokens(2, 19)])
    alone = encode(flow, tokens, torch.tensor([19]))
    padded = encode(flow, torch.cat([tokens, torch.tensor([random_tokens(3, 13)])], dim=1), torch.tensor([19]))
    torch.testing.assert_close(padded[:, :38], alone, atol=1e-5, rtol=0)


@torch.inference_mode()
def test_cfg_euler_solve_equals_the_packages_solver():
    s3gen = random_s3gen()
    cfm = s3gen.flow.decoder
    g = torch.Generator().manual_seed(4)
    z, mu, cond = (torch.randn(2, 80, 20, generator=g) for _ in range(3))
    mask, spks = torch.ones(2, 1, 20), torch.randn(2, 80, generator=g)
    mask[1, :, 15:] = 0
    t_span = 1 - torch.cos(torch.linspace(0, 1, 3) * 0.5 * torch.pi)
    ours = cfg_euler_solve(cfm.estimator, z, mu=mu, mask=mask, spks=spks, cond=cond, t_span=t_span,
                           cfg_rate=cfm.inference_cfg_rate)
    assert torch.equal(ours, cfm.solve_euler(z, t_span=t_span, mu=mu, mask=mask, spks=spks, cond=cond))


def _request(s3gen, final: bool, *, meanflow: bool = False, tokens: int = 13):
    d = decoder(s3gen, seed=5, meanflow=meanflow)
    for t in random_tokens(6, tokens):
        d.add(t)
    return d.begin_flush(final)


@pytest.mark.parametrize(("final", "meanflow"), [(False, False), (True, False), (False, True)])
@torch.inference_mode()
def test_padded_mel_equals_unpadded_float32(final, meanflow):
    s3gen = random_s3gen()
    request = _request(s3gen, final, meanflow=meanflow)
    length = request.tokens.shape[1]
    alone = run_flow(s3gen.flow, [request], pad_to=length)[0]
    assert alone.shape[2] == request.keep[1] - request.keep[0] > 0
    for extra in (1, 3, 2 * BUCKET_TOKENS - 1):
        padded = run_flow(s3gen.flow, [request], pad_to=length + extra)[0]
        torch.testing.assert_close(padded, alone, atol=1e-5, rtol=0)


@torch.inference_mode()
def test_padded_mel_equals_unpadded_float64():
    s3gen = random_s3gen(torch.float64)
    request = _request(s3gen, final=False, tokens=9)
    length = request.tokens.shape[1]
    alone = run_flow(s3gen.flow, [request], pad_to=length)[0]
    padded = run_flow(s3gen.flow, [request], pad_to=length + 11)[0]
    assert alone.dtype == torch.float64
    torch.testing.assert_close(padded, alone, atol=1e-10, rtol=0)


def test_padding_shorter_than_the_request_is_refused():
    s3gen = random_s3gen()
    request = _request(s3gen, final=False, tokens=5)
    with pytest.raises(ValueError, match="pad_to"):
        run_flow(s3gen.flow, [request], pad_to=request.tokens.shape[1] - 1)


def test_hift_noise_is_indexed_by_position():
    long_phases, long_noise = hift_excitation(7, 20, 40, 9, torch.device("cpu"), torch.float32)
    phases, noise = hift_excitation(7, 30, 10, 9, torch.device("cpu"), torch.float32)
    assert torch.equal(noise, long_noise[:, :, 10 * 480: 20 * 480])       # a block boundary lies inside
    assert torch.equal(hift_excitation(7, 20, 5, 9, torch.device("cpu"), torch.float32)[0], long_phases)
    assert not torch.equal(phases, long_phases)
    assert torch.all(phases[:, 0] == 0) and phases.abs().max() <= torch.pi
    other = hift_excitation(8, 30, 10, 9, torch.device("cpu"), torch.float32)[1]
    assert not torch.equal(other, noise)


@torch.inference_mode()
def test_vocoder_is_the_packages_hift_given_the_same_random_draws():
    hift = random_s3gen().mel2wav
    mel = torch.randn(1, 80, 12, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(3)
    wav, source = hift.inference(speech_feat=mel)
    torch.manual_seed(3)                        # the package's draws, in its order: phases, then noise
    phases = torch.distributions.Uniform(-torch.pi, torch.pi).sample((1, 9, 1))
    phases[:, 0] = 0
    noise = torch.randn(1, 9, 12 * 480)
    ours, our_source = run_vocoder(hift, [VocoderRequest(mel=mel, cache=torch.zeros(1, 1, 0), phases=phases,
                                                         noise=noise)])[0]
    assert torch.equal(our_source, source)
    assert torch.equal(ours, wav[0])


def _stream(s3gen, seed: int) -> np.ndarray:
    d = decoder(s3gen, seed=seed)
    tokens = random_tokens(seed, 14)
    out = []
    for i, t in enumerate(tokens):
        d.add(t)
        if i == 8:
            out.append(d.flush())
    out.append(d.flush(final=True))
    return np.concatenate(out)


def test_flush_leaves_the_global_rng_alone_and_its_seed_reproduces_the_audio():
    s3gen = random_s3gen()
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first = _stream(s3gen, seed=11)
    assert torch.equal(torch.random.get_rng_state(), before)       # HiFT no longer draws from it
    torch.rand(7)                                                    # a stranger's draw changes nothing
    np.testing.assert_array_equal(_stream(s3gen, seed=11), first)
    assert len(first) == 14 * 960
    assert not np.array_equal(_stream(s3gen, seed=12)[:2000], first[:2000])


@torch.inference_mode()
def test_bfloat16_flow_is_finite_and_close_to_float32():
    s3gen = random_s3gen()
    narrow = copy.deepcopy(s3gen)
    cast_s3gen(narrow, torch.bfloat16)
    assert narrow.flow.decoder.estimator.dtype == torch.bfloat16
    assert next(narrow.mel2wav.parameters()).dtype == torch.float32        # HiFT stays float32
    assert narrow.flow.input_embedding.weight.dtype == torch.float32
    request = _request(s3gen, final=True, tokens=10)
    reference = run_flow(s3gen.flow, [request])[0]
    mel = run_flow(narrow.flow, [_request(narrow, final=True, tokens=10)])[0]
    assert mel.dtype == torch.float32 and torch.isfinite(mel).all()
    relative = (mel - reference).norm() / reference.norm()
    assert relative < 0.02, f"bf16 mel off by {relative:.2%}"
    d = decoder(narrow, seed=5)
    for t in random_tokens(6, 10):
        d.add(t)
    assert np.isfinite(d.flush(final=True)).all()
