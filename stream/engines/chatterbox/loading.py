"""Finding, checking and loading Chatterbox checkpoints (hub or a local `from_local` folder).

Loading goes through the package's own `from_local` / `from_pretrained`, so a checkpoint that
works with `chatterbox-tts` works here. Before that we check the folder ourselves, because the
package fails on a missing file with a bare `FileNotFoundError` deep inside safetensors.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stream.engines.base import EngineLoadError
from stream.settings import Settings

log = logging.getLogger("voicewire.chatterbox")


@dataclass(frozen=True)
class VariantSpec:
    """What differs between the package's three model families, as far as loading and sampling go."""

    name: str
    module: str
    class_name: str
    repo_id: str
    required_files: tuple[str, ...]
    turbo: bool = False            # GPT-2 T3, no CFG/min_p/exaggeration, meanflow S3Gen
    multilingual: bool = False     # `language` reaches the tokenizer
    # Sampling defaults of the package's own `generate()` where they differ from the protocol's
    # (which are the original model's); applied to fields a request leaves unset.
    generation_defaults: tuple[tuple[str, float], ...] = ()


VARIANTS: dict[str, VariantSpec] = {
    "chatterbox": VariantSpec(
        "chatterbox", "chatterbox.tts", "ChatterboxTTS", "ResembleAI/chatterbox",
        ("ve.safetensors", "t3_cfg.safetensors", "s3gen.safetensors", "tokenizer.json"),
    ),
    "chatterbox-turbo": VariantSpec(
        "chatterbox-turbo", "chatterbox.tts_turbo", "ChatterboxTurboTTS", "ResembleAI/chatterbox-turbo",
        ("ve.safetensors", "t3_turbo_v1.safetensors", "s3gen_meanflow.safetensors"),
        turbo=True, generation_defaults=(("top_p", 0.95),),
    ),
    "chatterbox-multilingual": VariantSpec(
        "chatterbox-multilingual", "chatterbox.mtl_tts", "ChatterboxMultilingualTTS", "ResembleAI/chatterbox",
        ("ve.pt", "t3_mtl23ls_v2.safetensors", "s3gen.pt", "grapheme_mtl_merged_expanded_v1.json"),
        multilingual=True,
    ),
}
BUILTIN_VOICE_FILE = "conds.pt"


def variant_spec(name: str) -> VariantSpec:
    try:
        return VARIANTS[name]
    except KeyError:
        raise EngineLoadError(f"engine: unknown Chatterbox variant {name!r}; choose one of {', '.join(VARIANTS)}") from None


def cast_t3(t3: Any, dtype: Any) -> None:
    """Cast T3's weights to `dtype` but keep its RoPE frequency tables in float32.

    `Module.to(dtype)` casts every floating buffer, including `inv_freq`: in bfloat16 the rotary
    angle (position x frequency) is off by ~0.3 rad at position 300 and over 1 rad at 1 200, so
    long phrases would attend to the wrong positions. The tables are tiny; only the weights matter.
    """
    import torch

    tables = {name: buf.detach().clone() for name, buf in t3.named_buffers() if name.endswith("inv_freq")}
    t3.to(dtype=dtype)
    for name, table in tables.items():
        owner, _, attr = name.rpartition(".")
        setattr(t3.get_submodule(owner), attr, table.to(torch.float32))


def cast_s3gen(s3gen: Any, dtype: Any) -> None:
    """Cast S3Gen's flow encoder (with its projection) and CFM estimator to `dtype`, norms kept float32.

    Those two hold nearly all of a flush's FLOPs; `decoding` runs them under autocast, so matmuls and
    convs take the 16-bit weights while norms, softmax and the residual stream stay float32 (like the
    RoPE tables in `cast_t3`). The token embedding, the speaker projection, the flow's inputs and
    outputs, HiFT and its STFT stay float32: the vocoder's phase suffers most from an 8-bit mantissa.
    """
    import torch

    flow = s3gen.flow
    for module in (flow.encoder, flow.encoder_proj, flow.decoder.estimator):
        module.to(dtype=dtype)
        for norm in module.modules():
            if isinstance(norm, torch.nn.LayerNorm | torch.nn.GroupNorm):
                norm.float()


def enable_tf32(device: str) -> None:
    """TensorFloat-32 for float32 matmuls and convolutions on CUDA (Ampere and later); a no-op elsewhere."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def check_model_dir(model_dir: str | Path, spec: VariantSpec) -> Path:
    """Return the folder if it holds every file the variant needs, else raise naming what is missing."""
    path = Path(model_dir).expanduser()
    if not path.is_dir():
        raise EngineLoadError(f"--model-dir: {path} is not a folder (expected the {spec.name} `from_local` layout: "
                              f"{', '.join(spec.required_files)})")
    missing = [f for f in spec.required_files if not (path / f).is_file()]
    empty = [f for f in spec.required_files if (path / f).is_file() and (path / f).stat().st_size == 0]
    if missing or empty:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if empty:
            parts.append(f"empty {', '.join(empty)}")
        raise EngineLoadError(f"--model-dir: {path} is incomplete for {spec.name}: {'; '.join(parts)} "
                              f"(needs {', '.join(spec.required_files)}; {BUILTIN_VOICE_FILE} is optional)")
    return path


def weights_available(settings: Settings, variant: str = "chatterbox") -> tuple[bool, str]:
    """Whether weights can be loaded without a download; never touches the network."""
    spec = variant_spec(variant)
    if settings.model_dir:
        try:
            path = check_model_dir(settings.model_dir, spec)
        except EngineLoadError as exc:
            return False, str(exc)
        return True, f"model folder {path}"
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False, "huggingface_hub is not installed"
    missing = [f for f in spec.required_files if not isinstance(try_to_load_from_cache(spec.repo_id, f), str)]
    if missing:
        return False, f"{spec.repo_id} is not in the local Hugging Face cache (missing {', '.join(missing)}); pass --model-dir"
    return True, f"{spec.repo_id} in the local Hugging Face cache"


def model_identity(spec: VariantSpec, files: list[Path]) -> str:
    """A short stable id of the loaded weights, used to key cached voice conditioning.

    Hashing whole multi-GB files at start would cost seconds, so each file contributes its name,
    size and the first and last MiB of content, which changes whenever the weights do.
    """
    digest = hashlib.sha256(spec.name.encode())
    for f in sorted(files):
        size = f.stat().st_size
        digest.update(f"{f.name}:{size}".encode())
        with f.open("rb") as fh:
            digest.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(-(1 << 20), 2)
                digest.update(fh.read(1 << 20))
    return digest.hexdigest()[:16]


class _Heartbeat:
    """Logs 'still loading' with the elapsed time while a monolithic package call runs."""

    def __init__(self, what: str, report: Callable[[str], None], every_s: float = 5.0) -> None:
        self._what, self._report, self._every = what, report, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="voicewire-load-progress", daemon=True)
        self._start = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._report(f"{self._what}: still loading ({time.monotonic() - self._start:.0f} s)")

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def _multilingual_offline_tolerant(spec: VariantSpec, model_dir: str | None,
                                   report: Callable[[str], None]):
    """Let the multilingual tokenizer's side downloads fail fast and softly.

    `MTLTokenizer` builds a Chinese converter that fetches Cangjie5_TC.json with `hf_hub_download`
    (about 25 s of retries on an offline machine) and starts spacy-pkuseg, which downloads its model
    from GitHub and raises anything but ImportError straight through `from_local`, so an offline
    machine could not load the multilingual model at all. With --model-dir the hub is put in offline
    mode for the call (a Cangjie table already in the folder's hub-cache layout is still found), and
    a segmenter that cannot start leaves Chinese unsegmented, as the package does without pkuseg.
    """
    if not spec.multilingual:
        yield
        return
    import huggingface_hub.constants as hub_constants

    from chatterbox.models.tokenizers import tokenizer as tok_mod

    converter = tok_mod.ChineseCangjieConverter
    original = converter._init_segmenter

    def tolerant(self) -> None:
        try:
            original(self)
        except Exception as exc:  # noqa: BLE001 - any failure of an optional Chinese segmenter
            self.segmenter = None
            report(f"{spec.name}: Chinese word segmentation unavailable (spacy-pkuseg: {type(exc).__name__}); "
                   f"Chinese text is tokenized unsegmented")

    offline = hub_constants.HF_HUB_OFFLINE
    converter._init_segmenter = tolerant
    if model_dir:
        hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        converter._init_segmenter = original
        hub_constants.HF_HUB_OFFLINE = offline


@dataclass
class LoadedModel:
    tts: Any                  # the package's ChatterboxTTS / ChatterboxTurboTTS / ChatterboxMultilingualTTS
    source: str               # folder or hub repo it came from
    identity: str
    seconds: float


def load_model(spec: VariantSpec, model_dir: str | None, device: str,
               report: Callable[[str], None] = log.info) -> LoadedModel:
    """Load a variant through the package, reporting progress, with errors that name the cause."""
    try:
        cls = getattr(importlib.import_module(spec.module), spec.class_name)
    except ImportError as exc:
        raise EngineLoadError(f"the {spec.name} engine needs the 'chatterbox' extra: "
                              f"pip install 'voicewire[chatterbox]' ({exc})") from exc
    start = time.monotonic()
    if model_dir:
        path = check_model_dir(model_dir, spec)
        files = [path / f for f in spec.required_files]
        size_gb = sum(f.stat().st_size for f in files) / 1e9
        report(f"{spec.name}: loading {size_gb:.2f} GB of weights from {path} onto {device}")
        try:
            with _Heartbeat(spec.name, report), _multilingual_offline_tolerant(spec, model_dir, report):
                tts = cls.from_local(path, device)
        except Exception as exc:
            raise EngineLoadError(f"--model-dir: loading {spec.name} from {path} failed: "
                                  f"{type(exc).__name__}: {exc} (are the files complete and from this variant?)") from exc
        source = str(path)
    else:
        report(f"{spec.name}: fetching {spec.repo_id} from the Hugging Face hub (or its local cache) onto {device}")
        try:
            with _Heartbeat(spec.name, report), _multilingual_offline_tolerant(spec, None, report):
                tts = cls.from_pretrained(device)
        except Exception as exc:
            raise EngineLoadError(f"{spec.name}: could not get {spec.repo_id} from the Hugging Face hub "
                                  f"({type(exc).__name__}: {exc}); if this machine is offline, download the files "
                                  f"elsewhere and pass --model-dir") from exc
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(spec.repo_id, spec.required_files[0])
        path = Path(cached).parent if isinstance(cached, str) else None
        files = [path / f for f in spec.required_files] if path else []
        source = spec.repo_id
    seconds = time.monotonic() - start
    report(f"{spec.name}: loaded from {source} in {seconds:.1f} s")
    identity = model_identity(spec, files) if files else hashlib.sha256(spec.repo_id.encode()).hexdigest()[:16]
    return LoadedModel(tts=tts, source=source, identity=identity, seconds=seconds)
