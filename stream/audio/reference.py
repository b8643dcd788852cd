"""Decoding and validating reference clips (uploads, inline `voice.reference_audio`).

Clips are decoded with libsndfile (WAV, FLAC, OGG/Vorbis/Opus, MP3), mixed down to mono float32
and checked against the reference limits, so every way a clip can be unusable becomes one
`bad_audio` error that says which rule it broke.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from stream.core.errors import BadAudio
from stream.core.limits import Limits

SILENCE_PEAK = 1e-4   # a clip whose loudest sample is below this carries no voice


@dataclass(frozen=True)
class ReferenceClip:
    audio: np.ndarray          # mono float32 in [-1, 1]
    sample_rate: int
    format: str                # container as libsndfile names it (WAV, FLAC, OGG, MP3)

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate


def decode_base64(data: str, field: str = "reference_audio") -> bytes:
    """Bytes of a base64 string or a `data:<mime>;base64,` URI."""
    text = data.strip()
    if text.startswith("data:"):
        header, sep, payload = text.partition(",")
        if not sep or ";base64" not in header:
            raise BadAudio(f"{field}: a data: URI must be base64 encoded (data:audio/wav;base64,...)")
        text = payload
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadAudio(f"{field}: not valid base64") from None


def decode_clip(data: bytes, limits: Limits, field: str = "reference_audio") -> ReferenceClip:
    """Decode and validate a reference clip, or raise `BadAudio` naming the broken rule."""
    if not data:
        raise BadAudio(f"{field}: empty (0 bytes)")
    if len(data) > limits.max_reference_bytes:
        raise BadAudio(f"{field}: {len(data)} bytes is over the {limits.max_reference_bytes}-byte limit")
    try:
        with sf.SoundFile(io.BytesIO(data)) as fh:
            fmt = fh.format
            sample_rate = fh.samplerate
            frames = fh.frames
            if frames > 0 and frames / sample_rate > limits.max_reference_seconds:
                raise BadAudio(f"{field}: {frames / sample_rate:.1f} s is longer than the "
                               f"{limits.max_reference_seconds:g} s limit")
            audio = fh.read(dtype="float32", always_2d=True)
    except BadAudio:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise BadAudio(f"{field}: unreadable audio (expected WAV, FLAC, OGG or MP3): {exc}") from None
    mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    seconds = len(mono) / sample_rate
    if len(mono) == 0:
        raise BadAudio(f"{field}: the file decodes to no samples")
    if seconds > limits.max_reference_seconds:
        raise BadAudio(f"{field}: {seconds:.1f} s is longer than the {limits.max_reference_seconds:g} s limit")
    if seconds < limits.min_reference_seconds:
        raise BadAudio(f"{field}: {seconds:.2f} s is shorter than the {limits.min_reference_seconds:g} s minimum")
    if not np.isfinite(mono).all():
        raise BadAudio(f"{field}: contains NaN or infinite samples")
    if float(np.abs(mono).max()) < SILENCE_PEAK:
        raise BadAudio(f"{field}: the clip is silent")
    return ReferenceClip(mono, int(sample_rate), fmt)


def audio_digest(audio: np.ndarray, sample_rate: int) -> str:
    """Content hash of a decoded clip: equal samples at an equal rate give an equal digest."""
    digest = hashlib.sha256(f"{sample_rate}:".encode())
    digest.update(np.ascontiguousarray(audio, dtype=np.float32).tobytes())
    return digest.hexdigest()
