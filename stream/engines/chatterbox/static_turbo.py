"""Turbo's GPT-2 T3 decode on a static KV cache, one step free of host syncs (the Llama one's twin).

Same shape as `static_decode.StaticLlamaDecoder`: the package's GPT-2 layers run over
transformers' `StaticCache` at a `cache_position` buffer (GPT-2 takes its learned positions from
it), the repetition history is a fixed (1, vocab) mask and the step's inputs live in fixed
buffers updated in place, so a CUDA graph captured once replays the step (`make_step`). The
sampling is `sampling.turbo_tokens`'s, in its order: temperature, the package's top_k, top_p,
then the repetition penalty over the history, and `torch.multinomial` on the request's
generator (tested: identical tokens for a seed). Two details of that loop are kept without a
branch on tensor values: its first draw penalizes the start token and later draws only the
generated tokens (a `keep` flag clears the mask once), and its "all logits are -inf" early stop
is dropped - it is a host sync, and top_k always keeps the best token finite.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import torch
from transformers import StaticCache
from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

from stream.engines.chatterbox.sampling import TURBO_TOP_K, SamplingParams
from stream.engines.chatterbox.static_decode import DecodeState, make_step, stream_tokens


class StaticTurboDecoder:
    """Prefill and the capturable decode step of one Turbo phrase (one row: Turbo has no CFG)."""

    def __init__(self, t3, params: SamplingParams, prefix_len: int, generator: torch.Generator) -> None:
        self.t3 = t3
        self.params = params
        self.generator = generator
        self.dtype = t3.speech_emb.weight.dtype
        self.cache = StaticCache(config=t3.cfg, max_cache_len=prefix_len + params.max_new_tokens + 1)
        self._top_k = TopKLogitsWarper(TURBO_TOP_K)
        self._top_p = TopPLogitsWarper(params.top_p) if params.top_p < 1.0 else None
        self.state: DecodeState | None = None
        self._keep: torch.Tensor | None = None   # (1, 1) bool: False until the first draw replaced the start token

    def prefill(self, embeds: torch.Tensor, start: torch.Tensor) -> DecodeState:
        """Run the prefix into the static cache and (re)set the step's buffers in place."""
        device = embeds.device
        length = embeds.shape[1]
        out = self.t3.tfmr(inputs_embeds=embeds, past_key_values=self.cache,
                           cache_position=torch.arange(length, device=device), use_cache=True)
        hidden = out.last_hidden_state[:, -1:, :]
        if self.state is None:
            self.state = DecodeState(
                hidden=torch.empty_like(hidden), token=torch.empty_like(start),
                seen=torch.empty(1, self.t3.hp.speech_tokens_dict_size, dtype=torch.bool, device=device),
                cache_position=torch.empty(1, dtype=torch.long, device=device),
                speech_index=torch.zeros(1, dtype=torch.long, device=device))   # unused: GPT-2 positions come from the cache
            self._keep = torch.empty(1, 1, dtype=torch.bool, device=device)
        s = self.state
        s.hidden.copy_(hidden)
        s.token.copy_(start)
        s.seen.zero_()
        s.seen.scatter_(1, start, True)
        s.cache_position.fill_(length)
        self._keep.fill_(False)
        return s

    def _sample(self, hidden: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
        p = self.params
        logits = self.t3.speech_head(hidden)[:, -1, :].float()
        if p.temperature > 0 and p.temperature != 1.0:
            logits = logits / p.temperature
        logits = self._top_k(None, logits)
        if self._top_p is not None:
            logits = self._top_p(None, logits)
        if p.repetition_penalty != 1.0:
            penalized = torch.where(logits < 0, logits * p.repetition_penalty, logits / p.repetition_penalty)
            logits = torch.where(seen, penalized, logits)
        if p.temperature <= 0:
            return logits.argmax(dim=-1, keepdim=True)
        return torch.multinomial(torch.softmax(logits, dim=-1), num_samples=1, generator=self.generator)

    def step(self) -> None:
        """Sample one token and run its forward; in place, no host sync."""
        t3, s = self.t3, self.state
        token = self._sample(s.hidden, s.seen)
        s.token.copy_(token)
        s.seen.logical_and_(self._keep)      # the first draw drops the start token from the history
        s.seen.scatter_(1, token, True)
        self._keep.fill_(True)
        out = t3.tfmr(inputs_embeds=t3.speech_emb(token).to(self.dtype), past_key_values=self.cache,
                      cache_position=s.cache_position, use_cache=True)
        s.hidden.copy_(out.last_hidden_state[:, -1:, :])
        s.cache_position.add_(1)


def turbo_prefix_embeds(t3, cond_prefix: torch.Tensor, text_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The prefill input as `turbo_tokens` builds it (conditioning, text, start token) and the start token."""
    start = torch.full((1, 1), t3.hp.start_speech_token, dtype=torch.long, device=text_tokens.device)
    embeds = torch.cat([cond_prefix.to(t3.text_emb.weight.dtype), t3.text_emb(text_tokens), t3.speech_emb(start)], dim=1)
    return embeds, start


@torch.inference_mode()
def turbo_tokens_static(t3, cond_prefix: torch.Tensor, text_tokens: torch.Tensor, params: SamplingParams,
                        generator: torch.Generator, cancel: threading.Event, *,
                        cuda_graph: bool = True) -> Iterator[int]:
    """Speech tokens of the Turbo T3 on the static cache; the same tokens as `turbo_tokens` for a seed."""
    embeds, start = turbo_prefix_embeds(t3, cond_prefix, text_tokens)
    decoder = StaticTurboDecoder(t3, params, embeds.shape[1], generator)
    step = make_step(decoder, embeds, start, cuda_graph)
    yield from stream_tokens(step, decoder.state.token, params.max_new_tokens, t3.hp.stop_speech_token, cancel)
