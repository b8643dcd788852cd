"""A random-weight S3Gen built from the package's class, and made-up voice references for it.

No checkpoint is needed to test the flush: `S3Gen()` is the real flow + HiFT, randomly initialised
(~17 s to build on a CPU, so it is built once per test session and copied per dtype).
"""

from __future__ import annotations

import copy
import functools

import pytest
import torch

from stream.engines.chatterbox.decoding import SPEECH_VOCAB, PhraseDecoder


@pytest.fixture
def one_torch_thread():
    """Torch on one thread for the test: batched and unbatched float sums then round alike."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@functools.cache
def _base_s3gen():
    from chatterbox.models.s3gen import S3Gen

    torch.manual_seed(0)
    return S3Gen().eval()


@functools.cache
def random_s3gen(dtype: torch.dtype = torch.float32):
    """The session's random S3Gen in `dtype` (float32 shared; other dtypes are copies)."""
    base = _base_s3gen()
    return base if dtype == torch.float32 else copy.deepcopy(base).to(dtype)


def random_ref(seed: int, prompt_tokens: int) -> dict:
    """A voice reference in the layout `PhraseDecoder` takes: prompt tokens, their mel, an x-vector."""
    g = torch.Generator().manual_seed(seed)
    return {"prompt_token": torch.randint(0, SPEECH_VOCAB, (1, prompt_tokens), generator=g),
            "prompt_token_len": torch.tensor([prompt_tokens]),
            "prompt_feat": torch.randn(1, 2 * prompt_tokens, 80, generator=g),
            "prompt_feat_len": torch.tensor([2 * prompt_tokens]),
            "embedding": torch.randn(1, 192, generator=g)}


def random_tokens(seed: int, n: int) -> list[int]:
    return torch.randint(0, SPEECH_VOCAB, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


def decoder(s3gen, *, seed: int, prompt_tokens: int = 8, cfm_steps: int = 2, speed: float = 1.0,
            meanflow: bool = False, max_tokens: int = 64) -> PhraseDecoder:
    return PhraseDecoder(s3gen, random_ref(seed, prompt_tokens), generator=torch.Generator().manual_seed(seed),
                         max_tokens=max_tokens, cfm_steps=cfm_steps, meanflow=meanflow, context_tokens=6,
                         overlap_frames=4, speed=speed)
