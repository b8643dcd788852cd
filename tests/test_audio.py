"""Output audio: encodings round-trip, streaming resampling keeps length and continuity, joins fade."""

import numpy as np
import pytest

from stream.audio.codecs import (
    BYTES_PER_SAMPLE,
    OutputEncoder,
    PhraseShaper,
    decode_samples,
    encode_samples,
    pause_after,
)

RATE = 22050


def tone(seconds: float, rate: int = RATE, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("encoding", ["pcm_s16le", "pcm_f32le", "mulaw", "alaw"])
def test_encodings_round_trip(encoding):
    x = tone(0.1)
    data = encode_samples(x, encoding)
    assert len(data) == x.size * BYTES_PER_SAMPLE[encoding]
    y = decode_samples(data, encoding)
    tolerance = {"pcm_s16le": 1e-4, "pcm_f32le": 1e-7, "mulaw": 0.02, "alaw": 0.02}[encoding]
    assert np.max(np.abs(x - y)) < tolerance


def test_encoding_clips_out_of_range_samples():
    y = decode_samples(encode_samples(np.array([2.0, -3.0], dtype=np.float32), "pcm_s16le"), "pcm_s16le")
    assert y[0] == pytest.approx(32767 / 32768) and y[1] == pytest.approx(-32767 / 32768)


@pytest.mark.parametrize("target", [8000, 16000, 22050, 24000, 44100, 48000])
def test_streaming_resampler_keeps_duration_across_chunks(target):
    x = tone(1.0)
    enc = OutputEncoder(RATE, target, "pcm_f32le")
    out, total = [], 0
    pieces = np.array_split(x, [1000, 1001, 5000, 12000])
    for i, piece in enumerate(pieces):
        data, n = enc.encode(piece, last=i == len(pieces) - 1)
        out.append(decode_samples(data, "pcm_f32le"))
        total += n
    y = np.concatenate(out)
    assert total == y.size
    assert abs(y.size - target) <= 2  # one second in, one second out
    if target >= 16000:  # a 440 Hz tone stays smooth at chunk joins: no jump beyond the signal's slope
        max_step = 2 * np.pi * 440 / target * 0.5 * 1.05
        assert np.max(np.abs(np.diff(y[200:-200]))) < max_step


def test_shaper_fades_phrase_edges_and_keeps_every_sample():
    shaper = PhraseShaper(RATE)
    x = np.ones(3000, dtype=np.float32)
    out = np.concatenate([shaper.push(x[:1000]), shaper.push(x[1000:]), shaper.finish(0.1)])
    assert out.size == 3000 + int(0.1 * RATE)
    assert out[0] == 0.0 and out[2999] == 0.0          # faded in and out
    assert np.all(out[200:2800] == 1.0)               # the middle is untouched
    assert np.all(out[3000:] == 0.0)                  # the pause is silence


@pytest.mark.parametrize(("text", "pause"), [
    ("Hello there.", 0.12), ("Really?\" ", 0.12), ("First,", 0.04), ("and then", 0.0), ("   ", 0.0),
])
def test_pause_after(text, pause):
    assert pause_after(text) == pause
