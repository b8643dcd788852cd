"""Chunked S3Gen decoding of a growing speech-token sequence, for one phrase.

S3Gen's encoder and flow-matching decoder attend over the whole sequence, and the encoder looks
three tokens ahead, so a chunk is decoded by re-running the flow over the phrase's recent tokens
(a bounded left context) and keeping only the mel frames that no later token can still change:
all frames up to the lookahead, or every frame once the phrase is final. The mask is built from
the trimmed length (the package's `finalize=False` path trims the features but not the mask).

The CFM noise comes from a per-phrase tensor indexed by global frame position, so re-decoding
does not re-roll it. The vocoder (HiFT) gets the previous chunk's last mel frames as left context
and its source excitation (`cache_source`) for those frames; the audio of that overlap is
crossfaded with the tail held back from the previous chunk. The package's start-of-clip fade is
applied once, at the start of the phrase, so chunk joins have no dips and the streamed phrase has
exactly the one-shot length: 960 samples per token at speed 1.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

SAMPLES_PER_FRAME = 480           # 24 kHz / 50 mel frames per second
SPEECH_VOCAB = 6561               # tokens at or above this are special (SOS/EOS/pad) and never decoded
S3GEN_SILENCE = 4299              # the package's silence token (Turbo appends three at the end)

_GLOBAL_RNG = threading.Lock()


@contextlib.contextmanager
def seeded_global_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Run package code that draws from torch's global RNG (HiFT's source phases) reproducibly.

    The global state is saved and restored around the call and the lock keeps other threads out
    meanwhile, so neither concurrent phrases nor the caller see each other's draws.
    """
    # Only the CPU generator and this device's are reseeded (`torch.manual_seed` would reseed every
    # CUDA device), and exactly those are the ones `fork_rng` restores.
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with _GLOBAL_RNG, torch.random.fork_rng(devices=devices, device_type="cuda"):
        torch.random.default_generator.manual_seed(seed)
        for index in devices:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield


def meanflow_solve(estimator, z: torch.Tensor, *, mu: torch.Tensor, mask: torch.Tensor, spks: torch.Tensor,
                   cond: torch.Tensor, t_span: torch.Tensor) -> torch.Tensor:
    """The package's meanflow branch (distilled, no CFG), without its per-call print and tqdm.

    Every input is cast to the estimator's dtype (a bf16/fp16 estimator would otherwise meet fp32
    activations); the result comes back in `mu`'s dtype.
    """
    dtype, out_dtype = estimator.dtype, mu.dtype
    x = z.to(dtype)
    mu, mask, spks, cond, t_span = (v.to(dtype) for v in (mu, mask, spks, cond, t_span))
    for t, r in zip(t_span[:-1], t_span[1:], strict=True):
        t, r = t[None], r[None]
        x = x + (r - t) * estimator.forward(x, mask=mask, mu=mu, t=t, spks=spks, cond=cond, r=r)
    return x.to(out_dtype)


def _raised_cosine(n: int, device: torch.device) -> torch.Tensor:
    return 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(n, device=device, dtype=torch.float32) + 0.5) / n)


class PhraseDecoder:
    """Turns one phrase's speech tokens into audio, a chunk at a time."""

    def __init__(self, s3gen, ref: dict, *, generator: torch.Generator, max_tokens: int, cfm_steps: int,
                 meanflow: bool = False, context_tokens: int = 24, overlap_frames: int = 4,
                 speed: float = 1.0, silence_tail: bool = False) -> None:
        self.s3gen = s3gen
        self.flow = s3gen.flow
        self.device = s3gen.device
        self.dtype = s3gen.dtype
        self.ref = {k: (v.to(self.device, dtype=self.dtype if v.is_floating_point() else v.dtype)
                        if torch.is_tensor(v) else v) for k, v in ref.items()}
        self.generator = generator
        self.cfm_steps = cfm_steps
        self.meanflow = meanflow
        self.context_tokens = context_tokens
        self.overlap_frames = overlap_frames
        self.speed = speed
        self.silence_tail = silence_tail
        self.lookahead = int(self.flow.pre_lookahead_len)
        self.ratio = int(self.flow.token_mel_ratio)
        self.tokens: list[int] = []
        self.frames_done = 0                 # mel frames handed to the vocoder (global, pre-speed)
        self._frames_out = 0                 # mel frames after speed scaling
        self._mel_ctx: torch.Tensor | None = None
        self._src_ctx: torch.Tensor | None = None
        self._held: torch.Tensor | None = None
        prompt_frames = self.ref["prompt_feat"].shape[1]
        total = prompt_frames + self.ratio * (max_tokens + self.lookahead + 3)
        self._noise = torch.randn(1, 80, total, generator=generator, device=self.device, dtype=torch.float32)
        self._prompt_frames = prompt_frames
        spks = F.normalize(torch.atleast_2d(self.ref["embedding"]).float(), dim=1)
        with torch.inference_mode():
            self._spks = self.flow.spk_embed_affine_layer(spks.to(self.dtype))

    def add(self, token: int) -> None:
        if token < SPEECH_VOCAB:
            self.tokens.append(token)

    def ready_tokens(self) -> int:
        """Tokens whose audio a non-final flush would emit now."""
        return max(0, len(self.tokens) - self.lookahead - self.frames_done // self.ratio)

    @torch.inference_mode()
    def flush(self, final: bool = False) -> np.ndarray:
        """Audio that became final since the last flush (everything left when `final`)."""
        if final and self.silence_tail:
            self.tokens.extend([S3GEN_SILENCE] * 3)
            self.silence_tail = False
        target = self.ratio * (len(self.tokens) if final else max(0, len(self.tokens) - self.lookahead))
        pieces: list[torch.Tensor] = []
        if target > self.frames_done:
            mel = self._mel(target, final)
            pieces.append(self._vocode(mel, final))
        if final and self._held is not None:
            pieces.append(self._held)
            self._held = None
        if not pieces:
            return np.zeros(0, dtype=np.float32)
        return torch.cat(pieces).float().cpu().numpy()

    def _mel(self, target: int, final: bool) -> torch.Tensor:
        """Mel frames [frames_done, target) from a flow pass over the recent tokens."""
        start = max(0, self.frames_done // self.ratio - self.context_tokens)
        window = torch.tensor([self.tokens[start:]], dtype=torch.long, device=self.device)
        prompt = self.ref["prompt_token"].to(torch.long)
        token = torch.cat([prompt, window], dim=1)
        token_len = torch.tensor([token.shape[1]], device=self.device)
        x = self.flow.input_embedding(token)
        h, _ = self.flow.encoder(x, token_len)
        if not final:
            h = h[:, : -self.lookahead * self.ratio]
        h = self.flow.encoder_proj(h)
        p = self._prompt_frames
        frames = h.shape[1]
        gen_frames = frames - p
        cond = torch.zeros(1, frames, 80, device=self.device, dtype=h.dtype)
        cond[:, :p] = self.ref["prompt_feat"]
        first = self.ratio * start
        z = torch.cat([self._noise[:, :, :p], self._noise[:, :, p + first: p + first + gen_frames]], dim=2)
        mask = torch.ones(1, 1, frames, device=self.device, dtype=h.dtype)
        feat = self._solve(z.to(h.dtype), h.transpose(1, 2).contiguous(), mask, cond.transpose(1, 2))
        return feat[:, :, p + self.frames_done - first: p + target - first]

    def _solve(self, z, mu, mask, cond) -> torch.Tensor:
        decoder = self.flow.decoder
        t_span = torch.linspace(0, 1, self.cfm_steps + 1, device=self.device, dtype=mu.dtype)
        if self.meanflow:
            return meanflow_solve(decoder.estimator, z, mu=mu, mask=mask, spks=self._spks, cond=cond, t_span=t_span)
        t_span = 1 - torch.cos(t_span * 0.5 * torch.pi)
        return decoder.solve_euler(z, t_span=t_span, mu=mu, mask=mask, spks=self._spks, cond=cond)

    def _vocode(self, mel: torch.Tensor, final: bool) -> torch.Tensor:
        new_frames = mel.shape[2]
        self.frames_done += new_frames
        if self.speed != 1.0:
            target = round(self.frames_done / self.speed)
            mel = F.interpolate(mel, size=max(1, target - self._frames_out), mode="linear", align_corners=False)
        self._frames_out += mel.shape[2]
        ctx = self._mel_ctx
        mel_in = mel if ctx is None else torch.cat([ctx, mel], dim=2)
        cache = self._src_ctx if self._src_ctx is not None else torch.zeros(1, 1, 0, device=self.device)
        seed = int(torch.randint(0, 2**62, (1,), generator=self.generator, device=self.generator.device))
        with seeded_global_rng(seed, self.device):
            wav, source = self.s3gen.mel2wav.inference(speech_feat=mel_in.to(self.dtype), cache_source=cache.to(self.dtype))
        wav = wav[0].float()
        if ctx is None:
            fade = self.s3gen.trim_fade
            n = min(len(fade), wav.shape[0])
            wav[:n] = wav[:n] * fade[:n]
        else:
            n = ctx.shape[2] * SAMPLES_PER_FRAME
            fade_in = _raised_cosine(n, wav.device)
            wav = torch.cat([self._held * (1 - fade_in) + wav[:n] * fade_in, wav[n:]])
        keep = min(self.overlap_frames, mel_in.shape[2])
        self._mel_ctx = mel_in[:, :, -keep:]
        self._src_ctx = source[:, :, -keep * SAMPLES_PER_FRAME:]
        if final:
            self._held = None
            return wav
        held = keep * SAMPLES_PER_FRAME
        self._held = wav[-held:]
        return wav[:-held]
