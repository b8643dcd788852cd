"""The Python client reads every server message through the shared typed models: each message type
becomes its event, a newer server's extra fields and message types are skipped, and a malformed
frame is a clear `ProtocolError` that ends the session instead of a KeyError in a background task.

Frames are built with the server's own models and serializer (`dump_message`); the scripted peer is
a real websocket server on a loopback port, driving a real `VoicewireClient`."""

from __future__ import annotations

import asyncio
import base64

import numpy as np
import pytest

from clients.client import (
    AudioEvent,
    CancelledEvent,
    DoneEvent,
    ErrorEvent,
    PhraseEvent,
    ProtocolError,
    ServerError,
    VoicewireClient,
    read_frame,
    to_event,
)
from stream.audio.codecs import decode_samples
from stream.core.server_messages import (
    AudioMessage,
    CancelledMessage,
    DoneMessage,
    ErrorMessage,
    PhraseMessage,
    Usage,
    dump_message,
)
from tests.scripted_peer import on_first_message, ready, scripted_server, with_extra_field

PCM = (np.sin(np.linspace(0, 40, 480)) * 12_000).astype("<i2").tobytes()
READY = ready(24000)
TURN = [  # one context's messages, in the order a server sends them
    PhraseMessage(context_id="c", index=0, text="Hello there.", start_ms=0.0),
    AudioMessage(context_id="c", seq=0, audio=base64.b64encode(PCM).decode(), start_ms=0.0, duration_ms=20.0),
    DoneMessage(context_id="c", ttfa_ms=81.5, audio_ms=20.0, characters=12, phrases=1,
                usage=Usage(characters=12, remaining_credits=88)),
]


@pytest.mark.parametrize("message", [
    READY, *TURN,
    DoneMessage(context_id="c", ttfa_ms=None, audio_ms=0.0, characters=0, phrases=0),
    CancelledMessage(context_id="c", audio_ms=20.0, text_spoken="Hello there.", text_remaining=" Bye."),
    ErrorMessage(code="invalid_message", message="text: must be a string", context_id="c"),
    ErrorMessage(code="unauthorized", message="bad key", fatal=True),
])
def test_every_server_message_reads_back_as_sent_even_with_an_unknown_field(message):
    frame = dump_message(message)
    assert read_frame(frame) == message
    assert read_frame(with_extra_field(frame)) == message
    assert read_frame(frame.encode()) == message  # binary frames too


def test_each_message_becomes_its_event():
    phrase, audio, done = (to_event(m, 5.0) for m in TURN)
    assert phrase == PhraseEvent("c", 0, "Hello there.", 0.0, 5.0)
    assert isinstance(audio, AudioEvent) and audio.data == PCM and (audio.seq, audio.duration_ms) == (0, 20.0)
    assert done == DoneEvent("c", 81.5, 20.0, 12, 1, {"characters": 12, "remaining_credits": 88}, 5.0)
    cancelled = CancelledMessage(context_id="c", audio_ms=1.0, text_spoken="a", text_remaining="b")
    assert to_event(cancelled, 5.0) == CancelledEvent("c", 1.0, "a", "b", 5.0)
    assert to_event(ErrorMessage(code="x", message="y"), 5.0) == ErrorEvent("x", "y", None, False, 5.0)


def test_a_newer_servers_message_type_is_skipped():
    assert read_frame('{"type": "word_timestamps", "context_id": "c", "words": []}') is None


@pytest.mark.parametrize(("frame", "named"), [
    ("{not json", "Invalid JSON"),
    ('{"context_id": "c"}', "discriminator 'type'"),
    ('{"type": "audio", "context_id": "c", "audio": "", "start_ms": 0, "duration_ms": 0}',
     "audio.seq: Field required"),
    ('{"type": "done", "context_id": "c", "ttfa_ms": 1, "audio_ms": "long", "characters": 1, "phrases": 1}',
     "done.audio_ms"),
    ("[1, 2]", "frame"),
])
def test_a_malformed_frame_is_a_protocol_error_naming_the_problem(frame, named):
    with pytest.raises(ProtocolError) as caught:
        read_frame(frame)
    assert caught.value.code == "bad_server_message" and named in str(caught.value)
    assert caught.value.event.fatal
    assert isinstance(caught.value, ServerError)  # callers' `except ServerError` still catch it


async def test_the_client_reads_a_whole_turn_and_skips_what_a_newer_server_adds():
    frames = [with_extra_field(dump_message(m)) for m in TURN[:2]]
    frames.insert(1, '{"type": "word_timestamps", "context_id": "c", "words": []}')
    frames.append(dump_message(TURN[2]))
    async with (scripted_server(on_first_message(frames)) as peer,
                await VoicewireClient.connect(peer.url) as client):
        assert client.ready_message == READY
        assert client.ready["engine"] == "piper"
        assert client.output_format == {"encoding": "pcm_s16le", "sample_rate": 24000, "channels": 1}
        result = await client.speak(["Hello there."], context_id="c")
    assert [type(e) for e in result.events] == [PhraseEvent, AudioEvent, DoneEvent]
    assert np.array_equal(result.samples(), decode_samples(PCM, "pcm_s16le"))
    assert result.final.usage == {"characters": 12, "remaining_credits": 88}


async def test_a_malformed_frame_mid_turn_ends_the_session_with_a_clear_error():
    bad_audio = dump_message(TURN[1]).replace(TURN[1].audio, "%%%")
    script = on_first_message([dump_message(TURN[0]), bad_audio])
    async with scripted_server(script) as peer, await VoicewireClient.connect(peer.url) as client:
        with pytest.raises(ServerError) as caught:
            await client.speak(["Hello there."], context_id="c")
        assert caught.value.code == "bad_server_message" and "not base64" in str(caught.value)
        assert (await asyncio.wait_for(client.session_errors.get(), 5)).code == "bad_server_message"
        assert await asyncio.wait_for(peer.closed, 5) == 1002  # it ends a session it can no longer follow


async def test_a_session_that_does_not_open_with_ready_is_refused():
    async with scripted_server(on_first_message([]), first=dump_message(TURN[0])) as peer:
        with pytest.raises(ProtocolError, match="opened with 'phrase', not 'ready'"):
            await VoicewireClient.connect(peer.url)
    refusal = dump_message(ErrorMessage(code="unauthorized", message="missing API key", fatal=True))
    async with scripted_server(on_first_message([]), first=refusal) as peer:
        with pytest.raises(ServerError) as caught:
            await VoicewireClient.connect(peer.url)
    assert caught.value.code == "unauthorized" and not isinstance(caught.value, ProtocolError)
