"""Property-based fuzz of the message parser: whatever a client sends, the answer is one protocol
error (that serializes to a valid frame) or a typed message that round-trips."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.core.errors import ERROR_CODES, InvalidJson, InvalidMessage, OutOfRange, ProtocolError
from stream.core.protocol import CLIENT_TYPES, parse_client_message
from stream.core.server_messages import dump_message

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | \
    st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) |
                           st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)
field_names = st.sampled_from(["type", "context_id", "text", "voice", "generation", "output_format", "encoding",
                               "sample_rate", "exaggeration", "temperature", "seed", "reference_audio"]) | \
    st.text(max_size=12)
generation = st.fixed_dictionaries({}, optional={
    "exaggeration": st.floats(-1, 3), "temperature": st.floats(-1, 3), "cfg_weight": st.floats(-1, 3),
    "min_p": st.floats(-0.5, 1.5), "top_p": st.floats(-0.5, 1.5), "repetition_penalty": st.floats(0, 3),
    "seed": st.integers(-5, 2**64), "speed": st.floats(0, 5), "language": st.text(max_size=10)})
context_ids = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=128) | \
    st.text(max_size=130)
messages = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "context_id": context_ids, "text": st.text(max_size=200)},
                          optional={"voice": st.text(max_size=130) | json_values, "generation": generation}),
    st.fixed_dictionaries({"type": st.sampled_from(["flush", "end", "cancel"]), "context_id": context_ids}),
    st.fixed_dictionaries({"type": st.just("init")}, optional={
        "output_format": st.fixed_dictionaries({}, optional={
            "encoding": st.sampled_from(["pcm_s16le", "pcm_f32le", "mulaw", "alaw", "mp3"]),
            "sample_rate": st.sampled_from([8000, 16000, 22050, 24000, 44100, 48000, 12345, 0])}),
        "generation": generation}),
    st.fixed_dictionaries({"type": st.sampled_from(list(CLIENT_TYPES) + ["ready", "x"])},
                          optional={"extra": json_values}),
    st.dictionaries(field_names, json_values, max_size=6),
)


def check_answer(frame: str | bytes) -> None:
    try:
        msg = parse_client_message(frame)
    except ProtocolError as err:
        assert type(err) in (InvalidJson, InvalidMessage, OutOfRange)
        assert ERROR_CODES[err.code] is type(err) and not err.fatal and err.message
        wire = json.loads(dump_message(err.to_wire()))  # the error itself is always a valid frame
        assert wire["code"] == err.code
        return
    again = parse_client_message(json.dumps(msg.model_dump(exclude_none=True)))
    assert again == msg


@FUZZ
@given(st.text(max_size=300))
def test_any_text_frame(frame: str):
    check_answer(frame)


@FUZZ
@given(st.binary(max_size=300))
def test_any_binary_frame(frame: bytes):
    check_answer(frame)


@FUZZ
@given(json_values)
def test_any_json_value(value):
    check_answer(json.dumps(value))


@FUZZ
@given(messages)
def test_message_shaped_objects(value: dict):
    check_answer(json.dumps(value))


@FUZZ
@given(messages, st.integers(min_value=0, max_value=400), st.binary(min_size=1, max_size=3))
def test_corrupted_frames(value: dict, position: int, garbage: bytes):
    """A valid-looking frame with bytes spliced in (decoded leniently, as a text frame must be)."""
    raw = json.dumps(value).encode()
    position = min(position, len(raw))
    check_answer((raw[:position] + garbage + raw[position:]).decode("utf-8", "replace"))
