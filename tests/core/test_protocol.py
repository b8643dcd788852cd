"""Wire message parsing: every malformed frame becomes one error naming the field and the rule."""

import json
from pathlib import Path

import pytest

import stream.server.app  # noqa: F401  (imports every module that could define an error)
from stream.core.errors import ERROR_CODES, InvalidJson, InvalidMessage, OutOfRange, ProtocolError
from stream.core.protocol import (
    CancelMessage,
    GenerationSettings,
    InitMessage,
    InlineVoice,
    KeepaliveMessage,
    TextMessage,
    parse_client_message,
)


def parse(obj) -> object:
    return parse_client_message(json.dumps(obj))


def test_text_message_with_first_use_settings():
    msg = parse({"type": "text", "context_id": "c1", "text": " Hello", "voice": "joe",
                 "generation": {"exaggeration": 1.5, "seed": 7}})
    assert isinstance(msg, TextMessage)
    assert msg.text == " Hello" and msg.voice == "joe"
    assert msg.generation == GenerationSettings(exaggeration=1.5, seed=7)


def test_inline_voice_and_init_defaults():
    msg = parse({"type": "init", "voice": {"reference_audio": "data:audio/wav;base64,AAAA"},
                 "output_format": {"encoding": "mulaw", "sample_rate": 8000}})
    assert isinstance(msg, InitMessage)
    assert isinstance(msg.voice, InlineVoice)
    assert msg.output_format.encoding == "mulaw" and msg.output_format.sample_rate == 8000


def test_simple_messages():
    assert isinstance(parse({"type": "keepalive"}), KeepaliveMessage)
    assert isinstance(parse({"type": "cancel", "context_id": "x"}), CancelMessage)


def test_generation_defaults_match_the_hosted_api():
    g = GenerationSettings()
    assert (g.exaggeration, g.temperature, g.cfg_weight, g.min_p, g.top_p, g.repetition_penalty, g.seed) == (
        0.5, 0.8, 0.5, 0.05, 1.0, 1.2, None)


@pytest.mark.parametrize(("field", "value"), [
    ("exaggeration", 2.01), ("exaggeration", -0.1), ("temperature", 2.5), ("cfg_weight", -1),
    ("min_p", 1.5), ("top_p", -0.01), ("repetition_penalty", 0.99), ("repetition_penalty", 2.1), ("seed", -1),
])
def test_out_of_range_names_field_and_limit(field, value):
    with pytest.raises(OutOfRange) as err:
        parse({"type": "text", "context_id": "c", "text": "x", "generation": {field: value}})
    assert f"generation.{field}" in err.value.message
    assert err.value.context_id == "c"


@pytest.mark.parametrize(("frame", "fragment"), [
    ({"type": "text", "text": "hi"}, "context_id: field required"),
    ({"type": "text", "context_id": "c"}, "text: field required"),
    ({"type": "text", "context_id": "c", "text": 5}, "text:"),
    ({"type": "text", "context_id": "", "text": "x"}, "context_id:"),
    ({"type": "text", "context_id": "a b", "text": "x"}, "context_id:"),
    ({"type": "text", "context_id": "c", "text": "x", "colour": 1}, "colour: unknown field"),
    ({"type": "text", "context_id": "c", "text": "x", "generation": {"exageration": 1}},
     "generation.exageration: unknown field"),
    ({"type": "text", "context_id": "c", "text": "x", "generation": {"seed": 1.5}}, "generation.seed"),
    ({"type": "init", "output_format": {"encoding": "mp3"}}, "output_format.encoding"),
    ({"type": "init", "output_format": {"sample_rate": 11025}}, "output_format.sample_rate"),
    ({"type": "speak"}, "type: must be one of"),
    ({"type": 3}, "type: must be one of"),
    ({"context_id": "c"}, "type: field required"),
    ({"type": "flush"}, "context_id: field required"),
])
def test_invalid_messages_name_the_field(frame, fragment):
    with pytest.raises(InvalidMessage) as err:
        parse(frame)
    assert fragment in err.value.message


@pytest.mark.parametrize("frame", ["", "{", "not json", '{"type": "text",}', "\ud800"])
def test_invalid_json(frame):
    with pytest.raises((InvalidJson, InvalidMessage)):
        parse_client_message(frame)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(constant):
    with pytest.raises(InvalidJson) as err:
        parse_client_message(f'{{"type":"text","context_id":"c","text":"x","generation":{{"temperature":{constant}}}}}')
    assert constant in err.value.message


@pytest.mark.parametrize("frame", ["[]", "3", '"text"', "null"])
def test_non_object_json(frame):
    with pytest.raises(InvalidMessage) as err:
        parse_client_message(frame)
    assert "must be a JSON object" in err.value.message


def test_binary_frames_and_deep_nesting_are_refused():
    with pytest.raises(InvalidMessage):
        parse_client_message(b'{"type":"keepalive"}')
    nested = '{"type":"keepalive","x":' + "[" * 5000 + "]" * 5000 + "}"
    with pytest.raises((InvalidMessage, InvalidJson)):
        parse_client_message(nested)


def test_every_error_code_is_one_class_in_stream_errors_and_documented():
    def subclasses(cls: type[ProtocolError]) -> list[type[ProtocolError]]:
        return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]

    defined = [c for c in subclasses(ProtocolError) if c.__module__.startswith("stream.")]
    assert {c.__module__ for c in defined} == {"stream.core.errors"}
    assert {c.code: c for c in defined} == ERROR_CODES
    limits = (Path(__file__).parents[2] / "docs" / "limits.md").read_text()
    assert [code for code in ERROR_CODES if f"| `{code}` |" not in limits] == []
