"""Output audio: encodings round-trip, streaming resampling keeps length and continuity, joins fade."""

import numpy as np
import pytest

from stream.audio.codecs import (
    BYTES_PER_SAMPLE,
    TRIM_MAX_S,
    TRIM_PREROLL_S,
    TRIM_WINDOW_S,
    OutputEncoder,
    PhraseShaper,
    decode_samples,
    encode_samples,
    first_sound,
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
    shaper = PhraseShaper(RATE, trim_leading_silence=False)
    x = np.ones(3000, dtype=np.float32)
    out = np.concatenate([shaper.push(x[:1000]), shaper.push(x[1000:]), shaper.finish(0.1)])
    assert out.size == 3000 + int(0.1 * RATE)
    assert out[0] == 0.0 and out[2999] == 0.0          # faded in and out
    assert np.all(out[200:2800] == 1.0)               # the middle is untouched
    assert np.all(out[3000:] == 0.0)                  # the pause is silence


WINDOW = round(TRIM_WINDOW_S * RATE)  # the trim finds a sound to within one window


def quiet_then_tone(silence_s: float, tone_s: float = 0.3) -> np.ndarray:
    """An engine's phrase: near-silence (-90 dBFS noise, as Piper's) and then a sound."""
    noise = np.random.default_rng(0).normal(0, 10 ** (-90 / 20), int(silence_s * RATE)).astype(np.float32)
    return np.concatenate([noise, tone(tone_s)])


def shaped(shaper: PhraseShaper, phrase: np.ndarray, pieces: int = 1, pause: float = 0.0) -> np.ndarray:
    parts = [shaper.push(p) for p in np.array_split(phrase, pieces)]
    return np.concatenate([*parts, shaper.finish(pause)])


@pytest.mark.parametrize("pieces", [1, 3, 40])
def test_first_phrase_starts_at_its_sound_with_a_click_free_fade(pieces):
    phrase = quiet_then_tone(0.060)
    out = shaped(PhraseShaper(RATE), phrase, pieces)
    dropped = phrase.size - out.size
    assert 0 <= int(0.060 * RATE) - int(TRIM_PREROLL_S * RATE) - dropped <= WINDOW  # only silence went
    assert out[0] == 0.0
    assert np.max(np.abs(np.diff(out[:500]))) <= 2 * np.pi * 440 / RATE * 0.5 * 1.05  # no step: no click
    assert first_sound(out, RATE) <= int(TRIM_PREROLL_S * RATE) + WINDOW


def test_only_the_contexts_first_phrase_is_trimmed():
    shaper = PhraseShaper(RATE)
    first = shaped(shaper, quiet_then_tone(0.050), pause=0.1)
    second = shaped(shaper, quiet_then_tone(0.050))
    assert first.size < quiet_then_tone(0.050).size + int(0.1 * RATE)
    assert second.size == quiet_then_tone(0.050).size  # later joins keep the engine's own breath


def test_trim_never_drops_more_than_its_cap():
    out = shaped(PhraseShaper(RATE), quiet_then_tone(1.0))
    assert out.size == quiet_then_tone(1.0).size - int(TRIM_MAX_S * RATE)


def test_a_silent_first_phrase_sends_nothing_and_the_next_one_is_trimmed():
    shaper = PhraseShaper(RATE)
    assert shaped(shaper, quiet_then_tone(0.1, tone_s=0.0), pause=0.12).size == 0
    dropped = quiet_then_tone(0.05).size - shaped(shaper, quiet_then_tone(0.05)).size
    assert 0 <= int(0.05 * RATE) - int(TRIM_PREROLL_S * RATE) - dropped <= WINDOW


@pytest.mark.parametrize(("text", "pause"), [
    ("Hello there.", 0.12), ("Really?\" ", 0.12), ("First,", 0.04), ("and then", 0.0), ("   ", 0.0),
])
def test_pause_after(text, pause):
    assert pause_after(text) == pause
