"""Hostile reference clips and clip URLs: each refused with its documented code, quickly, without
decoding what it claims to hold (the reference-clip rules every surface shares: websocket inline
voices, POST /v1/voices, the one-shot HTTP endpoints)."""

from __future__ import annotations

import base64
import io
import struct
import time

import numpy as np
import pytest
import soundfile as sf

from stream.audio.reference import decode_base64, decode_clip
from stream.core.errors import BadAudio, ReferenceUrlRefused
from stream.settings import Limits, Settings
from stream.voices.url_fetch import ClipFetcher

LIMITS = Limits()


def wav(seconds: float, rate: int = 24000, amplitude: float = 0.3, channels: int = 1, subtype: str = "PCM_16") -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    tone = (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, np.stack([tone] * channels, axis=1) if channels > 1 else tone, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


def riff_claiming(frames_bytes: int, rate: int = 8000, real: bytes = b"\x00\x01" * 100) -> bytes:
    """A WAV header whose data chunk claims `frames_bytes` bytes, followed by a few real ones."""
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, rate, rate * 2, 2, 16)
    return b"RIFF" + struct.pack("<I", 0xFFFFFFF0) + b"WAVE" + fmt + b"data" + struct.pack("<I", frames_bytes) + real


GOOD = wav(2.0)
CLIPS: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "empty (0 bytes)"),
    "garbage": (bytes(range(256)) * 8, "unreadable audio"),
    "text": (b"hello, I am not audio at all" * 10, "unreadable audio"),
    "truncated-header": (GOOD[:20], "unreadable audio"),
    "header-only": (GOOD[:44], "decodes to no samples"),
    "truncated-data": (GOOD[:44 + 2000], "shorter than"),
    # libsndfile sizes a clip by the bytes present, not the header's claim: nothing huge is allocated.
    "hours-long-claim": (riff_claiming(0xFFFFFFF0), "shorter than"),
    "hours-long-8khz-claim": (riff_claiming(8000 * 2 * 3600 * 2), "shorter than"),
    "hours-long-real": (wav(2 * 3600.0, rate=1000, subtype="PCM_U8"), "7200.0 s is longer than"),
    "zip-bomb-header": (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\xff" * 20 + b"\x00" * 100, "unreadable audio"),
    "gzip-header": (b"\x1f\x8b\x08\x00" + b"\x00" * 200, "unreadable audio"),
    "too-short": (wav(0.2), "shorter than"),
    "too-long": (wav(61.0, rate=8000), "longer than"),
    "silent": (wav(2.0, amplitude=0.0), "silent"),
    "nan-samples": (wav(2.0, amplitude=float("nan"), subtype="FLOAT"), "NaN"),
    "over-byte-limit": (b"\x00" * (LIMITS.max_reference_bytes + 1), "over the"),
    "riff-no-wave": (b"RIFF\x10\x00\x00\x00JUNK" + b"\x00" * 100, "unreadable audio"),
    "mp3-garbage-frames": (b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb" * 200, "unreadable audio"),
    "flac-magic-only": (b"fLaC" + b"\x00" * 60, "unreadable audio"),
    "ogg-magic-only": (b"OggS" + b"\x00" * 60, "unreadable audio"),
}


@pytest.mark.parametrize("name", CLIPS)
def test_hostile_clip_is_bad_audio(name: str):
    data, fragment = CLIPS[name]
    started = time.monotonic()
    with pytest.raises(BadAudio) as refused:
        decode_clip(data, LIMITS)
    assert fragment in refused.value.message
    assert refused.value.http_status == 415 and refused.value.code == "bad_audio"
    assert time.monotonic() - started < 2.0  # refused from what the header says, not after decoding it


def test_a_good_clip_passes_the_same_rules():
    assert decode_clip(GOOD, LIMITS).seconds == pytest.approx(2.0)
    assert decode_clip(decode_base64("data:audio/wav;base64," + base64.b64encode(GOOD).decode()), LIMITS).seconds > 1


@pytest.mark.parametrize("text", ["this is not base64 !!!", "data:audio/wav,plain", "data:audio/wav;base64,@@@",
                                  "QUJD=garbage", "\u0000\u0001", "===="])
def test_bad_base64_is_bad_audio(text: str):
    with pytest.raises(BadAudio):
        decode_base64(text)


INTERNAL_URLS = [
    "http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:8765/healthz", "http://localhost/",
    "http://[::1]/", "http://10.0.0.1/clip.wav", "http://192.168.1.1/clip.wav", "http://172.16.0.1/",
    "http://100.64.0.1/", "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/", "http://2130706433/",
    "http://0x7f000001/", "http://127.1/", "http://[fe80::1]/", "http://224.0.0.1/",
    "file:///etc/passwd", "gopher://127.0.0.1:25/", "ftp://example.com/clip.wav", "http://user:pw@example.com/",
    "http://example.com:0/", "javascript:alert(1)", "http:///nohost", "not a url", "",
]


@pytest.mark.parametrize("url", INTERNAL_URLS)
async def test_fetching_internal_or_odd_urls_is_refused(url: str, tmp_path):
    fetcher = ClipFetcher(Settings(data_dir=str(tmp_path), allow_private_urls=False))
    with pytest.raises(ReferenceUrlRefused) as refused:
        await fetcher.fetch(url)
    assert refused.value.http_status == 422 and refused.value.message.startswith("reference_audio:")
