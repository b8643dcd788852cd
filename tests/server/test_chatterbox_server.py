"""One websocket turn end to end on the Chatterbox engine (random weights, real server)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("chatterbox", reason="the chatterbox extra is not installed (pip install 'voicewire[chatterbox]')")

from stream.audio.codecs import decode_samples  # noqa: E402
from stream.settings import Settings  # noqa: E402
from tests.chatterbox_checkpoint import shared_engine, speechlike_clip  # noqa: E402
from tests.conftest import start_server  # noqa: E402
from tests.wire import RawPeer  # noqa: E402

pytestmark = pytest.mark.chatterbox


@pytest.fixture
def server(tmp_path, tmp_path_factory):
    handle = start_server(shared_engine(tmp_path_factory), Settings(port=0, data_dir=str(tmp_path)))
    yield handle
    handle.stop()


async def test_turn_with_inline_voice_streams_token_chunks(server):
    buf = io.BytesIO()
    sf.write(buf, speechlike_clip(2.0, seed=60), 24_000, format="WAV")
    clip = "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode()
    peer, ready = await RawPeer.open(server.ws_url)
    assert ready["engine"] == "chatterbox"
    assert ready["capabilities"]["streaming"] == "token" and ready["capabilities"]["watermark"] is True
    assert ready["capabilities"]["voice_cloning"] is True
    text = "Sure, I can help with that."
    await peer.send({"type": "text", "context_id": "t1", "text": text, "voice": {"reference_audio": clip},
                     "generation": {"seed": 3, "exaggeration": 1.2, "cfg_weight": 0.4}})
    await peer.send({"type": "end", "context_id": "t1"})
    done, seen = await peer.until("done", "t1", timeout=240)
    audio = [m for m in seen if m["type"] == "audio"]
    assert len(audio) >= 2                                 # chunks inside the phrase, not one per phrase
    assert [m["seq"] for m in audio] == list(range(len(audio)))
    samples = np.concatenate([decode_samples(base64.b64decode(m["audio"]), "pcm_s16le") for m in audio])
    assert samples.size / 24_000 * 1000 == pytest.approx(done["audio_ms"], abs=1)
    assert done["ttfa_ms"] > 0 and np.abs(samples).max() > 0
    assert "".join(m["text"] for m in seen if m["type"] == "phrase") == text
    await peer.close()
