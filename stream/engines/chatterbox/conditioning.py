"""Voice conditioning: reference clip -> the tensors T3 and S3Gen need, prepared once per voice.

Preparing runs the voice encoder, the S3 tokenizer, CAMPPlus and a mel extractor over the clip
(hundreds of milliseconds on a GPU, seconds on a CPU). Exaggeration is deliberately not part of
it: it only feeds the last conditioning position (`emotion_adv_fc`), so a turn with another
exaggeration builds that one vector and reuses everything else.

The same split makes the voice's share of T3's KV cache reusable: `T3CondEnc` orders the
conditioning as speaker, (CLAP, unused), prompt/perceiver positions, emotion - so every position
before the emotion one is the same for every turn of a voice, and by causality so are their keys
and values in every layer. `voice_kv` computes them once per voice (and T3 dtype/device) and the
static decode copies them into its cache at prefill, running only emotion + text + start.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import torch

S3GEN_SR = 24_000
S3_SR = 16_000
_GEN_KEYS = ("prompt_token", "prompt_token_len", "prompt_feat", "prompt_feat_len", "embedding")


@dataclass(frozen=True)
class VoiceConditioning:
    """Everything voice-specific; `t3_prefix` is the conditioning embedding minus the emotion position."""

    speaker_emb: torch.Tensor                  # (1, 256) voice-encoder embedding
    prompt_tokens: torch.Tensor | None         # (1, P) speech tokens of the clip's start, for T3
    gen: dict[str, torch.Tensor | None]        # S3Gen reference dict (prompt tokens/mels, x-vector)
    t3_prefix: torch.Tensor                    # (1, L, dim) on the model's device and T3 dtype
    # `voice_kv` results by T3 dtype and device, filled on first use; never serialized
    kv: dict[tuple[torch.dtype, torch.device], PrefixKV] = field(default_factory=dict, compare=False, repr=False)

    def to_bytes(self) -> bytes:
        """Serialize the prepared tensors (not the derived prefix) for the on-disk cache."""
        payload = {
            "speaker_emb": self.speaker_emb.cpu(),
            "prompt_tokens": None if self.prompt_tokens is None else self.prompt_tokens.cpu(),
            "gen": {k: (v.cpu() if torch.is_tensor(v) else v) for k, v in self.gen.items()},
        }
        buf = io.BytesIO()
        torch.save(payload, buf)
        return buf.getvalue()


@dataclass(frozen=True)
class PrefixKV:
    """Per-layer keys and values of the voice prefix positions (each (1, heads, length, head_dim))."""

    keys: tuple[torch.Tensor, ...]
    values: tuple[torch.Tensor, ...]
    length: int


@torch.inference_mode()
def prefix_kv(t3, prefix: torch.Tensor) -> PrefixKV:
    """Run T3's layers over `prefix` (positions 0..L-1) and keep what each layer cached."""
    from transformers import DynamicCache

    cache = DynamicCache()
    t3.tfmr(inputs_embeds=prefix.to(t3.speech_emb.weight.dtype), past_key_values=cache, use_cache=True)
    return PrefixKV(keys=tuple(layer.keys for layer in cache.layers),
                    values=tuple(layer.values for layer in cache.layers), length=prefix.shape[1])


def voice_kv(t3, conditioning: VoiceConditioning) -> PrefixKV:
    """The voice prefix's KV for this T3, computed on the first turn of a voice and kept with it.

    Two first turns racing compute the same tensors twice and one wins: harmless, so no lock.
    """
    key = (t3.speech_emb.weight.dtype, t3.speech_emb.weight.device)
    if (cached := conditioning.kv.get(key)) is None:
        cached = conditioning.kv[key] = prefix_kv(t3, conditioning.t3_prefix)
    return cached


@torch.inference_mode()
def t3_prefix(t3, speaker_emb: torch.Tensor, prompt_tokens: torch.Tensor | None) -> torch.Tensor:
    """The T3 conditioning embedding without the emotion position, computed as `T3CondEnc` does."""
    enc = t3.cond_enc
    dtype = t3.speech_emb.weight.dtype
    spk = enc.spkr_enc(speaker_emb.view(-1, t3.hp.speaker_embed_size).to(dtype))[:, None]
    parts = [spk]
    if prompt_tokens is not None:
        prompt = t3.speech_emb(prompt_tokens)
        if not t3.is_gpt:
            prompt = prompt + t3.speech_pos_emb(prompt_tokens)
        if t3.hp.use_perceiver_resampler:
            prompt = enc.perceiver(prompt)
        parts.append(prompt)
    return torch.cat(parts, dim=1)


@torch.inference_mode()
def with_emotion(t3, prefix: torch.Tensor, exaggeration: float) -> torch.Tensor:
    """Append the emotion position for this turn's exaggeration (models without one use the prefix as is)."""
    if not t3.hp.emotion_adv:
        return prefix
    adv = torch.full((1, 1, 1), float(exaggeration), device=prefix.device, dtype=prefix.dtype)
    return torch.cat([prefix, t3.cond_enc.emotion_adv_fc(adv)], dim=1)


def from_bytes(data: bytes, t3, device: torch.device) -> VoiceConditioning:
    payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    return _assemble(t3, device, payload["speaker_emb"], payload["prompt_tokens"], payload["gen"])


def from_package_conds(conds, t3, device: torch.device) -> VoiceConditioning:
    """Wrap the package's `Conditionals` (a checkpoint's built-in conds.pt voice)."""
    return _assemble(t3, device, conds.t3.speaker_emb, conds.t3.cond_prompt_speech_tokens, dict(conds.gen))


def _assemble(t3, device: torch.device, speaker_emb: torch.Tensor, prompt_tokens: torch.Tensor | None,
              gen: dict) -> VoiceConditioning:
    speaker_emb = speaker_emb.to(device=device, dtype=torch.float32)
    if prompt_tokens is not None:
        prompt_tokens = torch.atleast_2d(prompt_tokens).to(device=device, dtype=torch.long)
    gen = {k: (gen.get(k).to(device) if torch.is_tensor(gen.get(k)) else gen.get(k)) for k in _GEN_KEYS}
    return VoiceConditioning(speaker_emb, prompt_tokens, gen, t3_prefix(t3, speaker_emb, prompt_tokens))


@torch.inference_mode()
def prepare(tts, audio: np.ndarray, sample_rate: int, *, loudness_normalize: bool) -> VoiceConditioning:
    """Prepare conditioning from a decoded mono clip, the way the package's `prepare_conditionals` does.

    Same resampling chain (to 24 kHz, then 16 kHz from that), the same cuts (DEC_COND_LEN for S3Gen,
    ENC_COND_LEN for the T3 prompt) and the same encoders; only the input is an array, not a path.
    """
    import librosa

    device = torch.device(tts.device) if isinstance(tts.device, str) else tts.device
    wav24 = audio.astype(np.float32)
    if sample_rate != S3GEN_SR:
        wav24 = librosa.resample(wav24, orig_sr=sample_rate, target_sr=S3GEN_SR)
    if loudness_normalize:
        wav24 = tts.norm_loudness(wav24, S3GEN_SR)
    wav16 = librosa.resample(wav24, orig_sr=S3GEN_SR, target_sr=S3_SR)
    gen = tts.s3gen.embed_ref(wav24[: tts.DEC_COND_LEN], S3GEN_SR, device=device)
    prompt_tokens = None
    if plen := tts.t3.hp.speech_cond_prompt_len:
        prompt_tokens, _ = tts.s3gen.tokenizer.forward([wav16[: tts.ENC_COND_LEN]], max_len=plen)
    speaker = torch.from_numpy(tts.ve.embeds_from_wavs([wav16], sample_rate=S3_SR)).mean(dim=0, keepdim=True)
    return _assemble(tts.t3, device, speaker, prompt_tokens, gen)
