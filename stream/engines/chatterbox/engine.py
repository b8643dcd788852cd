"""The Chatterbox engine: streamed T3 tokens, chunked S3Gen audio, cached voices, Perth watermark.

One phrase runs as: text -> T3 speech tokens (sampled one by one, `sampling.py`) -> every few
tokens a flush of the phrase decoder (`decoding.py`) -> watermark (`watermark.py`, on a CPU worker
of its own while this thread decodes on) -> a chunk.
The first chunk of a turn is the smallest (TTFA); later chunks grow, so the decoder's fixed cost
per flush (a flow pass over the reference prompt) is paid less often once audio is playing.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream.audio.reference import audio_digest
from stream.core.batch_schedule import ScheduleConfig
from stream.core.errors import BadAudio, Unsupported, VoiceNotFound
from stream.core.protocol import GenerationSettings
from stream.engines.base import BuiltinVoice, Capabilities, Engine, EngineLoadError, SynthesisRequest, Voice
from stream.engines.chatterbox import conditioning as cond_mod
from stream.engines.chatterbox.conditioning_cache import ConditioningCache
from stream.engines.chatterbox.decoding import PhraseDecoder
from stream.engines.chatterbox.loading import (
    LoadedModel,
    cast_s3gen,
    cast_t3,
    enable_tf32,
    load_model,
    variant_spec,
)
from stream.engines.chatterbox.policy import POLICY
from stream.engines.chatterbox.sampling import SamplingParams, llama_tokens, token_cap, turbo_tokens
from stream.engines.chatterbox.static_decode import llama_tokens_static
from stream.engines.chatterbox.static_turbo import turbo_tokens_static
from stream.engines.chatterbox.watermark import WatermarkStage
from stream.inference.executor import Executor
from stream.settings import Settings

log = logging.getLogger("voicewire.chatterbox")

SAMPLE_RATE = 24_000
# KV positions per batched row: conditioning (34) + a phrase's text (the policy cuts at 250 characters)
# + the token cap's ceiling (1000), rounded up to the runner's 64-position attention buckets.
BATCH_POSITIONS = 1344
TURBO_MIN_REFERENCE_S = 5.0     # the package refuses shorter Turbo references
_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16", "half": "float16"}
SAMPLERS = ("package", "counter")   # the serial T3 path's draw (`--sampler`); Turbo always draws as the package
_SAMPLING_FIELDS = frozenset({"temperature", "top_p", "repetition_penalty", "seed", "speed"})


@dataclass(frozen=True)
class StreamTuning:
    """Chunking and decoder knobs. Defaults favour TTFA on a GPU; tests and benchmarks shrink them."""

    first_chunk_tokens: int = 8          # first chunk of a turn: 320 ms of audio
    first_chunk_tokens_later: int = 16   # first chunk of the turn's later phrases (audio is already playing)
    max_chunk_tokens: int = 48           # chunks double up to this
    context_tokens: int = 24             # left context re-decoded with each flush
    overlap_frames: int = 4              # vocoder overlap / crossfade (80 ms)
    cfm_steps: int | None = None         # None: the package's (10, Turbo 2)
    max_new_tokens: int | None = None    # fixed budget (benchmarks); None: proportional to the text
    static_decode: bool = True           # T3 (Llama and Turbo's GPT-2) on the static cache, CUDA graph on CUDA;
                                         # False: the dynamic-cache loops

    def chunk_sizes(self, first_in_context: bool) -> Iterator[int]:
        size = self.first_chunk_tokens if first_in_context else self.first_chunk_tokens_later
        while True:
            yield size
            size = min(self.max_chunk_tokens, size * 2)


def _default_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class ChatterboxEngine(Engine):
    """Chatterbox (original, Turbo or multilingual) behind the engine interface."""

    policy = POLICY

    def __init__(self, settings: Settings, variant: str = "chatterbox", tuning: StreamTuning | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.spec = variant_spec(variant)
        self.name = variant
        self.model = self.spec.repo_id if not settings.model_dir else f"{variant}@{settings.model_dir}"
        self.sample_rate = SAMPLE_RATE
        self.tuning = tuning or StreamTuning()
        self.watermark = settings.watermark
        self.preparations = 0               # real voice preparations (cache misses); tests count these
        self._progress = progress or log.info
        self._loaded: LoadedModel | None = None
        self._default: Voice | None = None
        self._cache: ConditioningCache | None = None
        self._watermark_stage: WatermarkStage | None = None
        self._stage_lock = threading.Lock()
        self.capabilities = self._capabilities(self._languages())

    # ----- description -------------------------------------------------------------------------
    def _languages(self) -> tuple[str, ...]:
        if not self.spec.multilingual:
            return ("en",)
        try:
            return tuple(sorted(importlib.import_module("chatterbox.mtl_tts").SUPPORTED_LANGUAGES))
        except ImportError:
            return ("en",)

    def _capabilities(self, languages: tuple[str, ...]) -> Capabilities:
        notes = {
            "seed": "per-request generator: identical input and seed give identical audio on the same device",
            "speed": "mel time-scaling before the vocoder (pitch kept)",
            "watermark": "Perth implicit watermark on every streamed chunk" if self.watermark
                         else "off (--no-watermark)",
            "batching": self._batching_note(),
        }
        if self.spec.turbo:
            fields = _SAMPLING_FIELDS
            notes["exaggeration, cfg_weight, min_p"] = "accepted and ignored: Turbo has no emotion input, CFG or min_p"
        else:
            fields = _SAMPLING_FIELDS | {"exaggeration", "cfg_weight", "min_p"}
            notes["exaggeration"] = "emotion input of T3 (0-2); changing it never re-prepares the voice"
            notes["temperature"] = "0 samples greedily"
        if self.spec.multilingual:
            fields = fields | {"language"}
            notes["language"] = "tokenizer language (default en)"
        return Capabilities(voice_cloning=True, generation_fields=frozenset(fields), deterministic_seed=True,
                            streaming="token", watermark=self.watermark, languages=languages, notes=notes)

    # ----- loading -----------------------------------------------------------------------------
    def load(self) -> None:
        import torch

        if self.settings.sampler not in SAMPLERS:
            raise EngineLoadError(f"--sampler: {self.settings.sampler!r} is not one of {', '.join(SAMPLERS)}")
        device = self.settings.device or _default_device()
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise EngineLoadError(f"--device: {device} requested but torch sees no CUDA device "
                                  f"(torch {torch.__version__}, CUDA build {torch.version.cuda})")
        loaded = load_model(self.spec, self.settings.model_dir, device, report=self._progress)
        tts = loaded.tts
        if self.settings.dtype:
            name = _DTYPES.get(self.settings.dtype.lower())
            if name is None:
                raise EngineLoadError(f"--dtype: {self.settings.dtype!r} is not one of {', '.join(sorted(set(_DTYPES)))}")
            cast_t3(tts.t3, getattr(torch, name))
            if name == "bfloat16":
                # S3Gen's flow encoder and CFM estimator too; HiFT, its STFT and the mel stay float32.
                # float16 casts T3 only; the S3Gen split is tested in bfloat16 (its float32 exponent range).
                cast_s3gen(tts.s3gen, torch.bfloat16)
        enable_tf32(device)
        if self.watermark and getattr(tts, "watermarker", None) is None:
            raise EngineLoadError("watermark: Perth's implicit watermarker is unavailable; reinstall resemble-perth "
                                  "or start with --no-watermark")
        self._loaded = loaded
        self.model = f"{self.spec.name}:{loaded.identity}"
        cache_dir = Path(self.settings.data_dir) / "conditioning" / self.spec.name
        self._cache = ConditioningCache(cache_dir, self.settings.voice_cache_size, loaded.identity,
                                        dump=cond_mod.VoiceConditioning.to_bytes,
                                        load=lambda data: cond_mod.from_bytes(data, tts.t3, self._device))
        if getattr(tts, "conds", None) is not None:
            conditioning = cond_mod.from_package_conds(tts.conds, tts.t3, self._device)
            self._default = Voice(id="default", name="default", conditioning=conditioning)
        else:
            self._progress(f"{self.spec.name}: no conds.pt in the checkpoint; turns must name or send a voice")
        self.capabilities = self._capabilities(self._languages())

    @property
    def loaded(self) -> LoadedModel:
        if self._loaded is None:
            raise RuntimeError("chatterbox engine used before load()")
        return self._loaded

    @property
    def _device(self):
        return self.loaded.tts.s3gen.device

    # ----- execution ---------------------------------------------------------------------------
    @property
    def batches(self) -> bool:
        """Whether requests run in one continuous batch (`batching.py`): on unless `--batching off`;
        Turbo's GPT-2 T3 has no batched runner, so Turbo always runs one phrase per worker."""
        return self.settings.batching and not self.spec.turbo

    def _batching_note(self) -> str:
        if self.spec.turbo:
            return "off: Turbo runs one phrase per worker (the batched T3 runner covers the Llama T3 only)"
        if not self.settings.batching:
            return "off (--batching off): one phrase per worker"
        return ("on: every session's phrases share one decode step per device; a seed reproduces a phrase "
                "whatever shares its batch, but draws differently from --batching off")

    def create_executor(self, workers: int) -> Executor:
        if not self.batches:
            return super().create_executor(workers)
        from stream.engines.chatterbox.batched_t3 import T3Batch
        from stream.engines.chatterbox.batching import BatchingExecutor

        t3 = self.loaded.tts.t3
        rows = self.settings.batch_rows or (32 if self._device.type == "cuda" else 4)
        runner = T3Batch(t3, rows=rows, max_positions=BATCH_POSITIONS, device=self._device,
                         dtype=t3.speech_emb.weight.dtype)
        return BatchingExecutor(self, runner, ScheduleConfig(row_budget=rows))

    def default_voice(self) -> Voice:
        if self._default is None:
            raise VoiceNotFound("voice: this Chatterbox checkpoint has no built-in voice (conds.pt); "
                                "name a stored voice or send voice.reference_audio")
        return self._default

    def has_default_voice(self) -> bool:
        return self._default is not None

    @property
    def builtin_voices(self) -> list[BuiltinVoice]:
        """The checkpoint's own voice (its `conds.pt`), when it ships one."""
        if self._default is None:
            return []
        return [BuiltinVoice(id=self._default.id, name=self._default.name,
                             description=f"the voice shipped with the {self.spec.name} checkpoint (conds.pt)")]

    # ----- voices ------------------------------------------------------------------------------
    def prepare_voice(self, audio: np.ndarray, sample_rate: int, voice_id: str, name: str) -> Voice:
        if self.spec.turbo and len(audio) < TURBO_MIN_REFERENCE_S * sample_rate:
            raise BadAudio(f"reference_audio: {self.spec.name} needs more than {TURBO_MIN_REFERENCE_S:.0f} s "
                           f"of reference audio (got {len(audio) / sample_rate:.1f} s)")
        assert self._cache is not None, "load() first"
        conditioning, _ = self._cache.get_or_prepare(audio_digest(audio, sample_rate),
                                                     lambda: self._prepare(audio, sample_rate))
        return Voice(id=voice_id, name=name, conditioning=conditioning)

    def _prepare(self, audio: np.ndarray, sample_rate: int) -> cond_mod.VoiceConditioning:
        self.preparations += 1
        return cond_mod.prepare(self.loaded.tts, audio, sample_rate, loudness_normalize=self.spec.turbo)

    # ----- synthesis ---------------------------------------------------------------------------
    def _text_tokens(self, text: str, language: str | None):
        import torch.nn.functional as F

        tts = self.loaded.tts
        module = importlib.import_module(self.spec.module)
        text = module.punc_norm(text)
        if self.spec.turbo:
            return tts.tokenizer(text, return_tensors="pt").input_ids.to(self._device)
        if self.spec.multilingual:
            tokens = tts.tokenizer.text_to_tokens(text, language_id=(language or "en").lower())
        else:
            tokens = tts.tokenizer.text_to_tokens(text)
        hp = tts.t3.hp
        tokens = F.pad(tokens.to(self._device), (1, 0), value=hp.start_text_token)
        return F.pad(tokens, (0, 1), value=hp.stop_text_token)

    def _check_language(self, language: str | None) -> None:
        if language is None:
            return
        if language.lower() not in self.capabilities.languages:
            raise Unsupported(f"generation.language: {language!r} is not supported by {self.name} "
                              f"(supported: {', '.join(self.capabilities.languages)})")

    def _generators(self, seed: int | None):
        """Separate token and acoustic generators, so decoding never shifts the token draws."""
        import torch

        device = self._device
        tokens, acoustic = torch.Generator(device=device), torch.Generator(device=device)
        if seed is None:
            tokens.seed()
            acoustic.seed()
        else:
            tokens.manual_seed(seed)
            acoustic.manual_seed((seed * 0x9E3779B97F4A7C15 + 1) % 2**63)
        return tokens, acoustic

    def generation(self, settings: GenerationSettings) -> GenerationSettings:
        """The request's settings, with the variant's package defaults for the fields it left unset."""
        unset = {k: v for k, v in self.spec.generation_defaults if k not in settings.model_fields_set}
        return settings.model_copy(update=unset) if unset else settings

    def speech_tokens(self, request: SynthesisRequest, cancel: threading.Event,
                      generator=None, max_new_tokens: int | None = None, text_tokens=None) -> Iterator[int]:
        """The phrase's T3 speech tokens as they are sampled (EOS excluded).

        `text_tokens` lets a caller that already tokenized the phrase (to size its budget) pass them in.
        """
        gen = self.generation(request.generation)
        self._check_language(gen.language)
        conditioning: cond_mod.VoiceConditioning = request.voice.conditioning
        t3 = self.loaded.tts.t3
        if text_tokens is None:
            text_tokens = self._text_tokens(request.text, gen.language)
        cap = max_new_tokens or self.tuning.max_new_tokens or token_cap(text_tokens.shape[-1])
        if generator is None:
            generator, _ = self._generators(gen.seed)
        params = SamplingParams(temperature=gen.temperature, cfg_weight=gen.cfg_weight, min_p=gen.min_p,
                                top_p=gen.top_p, repetition_penalty=gen.repetition_penalty, max_new_tokens=cap)
        prefix = cond_mod.with_emotion(t3, conditioning.t3_prefix, gen.exaggeration)
        if self.spec.turbo:
            loop = turbo_tokens_static if self.tuning.static_decode else turbo_tokens
            return loop(t3, prefix, text_tokens, params, generator, cancel)
        if self.tuning.static_decode:
            return llama_tokens_static(t3, prefix, text_tokens, params, generator, cancel,
                                       voice_kv=cond_mod.voice_kv(t3, conditioning), sampler=self.settings.sampler)
        return llama_tokens(t3, prefix, text_tokens, params, generator, cancel)

    def phrase_decoder(self, voice: Voice, generation: GenerationSettings, generator, max_tokens: int) -> PhraseDecoder:
        s3gen = self.loaded.tts.s3gen
        steps = self.tuning.cfm_steps or (2 if self.spec.turbo else 10)
        return PhraseDecoder(s3gen, voice.conditioning.gen, generator=generator, max_tokens=max_tokens,
                             cfm_steps=steps, meanflow=self.spec.turbo, context_tokens=self.tuning.context_tokens,
                             overlap_frames=self.tuning.overlap_frames, speed=generation.speed,
                             silence_tail=self.spec.turbo)

    def synthesize(self, request: SynthesisRequest, cancel: threading.Event) -> Iterator[np.ndarray]:
        return self._stream(request, cancel, self.tuning.max_new_tokens)

    def _stream(self, request: SynthesisRequest, cancel: threading.Event, budget: int | None) -> Iterator[np.ndarray]:
        gen = request.generation
        self._check_language(gen.language)
        token_gen, acoustic_gen = self._generators(gen.seed)
        text_tokens = self._text_tokens(request.text, gen.language)
        cap = budget or token_cap(text_tokens.shape[-1])
        tokens = self.speech_tokens(request, cancel, generator=token_gen, max_new_tokens=cap, text_tokens=text_tokens)
        decoder = self.phrase_decoder(request.voice, gen, acoustic_gen, cap)
        stage = self.watermark_stage if self.watermark else None
        phrase = object()                   # this phrase's key in the watermark stage
        marked: deque[Future] = deque()     # chunks at the watermark stage, in order
        first = True                        # no marked audio emitted yet
        sizes = self.tuning.chunk_sizes(request.first_in_context)
        want = next(sizes)
        try:
            for token in tokens:
                decoder.add(token)
                # Later chunks are marked while this thread decodes on; emit those finished (no waiting).
                while marked and marked[0].done():
                    if (audio := marked.popleft().result()).size:
                        yield audio
                if decoder.ready_tokens() >= want:
                    if cancel.is_set():
                        return
                    want = next(sizes)
                    audio = decoder.flush()
                    if stage is not None:
                        marked.append(stage.submit(phrase, audio, final=False))
                        if first:       # the first chunk is the phrase's latency: wait for it
                            if (audio := marked.popleft().result()).size:
                                first = False
                                yield audio
                    elif audio.size:
                        yield audio
            if cancel.is_set():
                return
            audio = decoder.flush(final=True)
            if stage is None:
                if audio.size:
                    yield audio
                return
            marked.append(stage.submit(phrase, audio, final=True))
            phrase = None                   # the final chunk drops the stage's state
            while marked:
                if (audio := marked.popleft().result()).size:
                    yield audio
        finally:
            if stage is not None and phrase is not None:
                stage.discard(phrase)

    @property
    def watermark_stage(self) -> WatermarkStage:
        """The engine's ordered CPU watermark stage (created on first use; the batching executor shares it)."""
        with self._stage_lock:
            if self._watermark_stage is None:
                self._watermark_stage = WatermarkStage(self.loaded.tts.watermarker, SAMPLE_RATE)
            return self._watermark_stage

    def warmup(self) -> None:
        """One short phrase through every stage (T3, flow, vocoder, watermark) with a small token budget."""
        if self._default is None:
            self._progress(f"{self.spec.name}: warmup skipped (no built-in voice)")
            return
        request = SynthesisRequest(text="Warming up.", voice=self._default,
                                   generation=GenerationSettings(seed=0), first_in_context=True)
        for _ in self._stream(request, threading.Event(), budget=self.tuning.first_chunk_tokens + 8):
            pass
