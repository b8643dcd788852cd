"""Audio files for HTTP responses (WAV, FLAC, MP3, Ogg Opus, raw PCM), written as the audio arrives.

The engine's float32 audio goes through the websocket's streaming resampler (`audio.OutputEncoder`)
to the response's sample rate, then into the container. FLAC, MP3 (LAME) and Opus are encoded by
libsndfile (the `soundfile` wheels bundle it). A streamed response cannot seek back, so a streamed
WAV carries the "unknown length" sizes 0xFFFFFFFF in its header (as OpenAI's does; decoders read
to the end). FLAC is never streamed: a FLAC stream of unknown length is valid, but libsndfile (and
so `soundfile.read`, the usual Python reader) cannot read one, so FLAC is always a complete file.
A complete file is written to memory with exact headers.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
import soundfile

from stream.audio.codecs import OutputEncoder


@dataclass(frozen=True)
class AudioFormat:
    name: str
    media_type: str
    sample_rates: tuple[int, ...] | None = None    # rates the codec accepts; None = any
    libsndfile: tuple[str, str] | None = None      # (format, subtype) when libsndfile encodes it
    streams: bool = True                           # can be sent while it is being written


FORMATS: dict[str, AudioFormat] = {
    f.name: f for f in (
        AudioFormat("wav", "audio/wav", libsndfile=("WAV", "PCM_16")),
        AudioFormat("pcm", "audio/pcm"),
        AudioFormat("flac", "audio/flac", libsndfile=("FLAC", "PCM_16"), streams=False),
        AudioFormat("mp3", "audio/mpeg", (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000),
                    ("MP3", "MPEG_LAYER_III")),
        AudioFormat("opus", "audio/ogg", (8000, 12000, 16000, 24000, 48000), ("OGG", "OPUS")),
    )
}
# Media types a client may name in `Accept`, mapped to a format.
MEDIA_TYPES: dict[str, str] = {
    "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/vnd.wave": "wav",
    "audio/pcm": "pcm", "audio/l16": "pcm",
    "audio/flac": "flac", "audio/x-flac": "flac",
    "audio/mpeg": "mp3", "audio/mp3": "mp3",
    "audio/ogg": "opus", "audio/opus": "opus",
}
# Per-format encoder options: LAME's default VBR is thin for speech; constant ~80 kbit/s at 24 kHz is not.
_LIBSNDFILE_OPTIONS: dict[str, dict] = {"mp3": {"bitrate_mode": "CONSTANT", "compression_level": 0.5}}
# libsndfile's Ogg writer fills ~1 s pages by default; a streamed Opus response wants small ones.
# soundfile has no wrapper for this sf_command, so it is issued through soundfile's own cffi handle.
_SFC_SET_OGG_PAGE_LATENCY_MS = 0x1302
OGG_PAGE_LATENCY_MS = 60.0


def output_rate(fmt: AudioFormat, wanted: int) -> int:
    """`wanted` if the codec takes it, else the nearest higher rate it does (else its highest)."""
    if fmt.sample_rates is None or wanted in fmt.sample_rates:
        return wanted
    return next((r for r in fmt.sample_rates if r >= wanted), fmt.sample_rates[-1])


class _ForwardSink:
    """A write-only file for libsndfile whose bytes leave as soon as they are written.

    libsndfile seeks back at close to patch headers; bytes already sent cannot change, so those
    rewrites are dropped (the formats streamed this way stay valid without them).
    """

    def __init__(self) -> None:
        self._pending = bytearray()
        self._sent = 0       # file offset where `_pending` starts
        self._pos = 0
        self._end = 0

    def write(self, data: bytes) -> int:
        data = bytes(data)
        size = len(data)
        if self._pos < self._sent:  # a header patch into bytes already sent
            skip = min(size, self._sent - self._pos)
            data, self._pos = data[skip:], self._pos + skip
        offset = self._pos - self._sent
        self._pending[offset:offset + len(data)] = data
        self._pos += len(data)
        self._end = max(self._end, self._pos)
        return size

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._end}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:
        return b""

    def take(self) -> bytes:
        out = bytes(self._pending)
        self._sent += len(out)
        self._pending.clear()
        return out


def _wav_stream_header(sample_rate: int) -> bytes:
    unknown = 0xFFFFFFFF
    fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate * 2, 2, 16)
    return b"RIFF" + struct.pack("<I", unknown) + b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt \
        + b"data" + struct.pack("<I", unknown)


class FileEncoder:
    """One response's audio: `write` engine-rate float32 chunks, get container bytes back; then `close`.

    `streaming=False` returns everything from `close` as one complete file with exact headers.
    """

    def __init__(self, fmt: AudioFormat, source_rate: int, sample_rate: int, streaming: bool = True) -> None:
        streaming = streaming and fmt.streams
        self.format = fmt
        self.sample_rate = sample_rate
        self.streaming = streaming
        self.samples = 0
        self._raw = fmt.name == "pcm" or (fmt.name == "wav" and streaming)
        self._resampler = OutputEncoder(source_rate, sample_rate, "pcm_s16le" if self._raw else "pcm_f32le")
        self._header = _wav_stream_header(sample_rate) if fmt.name == "wav" and streaming else b""
        self._memory: io.BytesIO | None = None
        self._sink: _ForwardSink | None = None
        self._file: soundfile.SoundFile | None = None
        if not self._raw:
            assert fmt.libsndfile is not None
            container, subtype = fmt.libsndfile
            target = self._sink = _ForwardSink() if streaming else None
            if target is None:
                target = self._memory = io.BytesIO()
            self._file = soundfile.SoundFile(target, "w", samplerate=sample_rate, channels=1, format=container,
                                             subtype=subtype, **_LIBSNDFILE_OPTIONS.get(fmt.name, {}))
            if container == "OGG" and streaming:
                latency = soundfile._ffi.new("double*", OGG_PAGE_LATENCY_MS)
                soundfile._snd.sf_command(self._file._file, _SFC_SET_OGG_PAGE_LATENCY_MS, latency,
                                          soundfile._ffi.sizeof("double"))

    def write(self, samples: np.ndarray) -> bytes:
        return self._encode(samples, last=False)

    def close(self) -> bytes:
        out = self._encode(np.zeros(0, dtype=np.float32), last=True)
        if self._file is not None:
            self._file.close()
            if self._memory is not None:
                return self._memory.getvalue()
        return out + self._take()

    def _encode(self, samples: np.ndarray, last: bool) -> bytes:
        data, count = self._resampler.encode(samples, last=last)
        self.samples += count
        if self._raw:
            head, self._header = self._header, b""
            return head + data if count or head else b""
        assert self._file is not None
        if count:
            self._file.write(np.frombuffer(data, dtype="<f4"))
        return self._take()

    def _take(self) -> bytes:
        return self._sink.take() if self._sink is not None else b""
