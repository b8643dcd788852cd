"""Chunked S3Gen decoding of a growing speech-token sequence, for one phrase.

S3Gen's encoder and flow-matching decoder attend over the whole sequence, and the encoder looks
three tokens ahead, so a chunk is decoded by re-running the flow over the phrase's recent tokens
(a bounded left context) and keeping only the mel frames that no later token can still change:
all frames up to the lookahead, or every frame once the phrase is final.

A flush is three steps, so that `batched_flush.flush_many` can run the middle ones for several
phrases at once: `begin_flush` (what the flow must compute), `run_flow` (encoder + CFM solve, padded
to a length bucket and masked) and `run_vocoder` (HiFT), then `end_flush` (crossfade, hold-back).

Padding is exact: the flow's inputs are right-padded to a multiple of `BUCKET_TOKENS` and masked.
The encoder's attention masks padded keys (-inf), its upsampling conv is causal and its one
look-ahead conv sees zeros past the end, as the package's own zero padding gives it; the CFM
estimator's convs are causal, its attention masks padded keys with a -1e10 bias (exp underflows to
exactly 0) and its every block multiplies by the mask. So a padded row equals the unpadded one up
to the summation order of reductions over a longer axis (float32: within 1e-5 on the mel).

Randomness is the phrase's own: the CFM noise is a per-phrase tensor indexed by global frame
position, and HiFT's sine-source noise and phases come from keyed generators indexed by output
frame position (`hift_excitation`), so re-decoding never re-rolls them, no global RNG is touched and
HiFT runs batched. The vocoder gets the previous chunk's last mel frames as left context and its
source excitation for those frames; the audio of that overlap is crossfaded with the tail held back
from the previous chunk. The package's start-of-clip fade is applied once, at the start of the
phrase, so chunk joins have no dips and the streamed phrase has exactly the one-shot length: 960
samples per token at speed 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

SAMPLES_PER_FRAME = 480           # 24 kHz / 50 mel frames per second
SPEECH_VOCAB = 6561               # tokens at or above this are special (SOS/EOS/pad) and never decoded
S3GEN_SILENCE = 4299              # the package's silence token (Turbo appends three at the end)
BUCKET_TOKENS = 16                # flow inputs are padded to a multiple of this (32 mel frames)
NOISE_BLOCK_FRAMES = 25           # HiFT noise is drawn in keyed blocks of this many output frames
NARROW = (torch.bfloat16, torch.float16)   # estimator/encoder dtypes run under autocast
_GOLDEN = 0x9E3779B97F4A7C15


def bucket_tokens(n: int) -> int:
    """The padded token length of a flow pass over `n` tokens (prompt included)."""
    return -(-n // BUCKET_TOKENS) * BUCKET_TOKENS


def _mask_to_bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The package's `mask_to_bias` without its float32/bf16/fp16-only assertion (float64 runs too)."""
    return (1.0 - mask.to(dtype)) * -1.0e10


def _allow_float64_estimator() -> None:
    # The estimator asserts its dtype is a 32/16-bit float before building its attention bias, which
    # would refuse the float64 runs that prove padded and batched flushes exact. Same arithmetic.
    from chatterbox.models.s3gen import decoder

    decoder.mask_to_bias = _mask_to_bias


_allow_float64_estimator()


def narrow_autocast(dtype: torch.dtype, device: torch.device):
    """Autocast for a module cast to a 16-bit float by `loading.cast_s3gen`, a no-op otherwise.

    Its weights are 16-bit (half the bytes to read), its LayerNorms float32; under autocast the
    matmuls and convs run in `dtype` while norms, softmax and the residual stream stay float32. Fed
    16-bit activations end to end instead, the random-weight estimator's mel is off by ~9 % (CFG
    amplifies the rounding); this way by ~1 %.
    """
    return torch.autocast(device.type, dtype=dtype, enabled=dtype in NARROW)


def _estimate(estimator, x: torch.Tensor, **inputs: torch.Tensor | None) -> torch.Tensor:
    """One estimator call in the estimator's precision (the caller casts the result back)."""
    dtype = estimator.dtype
    with narrow_autocast(dtype, x.device):
        if dtype not in NARROW:
            x = x.to(dtype)
            inputs = {k: None if v is None else v.to(dtype) for k, v in inputs.items()}
        return estimator.forward(x, **inputs)


def meanflow_solve(estimator, z: torch.Tensor, *, mu: torch.Tensor, mask: torch.Tensor, spks: torch.Tensor,
                   cond: torch.Tensor, t_span: torch.Tensor) -> torch.Tensor:
    """The package's meanflow branch (distilled, no CFG), without its per-call print and tqdm.

    The solver's state (x, t, dt) stays in `z`'s dtype; only the estimator runs in its own precision
    (a bf16 estimator under autocast, see `narrow_autocast`). The result comes back in `z`'s dtype.
    """
    x = z
    for t, r in zip(t_span[:-1], t_span[1:], strict=True):
        t, r = t[None], r[None]
        x = x + (r - t) * _estimate(estimator, x, mask=mask, mu=mu, t=t, spks=spks, cond=cond, r=r).to(z.dtype)
    return x


def cfg_euler_solve(estimator, z: torch.Tensor, *, mu: torch.Tensor, mask: torch.Tensor, spks: torch.Tensor,
                    cond: torch.Tensor, t_span: torch.Tensor, cfg_rate: float) -> torch.Tensor:
    """The package's `CausalConditionalCFM.solve_euler` (Euler steps with classifier-free guidance).

    The same arithmetic (equal to it at float32), with the solver's state in `z`'s dtype and only the
    estimator in its own precision, as `meanflow_solve`. Rows are independent: the unconditional
    half of the doubled batch has zero `mu`, `spks` and `cond`.
    """
    batch = z.shape[0]
    mu_in, spks_in, cond_in = (torch.cat([v, torch.zeros_like(v)]) for v in (mu, spks, cond))
    mask_in = torch.cat([mask, mask])
    x = z
    for t, r in zip(t_span[:-1], t_span[1:], strict=True):
        out = _estimate(estimator, torch.cat([x, x]), mask=mask_in, mu=mu_in, t=t.expand(2 * batch),
                        spks=spks_in, cond=cond_in).to(z.dtype)
        dxdt, cfg_dxdt = torch.split(out, [batch, batch], dim=0)
        x = x + (r - t) * ((1.0 + cfg_rate) * dxdt - cfg_rate * cfg_dxdt)
    return x


def _keyed_generator(seed: int, index: int, device: torch.device) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed((seed ^ (index * _GOLDEN)) % 2**63)
    return generator


def hift_excitation(seed: int, first_frame: int, frames: int, harmonics: int, device: torch.device,
                    dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """HiFT's random source inputs for output frames [first_frame, first_frame + frames).

    Returns the sine phases (1, harmonics, 1; the fundamental's is 0, as in the package) and the
    additive noise (1, harmonics, frames * 480). The noise of a sample depends only on the phrase's
    seed and the sample's position (blocks of `NOISE_BLOCK_FRAMES` frames, each from its own keyed
    generator), the phases only on the seed and `first_frame`; so nothing depends on other phrases
    or on how the phrase was chunked or batched.
    """
    block = NOISE_BLOCK_FRAMES * SAMPLES_PER_FRAME
    first_block, last_block = first_frame // NOISE_BLOCK_FRAMES, (first_frame + frames - 1) // NOISE_BLOCK_FRAMES
    blocks = [torch.randn(harmonics, block, generator=_keyed_generator(seed, 2 * b, device), device=device)
              for b in range(first_block, last_block + 1)]
    offset = (first_frame - first_block * NOISE_BLOCK_FRAMES) * SAMPLES_PER_FRAME
    noise = torch.cat(blocks, dim=1)[None, :, offset: offset + frames * SAMPLES_PER_FRAME]
    phases = torch.rand(1, harmonics, 1, generator=_keyed_generator(seed, 2 * first_frame + 1, device), device=device)
    phases = (phases * 2 - 1) * math.pi
    phases[:, 0] = 0
    return phases.to(dtype), noise.to(dtype)


def _raised_cosine(n: int, device: torch.device) -> torch.Tensor:
    return 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(n, device=device, dtype=torch.float32) + 0.5) / n)


@dataclass
class FlowRequest:
    """One phrase's pending flow pass: prompt + window tokens, its noise, and the frames it keeps."""

    tokens: torch.Tensor          # (1, T) long: prompt tokens + window tokens
    frames: int                   # mel frames the solve covers (the encoder's output, trimmed unless final)
    noise: torch.Tensor           # (1, 80, frames)
    cond: torch.Tensor            # (1, 80, frames): the prompt's mel, zeros after it
    spks: torch.Tensor            # (1, 80) projected speaker embedding
    keep: tuple[int, int]         # frames of the result to hand to the vocoder
    steps: int
    meanflow: bool


@dataclass
class VocoderRequest:
    """One phrase's pending HiFT call: mel with left context, the cached source, its noise."""

    mel: torch.Tensor             # (1, 80, frames)
    cache: torch.Tensor           # (1, 1, samples) source of the context frames (may be empty)
    phases: torch.Tensor          # (1, harmonics, 1)
    noise: torch.Tensor           # (1, harmonics, frames * 480)


def encode(flow, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The flow's encoder + projection over right-padded tokens (B, T) -> (B, 2T, 80), masked.

    The package's `UpsampleConformerEncoder.forward`, step by step, with one addition: padded
    positions are zeroed before the look-ahead conv, which otherwise would read the embedding layer's
    output (bias + LayerNorm, not zero) of padding into the last real tokens.
    """
    with narrow_autocast(flow.encoder_proj.weight.dtype, tokens.device):
        return _encode(flow, tokens, lengths)


def _encode(flow, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    from chatterbox.models.s3gen.utils.mask import add_optional_chunk_mask

    encoder = flow.encoder
    width = tokens.shape[1]
    valid = torch.arange(width, device=tokens.device)[None, :] < lengths[:, None]
    xs = flow.input_embedding(tokens.clamp(0, SPEECH_VOCAB - 1)) * valid[..., None]
    if flow.encoder_proj.weight.dtype not in NARROW:          # a narrow encoder runs under autocast
        xs = xs.to(flow.encoder_proj.weight.dtype)
    masks = valid[:, None, :]
    xs, pos_emb, masks = encoder.embed(xs, masks)
    chunk_masks = add_optional_chunk_mask(xs, masks, encoder.use_dynamic_chunk, encoder.use_dynamic_left_chunk,
                                          0, encoder.static_chunk_size, -1)
    xs = encoder.pre_lookahead_layer(xs * valid[..., None].to(xs.dtype))
    xs = encoder.forward_layers(xs, chunk_masks, pos_emb, masks)
    xs, up_lengths = encoder.up_layer(xs.transpose(1, 2).contiguous(), lengths)
    xs = xs.transpose(1, 2).contiguous()
    masks = (torch.arange(xs.shape[1], device=xs.device)[None, :] < up_lengths[:, None])[:, None, :]
    xs, pos_emb, masks = encoder.up_embed(xs, masks)
    chunk_masks = add_optional_chunk_mask(xs, masks, encoder.use_dynamic_chunk, encoder.use_dynamic_left_chunk,
                                          0, encoder.static_chunk_size * encoder.up_layer.stride, -1)
    xs = encoder.forward_up_layers(xs, chunk_masks, pos_emb, masks)
    if encoder.normalize_before:
        xs = encoder.after_norm(xs)
    return flow.encoder_proj(xs)


def run_flow(flow, requests: list[FlowRequest], pad_to: int | None = None) -> list[torch.Tensor]:
    """Mel frames `keep` of each request from one padded, masked flow pass over all of them.

    All requests share `steps` and `meanflow`. `pad_to` is the padded token length (default: the
    bucket of the longest request); the result does not depend on it beyond float rounding.
    """
    first = requests[0]
    if any((r.steps, r.meanflow) != (first.steps, first.meanflow) for r in requests):
        raise ValueError("run_flow: requests batched together must share the CFM steps and solver")
    io_dtype = first.noise.dtype
    device = first.tokens.device
    longest = max(r.tokens.shape[1] for r in requests)
    width = bucket_tokens(longest) if pad_to is None else pad_to
    if width < longest:
        raise ValueError(f"run_flow: pad_to={width} is shorter than the longest request ({longest} tokens)")
    ratio = int(flow.token_mel_ratio)
    frames = ratio * width
    batch = len(requests)
    tokens = torch.zeros(batch, width, dtype=torch.long, device=device)
    z = torch.zeros(batch, 80, frames, dtype=io_dtype, device=device)
    cond = torch.zeros(batch, 80, frames, dtype=io_dtype, device=device)
    mask = torch.zeros(batch, 1, frames, dtype=io_dtype, device=device)
    for i, r in enumerate(requests):
        tokens[i, : r.tokens.shape[1]] = r.tokens[0]
        z[i, :, : r.frames] = r.noise[0]
        cond[i, :, : r.frames] = r.cond[0]
        mask[i, :, : r.frames] = 1
    lengths = torch.tensor([r.tokens.shape[1] for r in requests], device=device)
    mu = encode(flow, tokens, lengths).to(io_dtype).transpose(1, 2).contiguous()
    spks = torch.cat([r.spks for r in requests])
    t_span = torch.linspace(0, 1, first.steps + 1, device=device, dtype=io_dtype)
    estimator = flow.decoder.estimator
    if first.meanflow:
        feat = meanflow_solve(estimator, z, mu=mu, mask=mask, spks=spks, cond=cond, t_span=t_span)
    else:
        t_span = 1 - torch.cos(t_span * 0.5 * torch.pi)
        feat = cfg_euler_solve(estimator, z, mu=mu, mask=mask, spks=spks, cond=cond, t_span=t_span,
                               cfg_rate=float(flow.decoder.inference_cfg_rate))
    return [feat[i: i + 1, :, r.keep[0]: r.keep[1]] for i, r in enumerate(requests)]


def run_vocoder(hift, requests: list[VocoderRequest]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """HiFT on each request, as one batch: (wav (samples,), source (1, 1, samples)) per request.

    The package's `HiFTGenerator.inference` with the sine source's random phases and noise taken
    from the requests instead of torch's global RNG. HiFT's convs look both ways, so it is batched
    only over equal shapes: the requests must share mel length and cache length.
    """
    first = requests[0]
    if any(r.mel.shape != first.mel.shape or r.cache.shape != first.cache.shape for r in requests):
        raise ValueError("run_vocoder: requests batched together must share mel and cache lengths")
    mel = torch.cat([r.mel for r in requests])
    f0 = hift.f0_predictor(mel)
    f0 = hift.f0_upsamp(f0[:, None])                                   # (B, 1, samples)
    sine = hift.m_source.l_sin_gen
    harmonic = torch.arange(1, sine.harmonic_num + 2, device=f0.device, dtype=f0.dtype)[None, :, None]
    theta = 2 * math.pi * (torch.cumsum(f0 * harmonic / sine.sampling_rate, dim=-1) % 1)
    waves = sine.sine_amp * torch.sin(theta + torch.cat([r.phases for r in requests]))
    uv = (f0 > sine.voiced_threshold).to(f0.dtype)
    noise_amp = uv * sine.noise_std + (1 - uv) * sine.sine_amp / 3
    waves = waves * uv + noise_amp * torch.cat([r.noise for r in requests])
    source = hift.m_source.l_tanh(hift.m_source.l_linear(waves.transpose(1, 2))).transpose(1, 2)
    if first.cache.shape[2]:
        source[:, :, : first.cache.shape[2]] = torch.cat([r.cache for r in requests])
    wav = hift.decode(x=mel, s=source)
    return [(wav[i], source[i: i + 1]) for i in range(len(requests))]


class PhraseDecoder:
    """Turns one phrase's speech tokens into audio, a chunk at a time."""

    def __init__(self, s3gen, ref: dict, *, generator: torch.Generator, max_tokens: int, cfm_steps: int,
                 meanflow: bool = False, context_tokens: int = 24, overlap_frames: int = 4,
                 speed: float = 1.0, silence_tail: bool = False) -> None:
        self.s3gen = s3gen
        self.flow = s3gen.flow
        self.hift = s3gen.mel2wav
        self.device = s3gen.device
        # The flow's inputs and outputs, the speaker projection and HiFT keep this dtype; the encoder
        # and the CFM estimator may run narrower (`loading.cast_s3gen`) and cast at their edges.
        self.dtype = next(self.hift.parameters()).dtype
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
        self._joining: tuple[int | None, int] = (None, 0)   # (context frames, input frames) of the pending HiFT call
        self._src_ctx: torch.Tensor | None = None
        self._held: torch.Tensor | None = None
        prompt_frames = self.ref["prompt_feat"].shape[1]
        total = prompt_frames + self.ratio * (max_tokens + self.lookahead + 3)
        self._noise = torch.randn(1, 80, total, generator=generator, device=self.device, dtype=torch.float32)
        self._hift_seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
        self._prompt_frames = prompt_frames
        spks = F.normalize(torch.atleast_2d(self.ref["embedding"]).to(self.dtype), dim=1)
        with torch.inference_mode():
            self._spks = self.flow.spk_embed_affine_layer(spks.to(self.flow.spk_embed_affine_layer.weight.dtype))

    def add(self, token: int) -> None:
        if token < SPEECH_VOCAB:
            self.tokens.append(token)

    def ready_tokens(self) -> int:
        """Tokens whose audio a non-final flush would emit now."""
        return max(0, len(self.tokens) - self.lookahead - self.frames_done // self.ratio)

    @torch.inference_mode()
    def flush(self, final: bool = False) -> np.ndarray:
        """Audio that became final since the last flush (everything left when `final`)."""
        request = self.begin_flush(final)
        vocoded = None
        if request is not None:
            mel = run_flow(self.flow, [request])[0]
            vocoded = run_vocoder(self.hift, [self.vocoder_request(mel)])[0]
        return self.end_flush(final, vocoded)

    def begin_flush(self, final: bool) -> FlowRequest | None:
        """The flow pass this flush needs (None when no new frame is due)."""
        if final and self.silence_tail:
            self.tokens.extend([S3GEN_SILENCE] * 3)
            self.silence_tail = False
        target = self.ratio * (len(self.tokens) if final else max(0, len(self.tokens) - self.lookahead))
        if target <= self.frames_done:
            return None
        start = max(0, self.frames_done // self.ratio - self.context_tokens)
        window = torch.tensor([self.tokens[start:]], dtype=torch.long, device=self.device)
        tokens = torch.cat([self.ref["prompt_token"].to(self.device, torch.long), window], dim=1)
        frames = self.ratio * tokens.shape[1] - (0 if final else self.lookahead * self.ratio)
        p = self._prompt_frames
        cond = torch.zeros(1, 80, frames, device=self.device, dtype=self.dtype)
        cond[:, :, :p] = self.ref["prompt_feat"].transpose(1, 2)
        first = self.ratio * start
        noise = torch.cat([self._noise[:, :, :p], self._noise[:, :, p + first: p + first + frames - p]], dim=2)
        return FlowRequest(tokens=tokens, frames=frames, noise=noise.to(self.dtype), cond=cond, spks=self._spks,
                           keep=(p + self.frames_done - first, p + target - first), steps=self.cfm_steps,
                           meanflow=self.meanflow)

    def vocoder_request(self, mel: torch.Tensor) -> VocoderRequest:
        """The HiFT call for the flow's new frames; advances the frame counters."""
        self.frames_done += mel.shape[2]
        if self.speed != 1.0:
            target = round(self.frames_done / self.speed)
            mel = F.interpolate(mel, size=max(1, target - self._frames_out), mode="linear", align_corners=False)
        self._frames_out += mel.shape[2]
        ctx = self._mel_ctx
        mel_in = mel if ctx is None else torch.cat([ctx, mel], dim=2)
        cache = self._src_ctx if self._src_ctx is not None else torch.zeros(1, 1, 0, device=self.device)
        keep = min(self.overlap_frames, mel_in.shape[2])
        self._joining = (None if ctx is None else ctx.shape[2], mel_in.shape[2])
        self._mel_ctx = mel_in[:, :, -keep:]
        harmonics = self.hift.m_source.l_sin_gen.harmonic_num + 1
        phases, noise = hift_excitation(self._hift_seed, self._frames_out - mel_in.shape[2], mel_in.shape[2],
                                        harmonics, self.device, self.dtype)
        return VocoderRequest(mel=mel_in.to(self.dtype), cache=cache.to(self.dtype), phases=phases, noise=noise)

    def end_flush(self, final: bool, vocoded: tuple[torch.Tensor, torch.Tensor] | None) -> np.ndarray:
        """Crossfade the vocoded chunk onto the held tail, hold back the new tail; the flush's audio."""
        pieces: list[torch.Tensor] = []
        if vocoded is not None:
            pieces.append(self._join(*vocoded, final))
        if final and self._held is not None:
            pieces.append(self._held)
            self._held = None
        if not pieces:
            return np.zeros(0, dtype=np.float32)
        return torch.cat(pieces).float().cpu().numpy()

    def _join(self, wav: torch.Tensor, source: torch.Tensor, final: bool) -> torch.Tensor:
        wav = wav.float()
        ctx_frames, frames_in = self._joining
        if ctx_frames is None:
            fade = self.s3gen.trim_fade
            n = min(len(fade), wav.shape[0])
            wav[:n] = wav[:n] * fade[:n]
        else:
            n = ctx_frames * SAMPLES_PER_FRAME
            fade_in = _raised_cosine(n, wav.device)
            wav = torch.cat([self._held * (1 - fade_in) + wav[:n] * fade_in, wav[n:]])
        keep = min(self.overlap_frames, frames_in)
        self._src_ctx = source[:, :, -keep * SAMPLES_PER_FRAME:]
        if final:
            self._held = None
            return wav
        held = keep * SAMPLES_PER_FRAME
        self._held = wav[-held:]
        return wav[:-held]
