"""The batched T3 runner: its forward equals the package's layers on transformers' static cache, and a
request's tokens do not depend on which other requests share the pool (rows joining, leaving, reused).

A reduced random-weight T3 built in memory from the package's class; no checkpoint, no S3Gen.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest

pytest.importorskip("chatterbox", reason="the chatterbox extra is not installed (pip install 'voicewire[chatterbox]')")

import torch  # noqa: E402

from stream.engines.chatterbox.batched_t3 import (  # noqa: E402
    NoFreeRows,
    RowSettings,
    T3Batch,
    prefix_embeds_for,
)
from stream.engines.chatterbox.conditioning import t3_prefix, with_emotion  # noqa: E402
from stream.engines.chatterbox.loading import cast_t3  # noqa: E402
from stream.engines.chatterbox.sampling import SamplingParams  # noqa: E402
from stream.engines.chatterbox.static_decode import StaticLlamaDecoder  # noqa: E402
from tests.chatterbox_checkpoint import reduced_t3  # noqa: E402
from tests.engines.test_chatterbox_static_decode import _NoHostSync  # noqa: E402

pytestmark = pytest.mark.chatterbox

ROWS, POSITIONS = 6, 96


@pytest.fixture(scope="module")
def t3s():
    """The same random T3 in float32 and float64, and three voices (speaker embedding, prompt tokens)."""
    from chatterbox.models.t3 import T3

    torch.manual_seed(0)
    with reduced_t3():
        t3 = T3().eval()
    t3_64 = copy.deepcopy(t3)
    cast_t3(t3_64, torch.float64)
    hp = t3.hp
    voices = [(torch.randn(1, hp.speaker_embed_size), torch.randint(0, 6561, (1, hp.speech_cond_prompt_len)))
              for _ in range(3)]
    return {torch.float32: t3, torch.float64: t3_64}, voices


def _text(t3, seed: int, length: int) -> torch.Tensor:
    hp = t3.hp
    body = torch.randint(3, 200, (1, length), generator=torch.Generator().manual_seed(seed))
    return torch.cat([torch.tensor([[hp.start_text_token]]), body, torch.tensor([[hp.stop_text_token]])], dim=1)


def _prefix(t3, voice, exaggeration: float, text: torch.Tensor, cfg: bool) -> torch.Tensor:
    with torch.inference_mode():
        cond = with_emotion(t3, t3_prefix(t3, *voice), exaggeration)
        return prefix_embeds_for(t3, cond, text, cfg)


def _settings(cfg_weight: float = 0.5, max_new_tokens: int = 12, **kw) -> RowSettings:
    values = {"temperature": 0.8, "top_p": 0.9, "min_p": 0.05, "repetition_penalty": 1.3} | kw
    return RowSettings(cfg_weight=cfg_weight, max_new_tokens=max_new_tokens, **values)


def _two_open_groups(batch: T3Batch, t3s) -> tuple[int, int]:
    """A CFG group and a greedy one without CFG, their prefixes prefilled: mixed rows for one step."""
    t3, voices = batch.t3, t3s[1]
    with_cfg = batch.open(_prefix(t3, voices[0], 0.5, _text(t3, 1, 10), cfg=True), _settings(0.5), seed=1)
    without = batch.open(_prefix(t3, voices[1], 0.5, _text(t3, 2, 12), cfg=False),
                         _settings(0.0, temperature=0.0), seed=2)
    for group in (with_cfg, without):
        batch.prefill(group, 0, batch.prefix_length(group))
    return with_cfg, without


def test_batched_forward_gives_the_static_cache_logits(t3s):
    """One CFG group alone, its prefix in two chunks: logits equal the package's layers on HF's StaticCache
    at every step, the same tokens fed to both."""
    t3 = t3s[0][torch.float32]
    settings = _settings(max_new_tokens=20)
    embeds = _prefix(t3, t3s[1][0], 0.5, _text(t3, 1, 20), cfg=True)
    length = embeds.shape[1]
    batch = T3Batch(t3, rows=ROWS, max_positions=POSITIONS, device="cpu", dtype=torch.float32)
    group = batch.open(embeds, settings, seed=7)
    batch.prefill(group, 0, 17)
    batch.prefill(group, 17, length)
    params = SamplingParams(temperature=0.8, cfg_weight=0.5, min_p=0.05, top_p=0.9, repetition_penalty=1.3,
                            max_new_tokens=20)
    reference = StaticLlamaDecoder(t3, params, length, torch.Generator().manual_seed(0))
    with torch.inference_mode():
        state = reference.prefill(embeds, torch.tensor([[t3.hp.start_speech_token]]))
        hidden = state.hidden
        tokens = []
        for k in range(settings.max_new_tokens):
            ours = t3.speech_head(batch.last_hidden(group))
            torch.testing.assert_close(ours, t3.speech_head(hidden), atol=1e-4, rtol=0)
            token = batch.step([group])
            tokens.append(int(token[0]))
            emb = t3.speech_emb(token.view(1, 1)) + t3.speech_pos_emb.emb(torch.tensor([k + 1]))[None]
            out = t3.tfmr(inputs_embeds=emb.expand(2, -1, -1), past_key_values=reference.cache,
                          cache_position=torch.tensor([length + k]), use_cache=True)
            hidden = out.last_hidden_state[:, -1]
    assert len(set(tokens)) > 1 and t3.hp.stop_speech_token not in tokens


@dataclass(frozen=True)
class Request:
    voice: int
    text_seed: int
    text_len: int
    exaggeration: float
    settings: RowSettings
    seed: int
    join: int                    # the loop iteration from which it asks for rows
    cancel_after: int | None = None   # tokens after which the client goes away


REQUESTS = {
    "a": Request(0, 1, 14, 0.5, _settings(0.5, 14), seed=1, join=0, cancel_after=5),
    "b": Request(1, 2, 20, 0.3, _settings(0.0, 16, temperature=1.0, top_p=1.0, min_p=0.1, repetition_penalty=1.2),
                 seed=2, join=0),
    "c": Request(2, 3, 9, 0.9, _settings(0.3, 12, temperature=0.0, top_p=1.0, repetition_penalty=2.0), seed=3, join=2),
    "d": Request(0, 4, 25, 0.7, _settings(1.0, 15, temperature=1.2, top_p=0.8, min_p=0.0, repetition_penalty=1.0),
                 seed=4, join=3),
    "e": Request(1, 5, 12, 0.5, _settings(0.5, 10, temperature=0.6, top_p=0.95, min_p=0.02, repetition_penalty=1.5),
                 seed=5, join=4),
}
CHUNK = 16


def _embeds(t3s, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    models, voices = t3s
    t3 = models[dtype]
    return {name: _prefix(t3, voices[r.voice], r.exaggeration, _text(t3, r.text_seed, r.text_len),
                          r.settings.cfg_weight > 0) for name, r in REQUESTS.items()}


def _alone(t3, name: str, embeds: torch.Tensor, dtype: torch.dtype) -> tuple[list[int], list[torch.Tensor]]:
    """The request's tokens, and the hidden states each step sampled from, with the pool to itself."""
    request = REQUESTS[name]
    batch = T3Batch(t3, rows=ROWS, max_positions=POSITIONS, device="cpu", dtype=dtype)
    group = batch.open(embeds, request.settings, request.seed)
    batch.prefill(group, 0, embeds.shape[1])
    tokens: list[int] = []
    hidden: list[torch.Tensor] = []
    while len(tokens) != request.cancel_after:
        hidden.append(batch.last_hidden(group))
        if (token := int(batch.step([group])[0])) == t3.hp.stop_speech_token:
            break
        tokens.append(token)
    return tokens, hidden


def _together(t3, embeds: dict[str, torch.Tensor], dtype: torch.dtype) -> tuple[dict[str, list[int]], dict, dict]:
    """The five requests on one pool: staggered joins, prefill in chunks between steps, a cancellation,
    requests waiting for rows (NoFreeRows) until others leave."""
    batch = T3Batch(t3, rows=ROWS, max_positions=POSITIONS, device="cpu", dtype=dtype)
    stop = t3.hp.stop_speech_token
    pending = sorted(REQUESTS, key=lambda n: REQUESTS[n].join)
    groups: dict[str, int] = {}
    prefilled: dict[str, int] = {}
    tokens: dict[str, list[int]] = {}
    hidden: dict[str, list[torch.Tensor]] = {}
    seen = {"refused": [], "largest_step": 0, "rows_opened": 0}
    iteration = 0
    while pending or groups:
        while pending and REQUESTS[pending[0]].join <= iteration:
            name = pending[0]
            try:
                groups[name] = batch.open(embeds[name], REQUESTS[name].settings, REQUESTS[name].seed)
            except NoFreeRows:
                seen["refused"].append(name)
                break
            seen["rows_opened"] += embeds[name].shape[0]
            prefilled[name], tokens[name], hidden[name] = 0, [], []
            pending.pop(0)
        for name in [n for n in groups if prefilled[n] < embeds[n].shape[1]]:    # one chunk each
            end = min(prefilled[name] + CHUNK, embeds[name].shape[1])
            batch.prefill(groups[name], prefilled[name], end)
            prefilled[name] = end
        ready = [n for n in groups if prefilled[n] == embeds[n].shape[1]]
        if ready:
            seen["largest_step"] = max(seen["largest_step"], len(ready))
            for name in ready:
                hidden[name].append(batch.last_hidden(groups[name]))
            for name, token in zip(ready, batch.step([groups[n] for n in ready]).tolist(), strict=True):
                if token != stop:
                    tokens[name].append(token)
                if token == stop or len(tokens[name]) == REQUESTS[name].cancel_after:
                    batch.close(groups.pop(name))
        iteration += 1
    assert batch.free_rows == ROWS
    return tokens, hidden, seen


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_each_request_gets_its_tokens_alone_whatever_shares_the_pool(t3s, dtype):
    t3 = t3s[0][dtype]
    embeds = _embeds(t3s, dtype)
    together, hidden, seen = _together(t3, embeds, dtype)
    atol = 1e-10 if dtype == torch.float64 else 1e-4
    for name, request in REQUESTS.items():
        alone, alone_hidden = _alone(t3, name, embeds[name], dtype)
        assert together[name] == alone, name
        torch.testing.assert_close(torch.stack(hidden[name]), torch.stack(alone_hidden), atol=atol, rtol=0)
        assert len(alone) == (request.cancel_after or request.settings.max_new_tokens), name
    assert len({tuple(t) for t in together.values()}) == len(REQUESTS)
    assert seen["refused"] and seen["rows_opened"] > ROWS       # rows ran out, freed rows were reused
    assert seen["largest_step"] >= 3


def test_a_cached_voice_prefix_gives_the_full_prefills_tokens(t3s):
    """KV of the voice positions exported from one turn and loaded into another turn of that voice (other
    text, other exaggeration): same hidden states and tokens as prefilling that turn from scratch."""
    t3, voice = t3s[0][torch.float32], t3s[1][2]
    with torch.inference_mode():
        voice_len = t3_prefix(t3, *voice).shape[1]
    first = _prefix(t3, voice, 0.2, _text(t3, 8, 10), cfg=True)
    second = _prefix(t3, voice, 0.9, _text(t3, 9, 16), cfg=True)
    settings = _settings(0.5, 10)
    cached = T3Batch(t3, rows=ROWS, max_positions=POSITIONS, device="cpu", dtype=torch.float32)
    donor = cached.open(first, settings, seed=1)
    cached.prefill(donor, 0, first.shape[1])
    kv = cached.export_prefix(donor, voice_len)
    cached.close(donor)
    group = cached.open(second, settings, seed=3)
    cached.load_prefix(group, kv)
    cached.prefill(group, voice_len, second.shape[1])
    fresh = T3Batch(t3, rows=ROWS, max_positions=POSITIONS, device="cpu", dtype=torch.float32)
    reference = fresh.open(second, settings, seed=3)
    fresh.prefill(reference, 0, second.shape[1])
    for _ in range(settings.max_new_tokens):
        torch.testing.assert_close(cached.last_hidden(group), fresh.last_hidden(reference), atol=1e-4, rtol=0)
        assert cached.step([group]).tolist() == fresh.step([reference]).tolist()
    with pytest.raises(ValueError, match="needs a fresh group"):
        cached.load_prefix(group, kv)


def test_step_performs_no_host_sync(t3s):
    batch = T3Batch(t3s[0][torch.float32], rows=ROWS, max_positions=POSITIONS, device="cpu", dtype=torch.float32)
    with_cfg, without = _two_open_groups(batch, t3s)
    guard = _NoHostSync()
    with guard:
        batch.step([with_cfg, without])
        batch.step([without])            # a new batch composition builds its indices without a sync
        batch.step([with_cfg, without])
    assert "index_copy_" in guard.ops and "scaled_dot_product_attention" in guard.ops


def test_open_without_free_rows_raises_and_close_frees_them(t3s):
    t3 = t3s[0][torch.float32]
    voice = t3s[1][0]
    cfg_prefix = _prefix(t3, voice, 0.5, _text(t3, 1, 8), cfg=True)
    plain_prefix = _prefix(t3, voice, 0.5, _text(t3, 1, 8), cfg=False)
    batch = T3Batch(t3, rows=3, max_positions=POSITIONS, device="cpu", dtype=torch.float32)
    first = batch.open(cfg_prefix, _settings(0.5), seed=1)
    with pytest.raises(NoFreeRows, match="needs 2 row"):
        batch.open(cfg_prefix, _settings(0.5), seed=2)
    batch.open(plain_prefix, _settings(0.0), seed=3)
    assert batch.free_rows == 0 and batch.row_budget == batch.rows == 3
    cfg = t3.cfg
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    assert batch.kv_bytes == 2 * cfg.num_hidden_layers * 3 * POSITIONS * cfg.num_key_value_heads * head_dim * 4
    with pytest.raises(NoFreeRows):
        batch.open(plain_prefix, _settings(0.0), seed=4)
    batch.close(first)
    assert batch.free_rows == 2
    batch.open(cfg_prefix, _settings(0.5), seed=2)


def test_a_group_past_its_token_cap_gets_the_stop_token(t3s):
    t3 = t3s[0][torch.float32]
    batch = T3Batch(t3, rows=ROWS, max_positions=POSITIONS, device="cpu", dtype=torch.float32)
    capped = batch.open(_prefix(t3, t3s[1][0], 0.5, _text(t3, 1, 8), cfg=True), _settings(0.5, 3), seed=1)
    other = batch.open(_prefix(t3, t3s[1][1], 0.5, _text(t3, 2, 8), cfg=False), _settings(0.0, 20), seed=1)
    for group in (capped, other):
        batch.prefill(group, 0, batch.prefix_length(group))
    steps = [batch.step([capped, other]).tolist() for _ in range(6)]
    stop = t3.hp.stop_speech_token
    assert [s[0] == stop for s in steps] == [False] * 3 + [True] * 3
    assert stop not in [s[1] for s in steps]


def test_hostile_calls_get_clear_errors(t3s):
    t3 = t3s[0][torch.float32]
    cfg_prefix = _prefix(t3, t3s[1][0], 0.5, _text(t3, 1, 8), cfg=True)
    batch = T3Batch(t3, rows=ROWS, max_positions=POSITIONS, device="cpu", dtype=torch.float32)
    bad = {"top_p must be": _settings(top_p=0.0), "temperature must be": _settings(temperature=-1.0),
           "repetition_penalty must be": _settings(repetition_penalty=0.0),
           "CFG needs 2 rows": _settings(0.0), "exceeds max_positions": _settings(max_new_tokens=POSITIONS)}
    for message, settings in bad.items():
        with pytest.raises(ValueError, match=message):
            batch.open(cfg_prefix, settings, seed=1)
    with pytest.raises(ValueError, match="prefix_embeds must be"):
        batch.open(cfg_prefix[0], _settings(), seed=1)
    assert batch.free_rows == ROWS                    # refused opens hold no rows
    group = batch.open(cfg_prefix, _settings(), seed=1)
    with pytest.raises(ValueError, match="must start at 0"):
        batch.prefill(group, 4, 8)
    with pytest.raises(ValueError, match="not prefilled"):
        batch.step([group])
    batch.prefill(group, 0, batch.prefix_length(group))
    with pytest.raises(ValueError, match="listed twice"):
        batch.step([group, group])
    batch.close(group)
    with pytest.raises(KeyError, match="not open"):
        batch.step([group])
    with pytest.raises(ValueError, match="cast T3 first"):
        T3Batch(t3, rows=2, max_positions=32, device="cpu", dtype=torch.float64)
