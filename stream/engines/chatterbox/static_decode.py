"""The original / multilingual (Llama) T3 decode on a static KV cache, one step free of host syncs.

The dynamic-cache loop (`sampling.llama_tokens`) grows its cache and its token history by
concatenation, so every step allocates, changes shapes and cannot be captured as a CUDA graph.
Here everything a step touches is preallocated for the phrase's token budget: the package's
layers run over transformers' `StaticCache` (keys and values written in place at
`cache_position`), the repetition history is a fixed (rows, vocab) mask, and the step's inputs
(last hidden state, next position, speech index) live in fixed buffers updated in place. The
step samples from the last hidden state - CFG mix, repetition penalty, temperature, min_p, top_p,
`torch.multinomial` on the request's generator, in the package's order (or, with
`sampler="counter"`, the batched runner's counter-based draw) - then embeds that token
and runs the next forward, so it is the dynamic loop's step with the same maths and the same
draws (tested: identical tokens for a seed). Python branches only on the request's settings,
never on tensor values, so a CUDA graph captured once replays the step (`CudaGraphStep`); the
host reads each token back one step behind (`TokenReadback`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import torch
from transformers import StaticCache
from transformers.generation.logits_process import MinPLogitsWarper, TopPLogitsWarper

from stream.engines.chatterbox.batch_sampler import sample
from stream.engines.chatterbox.conditioning import PrefixKV
from stream.engines.chatterbox.sampling import SamplingParams, TokenReadback


@dataclass
class DecodeState:
    """The fixed buffers one step reads and updates in place."""

    hidden: torch.Tensor        # (rows, dim) last hidden state of each row
    token: torch.Tensor         # (1, 1) the token sampled by the latest step
    seen: torch.Tensor          # (1, vocab) bool: tokens in the history (repetition penalty)
    cache_position: torch.Tensor  # (1,) long: where the next forward writes in the cache
    speech_index: torch.Tensor  # (1,) long: speech position of the next input token


@dataclass(frozen=True)
class _CounterDraw:
    """The batched runner's counter-based draw (`batch_sampler.sample`) for this one phrase: a pure
    function of (seed, step), so `--sampler counter` gives the tokens the batched runner gives."""

    temperature: torch.Tensor   # (1,) each
    top_p: torch.Tensor
    min_p: torch.Tensor
    seed: torch.Tensor          # (1,) long: the request's seed (the token generator's)

    @classmethod
    def of(cls, params: SamplingParams, generator: torch.Generator, device: torch.device) -> _CounterDraw:
        seed = generator.initial_seed()                 # the seed itself for a seeded request
        seed = seed - 2**64 if seed >= 2**63 else seed  # the same 64 bits as a signed long
        values = [torch.tensor([v], dtype=torch.float32, device=device)
                  for v in (params.temperature, params.top_p, params.min_p)]
        return cls(*values, seed=torch.tensor([seed], dtype=torch.long, device=device))

    def draw(self, logits: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        token = sample(logits, temperature=self.temperature, top_p=self.top_p, min_p=self.min_p,
                       seed=self.seed, step=step)
        return token.view(1, 1)


class StaticLlamaDecoder:
    """Prefill and the capturable decode step of one phrase (rows: 2 with CFG, else 1)."""

    def __init__(self, t3, params: SamplingParams, prefix_len: int, generator: torch.Generator,
                 voice_kv: PrefixKV | None = None, sampler: str = "package") -> None:
        self.t3 = t3
        self.params = params
        self.voice_kv = voice_kv        # the voice's prefix positions, already computed (`conditioning.voice_kv`)
        self.cfg = params.cfg_weight > 0.0
        self.rows = 2 if self.cfg else 1
        self.generator = generator
        self.dtype = t3.speech_emb.weight.dtype
        # prefix + one forward per sampled token (the last one is never read)
        self.cache = StaticCache(config=t3.cfg, max_cache_len=prefix_len + params.max_new_tokens + 1)
        self._min_p = MinPLogitsWarper(min_p=params.min_p)
        self._top_p = TopPLogitsWarper(top_p=params.top_p)
        self._counter = _CounterDraw.of(params, generator, t3.speech_emb.weight.device) if sampler == "counter" else None
        self.state: DecodeState | None = None

    def prefill(self, embeds: torch.Tensor, bos: torch.Tensor) -> DecodeState:
        """Run the prefix through the package's layers into the static cache and (re)set the step's
        buffers in place, so a graph captured on them stays valid. With the voice's prefix KV, its
        positions are copied into the cache and only the rest of `embeds` runs (exact: causal)."""
        t3 = self.t3
        device = embeds.device
        length = embeds.shape[1]
        start = 0
        if self.voice_kv is not None:
            start = self.voice_kv.length
            voice_positions = torch.arange(start, device=device)
            for layer, keys, values in zip(self.cache.layers, self.voice_kv.keys, self.voice_kv.values, strict=True):
                layer.update(keys.expand(self.rows, -1, -1, -1), values.expand(self.rows, -1, -1, -1),
                             {"cache_position": voice_positions})
        positions = torch.arange(start, length, device=device)
        out = t3.tfmr(inputs_embeds=embeds[:, start:], past_key_values=self.cache, cache_position=positions,
                      use_cache=True)
        hidden = out.last_hidden_state[:, -1, :]
        if self.state is None:
            self.state = DecodeState(
                hidden=torch.empty_like(hidden), token=torch.empty_like(bos),
                seen=torch.empty(1, t3.hp.speech_tokens_dict_size, dtype=torch.bool, device=device),
                cache_position=torch.empty(1, dtype=torch.long, device=device),
                speech_index=torch.empty(1, dtype=torch.long, device=device))
        s = self.state
        s.hidden.copy_(hidden)
        s.token.copy_(bos)
        s.seen.zero_()
        s.seen.scatter_(1, bos, True)
        s.cache_position.fill_(length)
        s.speech_index.fill_(1)
        return s

    def _sample(self, hidden: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
        p = self.params
        logits = self.t3.speech_head(hidden).float()
        if self.cfg:
            cond, uncond = logits[0:1], logits[1:2]
            logits = cond + p.cfg_weight * (cond - uncond)
        penalized = torch.where(logits < 0, logits * p.repetition_penalty, logits / p.repetition_penalty)
        logits = torch.where(seen, penalized, logits)
        if self._counter is not None:
            return self._counter.draw(logits, self.state.speech_index - 1)
        if p.temperature <= 0.0:
            return logits.argmax(dim=-1, keepdim=True)
        if p.temperature != 1.0:
            logits = logits / p.temperature
        logits = self._top_p(None, self._min_p(None, logits))
        return torch.multinomial(torch.softmax(logits, dim=-1), num_samples=1, generator=self.generator)

    def step(self) -> None:
        """Sample one token from the last hidden state and run its forward; in place, no host sync."""
        t3, s = self.t3, self.state
        token = self._sample(s.hidden, s.seen)
        s.token.copy_(token)
        s.seen.scatter_(1, token, True)
        emb = t3.speech_emb(token) + t3.speech_pos_emb.emb(s.speech_index)[None]
        out = t3.tfmr(inputs_embeds=emb.expand(self.rows, -1, -1).to(self.dtype), past_key_values=self.cache,
                      cache_position=s.cache_position, use_cache=True)
        s.hidden.copy_(out.last_hidden_state[:, -1, :])
        s.cache_position.add_(1)
        s.speech_index.add_(1)


class CudaGraphStep:
    """One decode step captured as a CUDA graph and replayed; the step's buffers are its inputs.

    Warm-up and capture run real steps on the prefilled buffers, so afterwards the caller resets
    the cache, prefills again (in place) and rewinds the generator: replays then start from the
    same state and draws as the eager loop. Only built on CUDA (`make_step`).
    """

    def __init__(self, step: Callable[[], None], generator: torch.Generator, warmup: int = 2) -> None:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(warmup):      # kernels chosen and the allocator settled before capture
                step()
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        self.graph.register_generator_state(generator.graphsafe_get_state())
        with torch.cuda.graph(self.graph):
            step()

    def __call__(self) -> None:
        self.graph.replay()


class StaticDecoder(Protocol):
    """What `make_step` and `stream_tokens` need of a static-cache decoder (Llama's here, Turbo's GPT-2 one)."""

    generator: torch.Generator
    cache: StaticCache

    def prefill(self, embeds: torch.Tensor, bos: torch.Tensor) -> DecodeState: ...

    def step(self) -> None: ...


def make_step(decoder: StaticDecoder, embeds: torch.Tensor, bos: torch.Tensor,
              use_graph: bool) -> Callable[[], None]:
    """The phrase's step after prefill: a replayed CUDA graph where asked and on CUDA, else the eager step."""
    decoder.prefill(embeds, bos)
    if not (use_graph and embeds.is_cuda):
        return decoder.step
    rewind = decoder.generator.get_state()
    graph = CudaGraphStep(decoder.step, decoder.generator)
    decoder.cache.reset()
    decoder.prefill(embeds, bos)
    decoder.generator.set_state(rewind)
    return graph


@torch.inference_mode()
def stream_tokens(step: Callable[[], None], token: torch.Tensor, max_new_tokens: int, stop_token: int,
                  cancel: threading.Event) -> Iterator[int]:
    """Run `step` up to `max_new_tokens` times and yield each sampled token (read from the `token`
    buffer the step writes), one step behind the device, until the stop token (not yielded)."""
    readback = TokenReadback(token.device)
    # One step ahead of the host: token k is read back while step k+1 runs on the device.
    step()
    readback.push(token)
    for i in range(max_new_tokens):
        if cancel.is_set():
            return
        if i + 1 < max_new_tokens:
            step()
            readback.push(token)
        value = readback.pop()
        if value == stop_token:
            return
        yield value


def llama_prefix_embeds(t3, cond_prefix: torch.Tensor, text_tokens: torch.Tensor,
                        cfg: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The prefill input as the package builds it (CFG row with zeroed text, doubled start token) and the start token."""
    rows = 2 if cfg else 1
    text_tokens = text_tokens.expand(rows, -1)
    text_emb = t3.text_emb(text_tokens)
    if cfg:
        text_emb[1].zero_()
    text_emb = text_emb + t3.text_pos_emb(text_tokens)
    bos = torch.tensor([[t3.hp.start_speech_token]], dtype=torch.long, device=text_tokens.device)
    bos_emb = (t3.speech_emb(bos) + t3.speech_pos_emb.get_fixed_embedding(0)).expand(rows, -1, -1)
    prefix = cond_prefix.to(text_emb.dtype).expand(rows, -1, -1)
    return torch.cat([prefix, text_emb, bos_emb, bos_emb], dim=1), bos


@torch.inference_mode()
def llama_tokens_static(t3, cond_prefix: torch.Tensor, text_tokens: torch.Tensor, params: SamplingParams,
                        generator: torch.Generator, cancel: threading.Event, *,
                        cuda_graph: bool = True, voice_kv: PrefixKV | None = None,
                        sampler: str = "package") -> Iterator[int]:
    """Speech tokens of the Llama T3 on the static cache; the same tokens as `llama_tokens` for a seed.

    `voice_kv` (the KV of `cond_prefix`'s leading voice positions) skips recomputing them at prefill.
    `sampler="counter"` draws with the batched runner's counter-based sampler instead of
    `torch.multinomial` (then the tokens equal the batched runner's for the seed, not the package's).
    """
    embeds, bos = llama_prefix_embeds(t3, cond_prefix, text_tokens, params.cfg_weight > 0.0)
    decoder = StaticLlamaDecoder(t3, params, embeds.shape[1], generator, voice_kv, sampler)
    step = make_step(decoder, embeds, bos, cuda_graph)
    yield from stream_tokens(step, decoder.state.token, params.max_new_tokens, t3.hp.stop_speech_token, cancel)
