"""The jitter buffer's logic, and playback through a real PortAudio stream on an ALSA null device."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from clients.playback import JitterBuffer

RATE = 1000  # 1 sample per ms keeps the arithmetic readable

NULL_ASOUNDRC = """pcm.!default {
    type null
}
ctl.!default {
    type hw
    card 0
}
"""


def null_alsa_home(root: Path) -> Path:
    """A HOME whose ~/.asoundrc makes ALSA's default output a null device (no sound card needed)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / ".asoundrc").write_text(NULL_ASOUNDRC)
    return root


def ramp(start: int, n: int) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.float32)


def test_holds_playback_until_the_cushion_is_queued():
    buf = JitterBuffer(RATE, prebuffer_ms=100)
    buf.push(ramp(1, 60))
    assert not buf.read(20).any() and buf.played_samples == 0
    buf.push(ramp(61, 60))
    assert np.array_equal(buf.read(20), ramp(1, 20))
    assert buf.buffered_ms == 100 and buf.underruns == 0


def test_blocks_cross_chunk_boundaries_in_order():
    buf = JitterBuffer(RATE, prebuffer_ms=0)
    for start in range(1, 100, 7):
        buf.push(ramp(start, 7))
    buf.end()
    out = np.concatenate([buf.read(10) for _ in range(11)])
    assert np.array_equal(out[:105], ramp(1, 105)) and not out[105:].any()
    assert buf.drained and buf.played_ms == 105 and buf.underruns == 0


def test_starving_counts_an_underrun_and_rebuilds_the_cushion():
    buf = JitterBuffer(RATE, prebuffer_ms=50)
    buf.push(ramp(1, 60))
    buf.read(40)
    tail = buf.read(40)  # only 20 left: the device starves mid-turn
    assert np.array_equal(tail[:20], ramp(41, 20)) and not tail[20:].any()
    assert buf.underruns == 1
    buf.push(ramp(61, 30))
    assert not buf.read(10).any()  # 30 ms < 50 ms cushion: wait again
    buf.push(ramp(91, 30))
    assert np.array_equal(buf.read(10), ramp(61, 10))
    assert buf.underruns == 1


def test_end_plays_a_short_tail_without_counting_an_underrun():
    buf = JitterBuffer(RATE, prebuffer_ms=200)
    buf.push(ramp(1, 30))
    assert not buf.read(10).any()
    buf.end()
    assert not buf.drained
    out = buf.read(50)
    assert np.array_equal(out[:30], ramp(1, 30)) and buf.drained and buf.underruns == 0


def test_clear_drops_queued_audio_for_barge_in():
    buf = JitterBuffer(RATE, prebuffer_ms=0)
    buf.push(ramp(1, 500))
    buf.read(100)
    buf.clear()
    assert buf.buffered_ms == 0 and buf.played_ms == 0 and not buf.read(10).any()
    buf.push(ramp(1000, 10))
    assert np.array_equal(buf.read(10), ramp(1000, 10))


def test_concurrent_producer_and_device_thread_lose_nothing():
    buf = JitterBuffer(RATE, prebuffer_ms=20)
    total = 20000

    def produce() -> None:
        for start in range(0, total, 37):
            buf.push(ramp(start, min(37, total - start)))
        buf.end()

    producer = threading.Thread(target=produce)
    producer.start()
    out = []
    while not buf.drained:
        block = buf.read(64)
        out.append(block)
    producer.join()
    played = np.concatenate(out)
    assert buf.played_samples == total
    assert np.array_equal(played[played > 0], ramp(1, total - 1))  # order kept; silence only between


@pytest.fixture
def null_output_device(tmp_path, monkeypatch):
    """Point PortAudio (through ALSA) at a null device; skip only if PortAudio itself is missing."""
    monkeypatch.setenv("HOME", str(null_alsa_home(tmp_path / "home")))
    try:
        import sounddevice
    except OSError as exc:
        pytest.skip(f"PortAudio is not installed (Debian: libportaudio2): {exc}")
    sounddevice._terminate()
    sounddevice._initialize()  # rescan devices with the new ALSA config
    yield sounddevice
    monkeypatch.undo()
    sounddevice._terminate()
    sounddevice._initialize()


async def test_speaker_output_plays_through_a_real_portaudio_stream(null_output_device):
    from clients.playback import SpeakerOutput

    assert null_output_device.query_devices(kind="output")["max_output_channels"] >= 1
    tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(24000) / 48000)).astype(np.float32)
    with SpeakerOutput(48000, prebuffer_ms=50) as output:
        for chunk in np.array_split(tone, 12):
            output.buffer.push(chunk)
        output.buffer.end()
        await output.drained()
        assert output.stream.active
    assert output.callbacks > 0
    assert output.buffer.played_ms == pytest.approx(500, abs=0.1)
