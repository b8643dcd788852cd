"""Decoding and validating reference clips with a real decoder."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import soundfile as sf

from stream.audio.reference import decode_base64, decode_clip
from stream.core.errors import BadAudio
from stream.settings import Limits

LIMITS = Limits(max_reference_bytes=2_000_000, max_reference_seconds=5.0, min_reference_seconds=1.0)


def tone(seconds: float, sr: int = 24_000, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    mono = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return mono if channels == 1 else np.stack([mono] * channels, axis=1)


def encode(audio: np.ndarray, sr: int = 24_000, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


@pytest.mark.parametrize("fmt, subtype", [("WAV", "PCM_16"), ("FLAC", None), ("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III")])
def test_common_formats_decode_to_mono_float(fmt, subtype):
    clip = decode_clip(encode(tone(2.0), 24_000, fmt, subtype), LIMITS)
    assert clip.format == fmt and clip.sample_rate == 24_000
    assert clip.audio.dtype == np.float32 and clip.audio.ndim == 1
    assert clip.seconds == pytest.approx(2.0, abs=0.1)
    assert 0.2 < np.abs(clip.audio).max() < 0.4


def test_stereo_is_mixed_down():
    clip = decode_clip(encode(tone(1.5, channels=2)), LIMITS)
    assert clip.audio.ndim == 1 and clip.seconds == pytest.approx(1.5)


@pytest.mark.parametrize("data, rule", [
    (b"", "empty"),
    (b"RIFF....WAVEfmt garbage" * 10, "unreadable audio"),
    (encode(tone(0.4)), "shorter than the 1 s minimum"),
    (encode(tone(6.0)), "longer than the 5 s limit"),
    (encode(np.zeros(48_000, dtype=np.float32)), "silent"),
    (b"\0" * 2_000_001, "over the 2000000-byte limit"),
])
def test_each_bad_clip_names_its_rule(data, rule):
    with pytest.raises(BadAudio, match=rule) as err:
        decode_clip(data, LIMITS, "file")
    assert err.value.message.startswith("file:") and err.value.code == "bad_audio"


def test_base64_and_data_uri():
    raw = encode(tone(1.2))
    plain = base64.b64encode(raw).decode()
    assert decode_base64(plain) == raw
    assert decode_base64(f"data:audio/wav;base64,{plain}") == raw
    with pytest.raises(BadAudio, match="not valid base64"):
        decode_base64("not base64!!")
    with pytest.raises(BadAudio, match="must be base64"):
        decode_base64("data:audio/wav,RIFF")
