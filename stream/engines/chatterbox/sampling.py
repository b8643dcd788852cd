"""The T3 speech-token loop: our own KV-cached decode over the package's modules, token by token.

The package's `T3.inference` asks the backbone for attention weights (which forces eager
attention), wraps the loop in tqdm and returns only when the phrase is complete. This loop keeps
its maths - the CFG batch of two whose second row has zeroed text embeddings, the doubled
start-of-speech embedding, the repetition penalty over the cond row's history, temperature, min_p
then top_p - so a seed gives the package's token sequence, but it yields every token as soon as it
is sampled and draws from a per-request `torch.Generator`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from transformers import DynamicCache
from transformers.generation.logits_process import (
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

TURBO_TOP_K = 1000  # the package's fixed Turbo default


@dataclass(frozen=True)
class SamplingParams:
    temperature: float
    cfg_weight: float
    min_p: float
    top_p: float
    repetition_penalty: float
    max_new_tokens: int


def token_cap(text_tokens: int, *, per_text_token: float = 4.0, floor: int = 40, ceiling: int = 1000) -> int:
    """Most speech tokens a phrase may take; stops runaway generation (hiss to the 1000-token limit).

    Speech tokens run at 25 per second and English speech at roughly 12-15 characters per second,
    i.e. about 2 speech tokens per text token; 4 per text token plus a second leaves room for slow,
    expressive reads while cutting a runaway well before the package's 1000-token ceiling.
    """
    return int(max(floor, min(ceiling, round(floor + per_text_token * text_tokens))))


class TokenReadback:
    """Brings sampled tokens to the host without stalling the device.

    `int(token)` on a CUDA tensor synchronizes the whole stream, including the forward pass queued
    after the sample, so the GPU idles while Python runs. Here each token is copied into a slot of
    a pinned host buffer with an event recorded right after the copy; `pop` waits on that event
    only, so the forward queued behind it keeps running. The loop reads token k after queuing step
    k+1 (one step behind). Off CUDA there is nothing to overlap: `push` reads the value at once.
    """

    def __init__(self, device: torch.device, slots: int = 2) -> None:
        self._cuda = device.type == "cuda"
        self._pending: list[tuple[int, torch.cuda.Event | None]] = []   # (slot or CPU value, event)
        self._next = 0
        if self._cuda:
            self._host = torch.empty(slots, dtype=torch.long, pin_memory=True)
            self._events = [torch.cuda.Event() for _ in range(slots)]

    def push(self, token: torch.Tensor) -> None:
        """Start bringing one (1, 1) token tensor back; at most `slots` may be in flight."""
        if not self._cuda:   # read now: the caller may overwrite `token` in place before `pop`
            self._pending.append((int(token), None))
            return
        slot = self._next % len(self._events)
        self._next += 1
        self._host[slot:slot + 1].copy_(token.view(1), non_blocking=True)
        self._events[slot].record()
        self._pending.append((slot, self._events[slot]))

    def pop(self) -> int:
        """The oldest pushed token's value, waiting only for its own copy."""
        slot, event = self._pending.pop(0)
        if event is None:
            return slot
        event.synchronize()
        return int(self._host[slot])


def _pick(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.multinomial(probs, num_samples=1, generator=generator)


def _greedy_or_scaled(logits: torch.Tensor, temperature: float) -> torch.Tensor | None:
    """Temperature scaling as the package does; None means greedy (temperature 0 would divide by zero)."""
    if temperature <= 0.0:
        return None
    return logits / temperature if temperature != 1.0 else logits


@torch.inference_mode()
def llama_tokens(t3, cond_prefix: torch.Tensor, text_tokens: torch.Tensor, params: SamplingParams,
                 generator: torch.Generator, cancel: threading.Event) -> Iterator[int]:
    """Speech tokens of the original / multilingual (Llama) T3, EOS excluded.

    `cond_prefix` is the (1, L, dim) conditioning embedding including the emotion position;
    `text_tokens` is (1, T) with start/stop text tokens already added.
    """
    hp = t3.hp
    cfg = params.cfg_weight > 0.0
    batch = 2 if cfg else 1
    text_tokens = text_tokens.expand(batch, -1)
    text_emb = t3.text_emb(text_tokens)
    if cfg:
        text_emb[1].zero_()
    text_emb = text_emb + t3.text_pos_emb(text_tokens)
    bos = torch.tensor([[hp.start_speech_token]], dtype=torch.long, device=text_tokens.device)
    bos_emb = (t3.speech_emb(bos) + t3.speech_pos_emb.get_fixed_embedding(0)).expand(batch, -1, -1)
    prefix = cond_prefix.to(text_emb.dtype).expand(batch, -1, -1)
    # The package feeds the start-of-speech embedding twice (once from its input builder, once
    # as the first generation step); keeping that keeps its token distribution.
    embeds = torch.cat([prefix, text_emb, bos_emb, bos_emb], dim=1)

    rep = RepetitionPenaltyLogitsProcessor(penalty=float(params.repetition_penalty))
    min_p = MinPLogitsWarper(min_p=params.min_p)
    top_p = TopPLogitsWarper(top_p=params.top_p)
    history = bos.clone()
    readback = TokenReadback(text_tokens.device)
    cache = DynamicCache()
    out = t3.tfmr(inputs_embeds=embeds, past_key_values=cache, use_cache=True)
    for step in range(params.max_new_tokens):
        if cancel.is_set():
            return
        logits = t3.speech_head(out.last_hidden_state[:, -1, :]).float()
        if cfg:
            cond, uncond = logits[0:1], logits[1:2]
            logits = cond + params.cfg_weight * (cond - uncond)
        logits = rep(history, logits)
        scaled = _greedy_or_scaled(logits, params.temperature)
        if scaled is None:
            token = logits.argmax(dim=-1, keepdim=True)
        else:
            scaled = top_p(history, min_p(history, scaled))
            token = _pick(torch.softmax(scaled, dim=-1), generator)
        history = torch.cat([history, token], dim=1)
        readback.push(token)
        # Queue the next forward before reading the token back, so a GPU keeps working while the
        # host waits for the copy; after EOS that step is discarded.
        if step + 1 < params.max_new_tokens:
            nxt = (t3.speech_emb(token) + t3.speech_pos_emb.get_fixed_embedding(step + 1)).expand(batch, -1, -1)
            out = t3.tfmr(inputs_embeds=nxt.to(embeds.dtype), past_key_values=cache, use_cache=True)
        value = readback.pop()
        if value == hp.stop_speech_token:
            return
        yield value


@torch.inference_mode()
def turbo_tokens(t3, cond_prefix: torch.Tensor, text_tokens: torch.Tensor, params: SamplingParams,
                 generator: torch.Generator, cancel: threading.Event) -> Iterator[int]:
    """Speech tokens of the Turbo (GPT-2) T3: no CFG, no min_p, the package's fixed top_k."""
    hp = t3.hp
    processors = []
    if params.temperature > 0 and params.temperature != 1.0:
        processors.append(TemperatureLogitsWarper(params.temperature))
    processors.append(TopKLogitsWarper(TURBO_TOP_K))
    if params.top_p < 1.0:
        processors.append(TopPLogitsWarper(params.top_p))
    if params.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(params.repetition_penalty))

    start = torch.full((1, 1), hp.start_speech_token, dtype=torch.long, device=text_tokens.device)
    embeds = torch.cat([cond_prefix.to(t3.text_emb.weight.dtype), t3.text_emb(text_tokens), t3.speech_emb(start)], dim=1)
    cache = DynamicCache()
    out = t3.tfmr(inputs_embeds=embeds, past_key_values=cache, use_cache=True)
    history = start
    readback = TokenReadback(text_tokens.device)
    generated: list[torch.Tensor] = []
    for _ in range(params.max_new_tokens):
        if cancel.is_set():
            return
        logits = t3.speech_head(out.last_hidden_state[:, -1:, :])[:, -1, :].float()
        for proc in processors:
            logits = proc(history, logits)
        if params.temperature <= 0:
            token = logits.argmax(dim=-1, keepdim=True)
        elif torch.all(logits == -float("inf")):
            return
        else:
            token = _pick(torch.softmax(logits, dim=-1), generator)
        generated.append(token)
        history = torch.cat(generated, dim=1)
        readback.push(token)
        if len(generated) < params.max_new_tokens:
            out = t3.tfmr(inputs_embeds=t3.speech_emb(token), past_key_values=cache, use_cache=True)
        value = readback.pop()
        if value == hp.stop_speech_token:
            return
        yield value
