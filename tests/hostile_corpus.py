"""The hostile-input corpus: malformed, hostile and out-of-order inputs with the answer each must get.

`WS_CASES` are websocket text/binary frames (a setup sequence, then the hostile frame) answered by an
`error` frame; `RAW_CASES` break the websocket layer itself (handshake, framing, UTF-8) and are
answered by an HTTP status or a close code. Every expectation here is what docs/limits.md documents.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import struct
import zlib
from dataclasses import dataclass, field

Frame = str | bytes


@dataclass(frozen=True)
class WsCase:
    """`frames` are sent in order; exactly the last one is hostile and gets one `error` with `code`."""

    id: str
    frames: tuple[Frame, ...]
    code: str
    fragment: str = ""                  # must appear in the error message (names the field or rule)
    fatal: bool = False
    cleanup: tuple[Frame, ...] = ()     # sent after the error so the session can speak a normal turn
    limits: dict = field(default_factory=dict)  # server Limits overrides this case needs


def j(obj: object) -> str:
    return json.dumps(obj)


def text(cid: str = "c", body: str = "Hello.", **extra: object) -> str:
    return j({"type": "text", "context_id": cid, "text": body, **extra})


def op(kind: str, cid: str = "c") -> str:
    return j({"type": kind, "context_id": cid})


def gen(**fields: object) -> str:
    return text(generation=fields)


def _nested(depth: int) -> dict:
    node: dict = {}
    for _ in range(depth):
        node = {"a": node}
    return node


# -- frames that are not JSON -------------------------------------------------------------------
NOT_JSON = ["", " ", "\n", "{", "}", "{not json", "{'type': 'keepalive'}", '{"type":"keepalive",}',
            '{"type":"keepalive"}x', '{"type":"keepalive"}{"type":"keepalive"}', "tru", "nul", "undefined",
            '{"type":"text","context_id":"c","text":"unterminated}', '{"type":"text" "context_id":"c"}',
            "\ufeff" + '{"type":"keepalive"}', "\x00", "\x00" * 64, "[" * 100_000, '{"a":' * 100_000,
            '{"type":"keepalive"} // comment', "0x10", "+1", ".5", '"\\x41"',
            '{"type":"text","context_id":"c","text":"\\u12"}', '{"type":"text","context_id":"c","text":"\t"}',
            '{"type":"text","context_id":"c","text":"x","generation":{"seed":' + "9" * 5000 + "}}"]
NON_FINITE = ["NaN", "Infinity", "-Infinity"]

WS_CASES: list[WsCase] = []
WS_CASES += [WsCase(f"not-json-{i}", (frame,), "invalid_json", "invalid JSON") for i, frame in enumerate(NOT_JSON)]
WS_CASES += [WsCase(f"non-finite-{name}", (f'{{"type":"text","context_id":"c","text":"x","generation":'
                                           f'{{"top_p":{name}}}}}',), "invalid_json", name)
             for name in NON_FINITE]
WS_CASES += [WsCase(f"non-finite-seed-{name}", (f'{{"type":"text","context_id":"c","text":"x","generation":'
                                                f'{{"seed":{name}}}}}',), "invalid_json", name)
             for name in NON_FINITE]

# -- JSON, but not an object, or an object without a usable type --------------------------------
WS_CASES += [WsCase(f"not-object-{i}", (frame,), "invalid_message", "JSON object")
             for i, frame in enumerate(["null", "true", "false", "0", "-1", "1e308", '"text"', "[]", '["text"]',
                                        '[{"type":"keepalive"}]', '"' + "x" * 10_000 + '"'])]
BAD_TYPES: list[object] = [None, 1, 1.5, True, [], ["text"], {}, {"type": "text"}, "", "TEXT", "Text", "text ",
                           " text", "text\x00", "ready", "audio", "done", "error", "cancelled", "phrase", "sing",
                           "x" * 10_000, "\u202etxet", "texte"]
WS_CASES += [WsCase(f"bad-type-{i}", (j({"type": t, "context_id": "c", "text": "x"}),), "invalid_message",
                    "type:")
             for i, t in enumerate(BAD_TYPES)]
WS_CASES += [WsCase("missing-type", (j({"context_id": "c", "text": "x"}),), "invalid_message",
                    "type: field required")]

# -- missing and unknown fields -----------------------------------------------------------------
WS_CASES += [
    WsCase("text-no-context", (j({"type": "text", "text": "x"}),), "invalid_message", "context_id: field required"),
    WsCase("text-no-text", (j({"type": "text", "context_id": "c"}),), "invalid_message", "text: field required"),
    WsCase("flush-no-context", (j({"type": "flush"}),), "invalid_message", "context_id: field required"),
    WsCase("end-no-context", (j({"type": "end"}),), "invalid_message", "context_id: field required"),
    WsCase("cancel-no-context", (j({"type": "cancel"}),), "invalid_message", "context_id: field required"),
    WsCase("unknown-top-field", (text(extra_field=1),), "invalid_message", "extra_field: unknown field"),
    WsCase("keepalive-extra", (j({"type": "keepalive", "context_id": "c"}),), "invalid_message", "unknown field"),
    WsCase("unknown-generation-field", (gen(creativity=1),), "invalid_message", "generation.creativity"),
    WsCase("unknown-output-field", (j({"type": "init", "output_format": {"channels": 2}}),), "invalid_message",
           "output_format.channels"),
    WsCase("unknown-voice-field", (text(voice={"reference_audio": "UklGRg==", "url": "http://x"}),),
           "invalid_message", "voice"),
    WsCase("flush-with-text", (j({"type": "flush", "context_id": "c", "text": "x"}),), "invalid_message",
           "text: unknown field"),
    WsCase("init-with-context", (j({"type": "init", "context_id": "c"}),), "invalid_message", "unknown field"),
    WsCase("dunder-field", (text(__proto__={"polluted": True}),), "invalid_message", "unknown field"),
]

# -- wrong types --------------------------------------------------------------------------------
WRONG_TYPED: list[tuple[str, dict, str]] = [
    ("context-int", {"context_id": 7}, "context_id"),
    ("context-null", {"context_id": None}, "context_id"),
    ("context-list", {"context_id": ["c"]}, "context_id"),
    ("context-bool", {"context_id": True}, "context_id"),
    ("context-object", {"context_id": {"id": "c"}}, "context_id"),
    ("text-int", {"text": 1}, "text"),
    ("text-null", {"text": None}, "text"),
    ("text-list", {"text": ["a", "b"]}, "text"),
    ("text-object", {"text": {"t": "x"}}, "text"),
    ("text-bool", {"text": False}, "text"),
    ("voice-int", {"voice": 7}, "voice"),
    ("voice-list", {"voice": ["joe"]}, "voice"),
    ("voice-bool", {"voice": True}, "voice"),
    ("voice-empty", {"voice": ""}, "voice"),
    ("voice-long", {"voice": "v" * 129}, "voice"),
    ("voice-empty-object", {"voice": {}}, "voice"),
    ("voice-empty-clip", {"voice": {"reference_audio": ""}}, "voice"),
    ("voice-clip-int", {"voice": {"reference_audio": 5}}, "voice"),
    ("generation-string", {"generation": "hot"}, "generation"),
    ("generation-list", {"generation": [0.5]}, "generation"),
    ("generation-int", {"generation": 1}, "generation"),
    ("exaggeration-string", {"generation": {"exaggeration": "0.5"}}, "generation.exaggeration"),
    ("exaggeration-bool", {"generation": {"exaggeration": True}}, "generation.exaggeration"),
    ("exaggeration-null", {"generation": {"exaggeration": None}}, "generation.exaggeration"),
    ("exaggeration-list", {"generation": {"exaggeration": [1]}}, "generation.exaggeration"),
    ("temperature-object", {"generation": {"temperature": {}}}, "generation.temperature"),
    ("seed-float", {"generation": {"seed": 1.5}}, "generation.seed"),
    ("seed-string", {"generation": {"seed": "7"}}, "generation.seed"),
    ("seed-bool", {"generation": {"seed": True}}, "generation.seed"),
    ("language-int", {"generation": {"language": 12}}, "generation.language"),
    ("language-short", {"generation": {"language": "e"}}, "generation.language"),
    ("language-script", {"generation": {"language": "<script>"}}, "generation.language"),
]
for name, fields, fragment in WRONG_TYPED:
    body = {"type": "text", "context_id": "c", "text": "x", **fields}
    WS_CASES.append(WsCase(f"wrong-type-{name}", (j(body),), "invalid_message", fragment))
# A literal that overflows a float parses as infinity, which no field accepts.
WS_CASES.append(WsCase("overflowing-float", ('{"type":"text","context_id":"c","text":"x","generation":{"top_p":1e999}}',),
                       "invalid_message", "generation.top_p: Input should be a finite number"))

BAD_CONTEXT_IDS = ["", "c" * 129, "has space", "tab\there", "new\nline", "nul\x00", "café", "emoji😀", "\u202e",
                   "c" * 100_000]
WS_CASES += [WsCase(f"bad-context-id-{i}", (text(cid),), "invalid_message", "context_id")
             for i, cid in enumerate(BAD_CONTEXT_IDS)]
WS_CASES += [WsCase(f"bad-context-id-end-{i}", (op("end", cid),), "invalid_message", "context_id")
             for i, cid in enumerate(BAD_CONTEXT_IDS[:3])]

BAD_FORMATS: list[tuple[str, object, str]] = [
    ("encoding-mp3", {"encoding": "mp3"}, "output_format.encoding"),
    ("encoding-upper", {"encoding": "PCM_S16LE"}, "output_format.encoding"),
    ("encoding-int", {"encoding": 1}, "output_format.encoding"),
    ("rate-odd", {"sample_rate": 12345}, "output_format.sample_rate"),
    ("rate-zero", {"sample_rate": 0}, "output_format.sample_rate"),
    ("rate-negative", {"sample_rate": -8000}, "output_format.sample_rate"),
    ("rate-string", {"sample_rate": "22050"}, "output_format.sample_rate"),
    ("rate-huge", {"sample_rate": 10**18}, "output_format.sample_rate"),
    ("format-string", "pcm_s16le", "output_format"),
    ("format-list", ["pcm_s16le", 22050], "output_format"),
]
WS_CASES += [WsCase(f"init-{name}", (j({"type": "init", "output_format": fmt}),), "invalid_message", fragment)
             for name, fmt, fragment in BAD_FORMATS]
WS_CASES += [WsCase("init-voice-unknown", (j({"type": "init", "voice": "nobody"}),), "voice_not_found", "nobody"),
             WsCase("init-generation-range", (j({"type": "init", "generation": {"temperature": 9}}),),
                    "out_of_range", "generation.temperature")]

# -- numbers outside their range -----------------------------------------------------------------
RANGES = {"exaggeration": (0, 2), "temperature": (0, 2), "cfg_weight": (0, 2), "min_p": (0, 1), "top_p": (0, 1),
          "repetition_penalty": (1, 2), "speed": (0.25, 4)}
for name, (low, high) in RANGES.items():
    for label, value in (("below", low - 0.001), ("above", high + 0.001), ("huge", 1e308), ("negative-huge", -1e308)):
        WS_CASES.append(WsCase(f"range-{name}-{label}", (gen(**{name: value}),), "out_of_range",
                               f"generation.{name}"))
WS_CASES += [WsCase("range-seed-negative", (gen(seed=-1),), "out_of_range", "generation.seed"),
             WsCase("range-seed-2^63", (gen(seed=2**63),), "out_of_range", "generation.seed"),
             WsCase("range-seed-2^200", (gen(seed=2**200),), "out_of_range", "generation.seed")]

# -- nesting -------------------------------------------------------------------------------------
WS_CASES += [
    WsCase("nested-17", (j({"type": "keepalive", "x": _nested(17)}),), "invalid_message", "nested deeper than"),
    WsCase("nested-generation", (text(generation=_nested(20)),), "invalid_message", "nested deeper than"),
    WsCase("nested-list-500", (j({"type": "keepalive", "x": [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]}),),
           "invalid_message", "nested deeper than"),
    WsCase("nested-shallow-unknown", (j({"type": "keepalive", "x": _nested(3)}),), "invalid_message",
           "unknown field"),
]

# -- binary frames -------------------------------------------------------------------------------
BINARY = [b"", b"\x00", b"\xff\xfe\xfd", os.urandom(64), text().encode(), b'{"type":"keepalive"}',
          bytes(range(256)), b"RIFF\x24\x00\x00\x00WAVEfmt ", b"PK\x03\x04" + b"\x00" * 26]
WS_CASES += [WsCase(f"binary-{i}", (frame,), "invalid_message", "binary frames") for i, frame in enumerate(BINARY)]

# -- order: messages a context's state does not allow ---------------------------------------------
WS_CASES += [
    WsCase("flush-unknown", (op("flush"),), "unknown_context", "'c'"),
    WsCase("end-unknown", (op("end"),), "unknown_context", "'c'"),
    WsCase("cancel-unknown", (op("cancel"),), "unknown_context", "'c'"),
    WsCase("text-after-end", (text(), op("end"), text(body=" more")), "context_closed", "'c'"),
    WsCase("flush-after-end", (text(), op("end"), op("flush")), "context_closed", "'c'"),
    WsCase("end-after-end", (text(), op("end"), op("end")), "context_closed", "'c'"),
    WsCase("text-after-cancel", (text(), op("cancel"), text(body=" more")), "context_closed", "'c'"),
    WsCase("cancel-after-cancel", (text(), op("cancel"), op("cancel")), "context_closed", "'c'"),
    WsCase("end-after-cancel", (text(), op("cancel"), op("end")), "context_closed", "'c'"),
    WsCase("reuse-id-after-cancel", (text(), op("cancel"), text()), "context_closed", "'c'"),
    WsCase("settings-locked-generation", (text(body="Hi"), gen(exaggeration=1)), "settings_locked", "voice/generation",
           cleanup=(op("cancel"),)),
    WsCase("settings-locked-voice", (text(body="Hi"), text(body="x", voice="joe")), "settings_locked",
           "voice/generation", cleanup=(op("cancel"),)),
    WsCase("settings-locked-null-generation", (text(body="Hi"), text(body="x", generation={})), "settings_locked",
           "voice/generation", cleanup=(op("cancel"),)),
    WsCase("too-many-contexts", tuple(text(f"c{i}", "Hi") for i in range(3)) + (text("c3", "Hi"),),
           "too_many_contexts", "at most 3", cleanup=tuple(op("cancel", f"c{i}") for i in range(3)),
           limits={"max_contexts_per_session": 3}),
    WsCase("text-too-long-first", (text(body="x" * 201),), "text_too_long", "at most 200",
           limits={"max_text_chars_per_context": 200}),
    WsCase("text-too-long-later", (text(body="x" * 150), text(body="y" * 51)), "text_too_long", "has 150",
           cleanup=(op("cancel"),), limits={"max_text_chars_per_context": 200}),
    WsCase("rate-limited", tuple(j({"type": "keepalive"}) for _ in range(11)), "rate_limited", "per second",
           limits={"messages_per_second": 5}),
]

# -- voices: unknown names and clips this engine cannot use ----------------------------------------
WAV_HEADER = b"RIFF\xff\xff\xff\xffWAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80\xbb\x00\x00\x00\x77\x01\x00\x02\x00\x10\x00data\xff\xff\xff\xff"
CLIPS = {
    "garbage": base64.b64encode(os.urandom(512)).decode(),
    "not-base64": "this is not base64 !!!",
    "truncated-wav": base64.b64encode(WAV_HEADER[:20]).decode(),
    "zero-length-data": "data:audio/wav;base64,",
    "hours-long-header": base64.b64encode(WAV_HEADER).decode(),
    "zip-bomb-header": base64.b64encode(b"PK\x03\x04" + b"\xff" * 26).decode(),
    "internal-url": "http://169.254.169.254/latest/meta-data/",
    "file-url": "file:///etc/passwd",
}
for name, clip in CLIPS.items():
    # Piper cannot clone: every inline clip is refused before it is decoded or fetched.
    WS_CASES.append(WsCase(f"clip-{name}", (text(voice={"reference_audio": clip}),), "unsupported", "cannot clone"))
    WS_CASES.append(WsCase(f"init-clip-{name}", (j({"type": "init", "voice": {"reference_audio": clip}}),),
                           "unsupported", "cannot clone"))
WS_CASES += [WsCase(f"lone-surrogate-{i}", (j({"type": "text", "context_id": "c", "text": body}),), "invalid_message",
                    "text: Value error, contains an unpaired surrogate")
             for i, body in enumerate(["\ud800", "Broken \udfff surrogate.", "\udc00\ud800"])]
for i, name in enumerate(["nobody", "../../etc/passwd", "joe\x00", "' OR 1=1 --", "%s%s%n", "JOE", "default "]):
    WS_CASES.append(WsCase(f"voice-unknown-{i}", (text(voice=name),), "voice_not_found", "voice"))

# -- frame size (fatal) ----------------------------------------------------------------------------
WS_CASES += [
    WsCase("frame-too-large-text", (text(body="x" * 5000),), "message_too_large", "max_frame_bytes", fatal=True,
           limits={"max_frame_bytes": 4096}),
    WsCase("frame-too-large-binary", (b"\x00" * 5000,), "message_too_large", "max_frame_bytes", fatal=True,
           limits={"max_frame_bytes": 4096}),
    WsCase("frame-too-large-garbage", ("{" * 5000,), "message_too_large", "max_frame_bytes", fatal=True,
           limits={"max_frame_bytes": 4096}),
]


# -- below the protocol: raw bytes on the TCP connection ----------------------------------------------
def client_frame(payload: bytes, opcode: int = 0x1, fin: bool = True, masked: bool = True, rsv: int = 0) -> bytes:
    """One websocket frame as a client would send it (masked), or deliberately broken."""
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    n = len(payload)
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 65536:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def upgrade_request(path: str = "/v1/stream", version: str = "13", extra: str = "") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {version}\r\n{extra}\r\n").encode()


def close_code(stream: bytes) -> int | None:
    """The code of the first close frame in a server-to-client byte stream (server frames are unmasked),
    so a raw case can check how the websocket layer ended it."""
    pos = 0
    while pos + 2 <= len(stream):
        opcode, length = stream[pos] & 0x0F, stream[pos + 1] & 0x7F
        pos += 2
        if length == 126:
            length, pos = int.from_bytes(stream[pos:pos + 2], "big"), pos + 2
        elif length == 127:
            length, pos = int.from_bytes(stream[pos:pos + 8], "big"), pos + 8
        payload, pos = stream[pos:pos + length], pos + length
        if opcode == 0x8:
            return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
    return None


@dataclass(frozen=True)
class RawCase:
    """Bytes on a fresh TCP connection. `after_handshake` cases complete the upgrade first and expect
    the websocket layer to close with `close_code`; the others expect an HTTP `status`."""

    id: str
    data: bytes
    after_handshake: bool = False
    close_code: int = 0
    status: int = 0


RAW_CASES: list[RawCase] = [
    RawCase("invalid-utf8-text", client_frame(b'{"type":"text","text":"\xff\xfe"}'), True, close_code=1007),
    RawCase("invalid-utf8-overlong", client_frame(b"\xc0\xaf"), True, close_code=1007),
    RawCase("invalid-utf8-surrogate", client_frame(b"\xed\xa0\x80"), True, close_code=1007),
    RawCase("invalid-utf8-truncated", client_frame(b'{"type":"keepalive"}\xe2\x82'), True, close_code=1007),
    RawCase("unmasked-frame", client_frame(b'{"type":"keepalive"}', masked=False), True, close_code=1002),
    RawCase("reserved-bits", client_frame(b'{"type":"keepalive"}', rsv=0b111), True, close_code=1002),
    RawCase("reserved-opcode", client_frame(b"x", opcode=0x3), True, close_code=1002),
    RawCase("reserved-control-opcode", client_frame(b"x", opcode=0xB), True, close_code=1002),
    RawCase("orphan-continuation", client_frame(b"x", opcode=0x0), True, close_code=1002),
    RawCase("fragmented-ping", client_frame(b"x", opcode=0x9, fin=False), True, close_code=1002),
    RawCase("oversized-ping", client_frame(b"x" * 200, opcode=0x9), True, close_code=1002),
    RawCase("bad-close-code", client_frame(struct.pack("!H", 999), opcode=0x8), True, close_code=1002),
    RawCase("close-invalid-utf8-reason", client_frame(struct.pack("!H", 1000) + b"\xff", opcode=0x8), True,
            close_code=1007),
    RawCase("text-inside-fragmented-text", client_frame(b"{", fin=False) + client_frame(b"}"), True,
            close_code=1002),
    RawCase("not-http", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64), status=400),
    RawCase("wrong-ws-version", upgrade_request(version="8"), status=400),
    RawCase("no-key", b"GET /v1/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n", status=400),
    RawCase("wrong-path", upgrade_request(path="/v1/streams"), status=403),
    RawCase("path-traversal", upgrade_request(path="/v1/../../etc/passwd"), status=403),
    RawCase("header-line-7k", upgrade_request(extra="X-Big: " + "a" * 7000 + "\r\n"), status=101),
    # Requests the websockets handshake parser gives up on (stream/ws_protocol.py answers them).
    RawCase("header-line-100k", upgrade_request(extra="X-Big: " + "a" * 100_000 + "\r\n"), status=431),
    RawCase("headers-200", upgrade_request(extra="".join(f"X-H{i}: v\r\n" for i in range(200))), status=431),
    RawCase("request-line-10k", upgrade_request(path="/v1/stream?" + "a" * 10_000), status=414),
    RawCase("upgrade-with-body", upgrade_request(extra="Content-Length: 5\r\n") + b"hello", status=400),
    RawCase("upgrade-chunked", upgrade_request(extra="Transfer-Encoding: chunked\r\n") + b"0\r\n\r\n", status=400),
]


# -- legal but odd: spoken (or skipped) normally, every character accounted for --------------------
ODD_TEXTS: dict[str, str] = {
    "control-chars": "Bell\x07 and\x00 null\x1b[31m red.",
    "only-whitespace": " \n\t\r ",
    "only-punctuation": "?!...,;:",
    "emoji-only": "😀🎉🔥",
    "rtl-override": "Hello \u202eworld\u202c again.",
    "zero-width": "Zero\u200bwidth\u200djoiner\ufeff text.",
    "combining": "Cafe\u0301 Zoe\u0308 a\u0300\u0301\u0302\u0303.",
    "long-word": "a" * 400,
    "markup": "<script>alert(1)</script> & [link](javascript:x) {{7*7}} ${jndi:ldap://x}",
    "sql": "Robert'); DROP TABLE voices;--",
    "format-string": "%s %n %x {0} {}",
    "mixed-scripts": "Hello Привет 你好 مرحبا שלום.",
    "many-lines": "line\n" * 20,
}


# -- the HTTP API ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HttpCase:
    """One request; answered with `status` and (when the body is an error body) `code`."""

    id: str
    method: str
    path: str
    body: bytes = b""
    status: int = 422
    code: str | None = None
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)


TTS = "/v1/chatterbox-tts"
SPEECH = "/v1/audio/speech"


GZIP_JSON = (("content-type", "application/json"), ("content-encoding", "gzip"))


def tts(**fields: object) -> bytes:
    return json.dumps({"text": "Hi.", **fields}).encode()


def speech(**fields: object) -> bytes:
    return json.dumps({"model": "tts-1", "input": "Hi.", "voice": "alloy", **fields}).encode()


HTTP_CASES: list[HttpCase] = [
    HttpCase("tts-not-json", "POST", TTS, b"{not json", 400, "invalid_json"),
    HttpCase("tts-empty-body", "POST", TTS, b"", 422, "invalid_message"),
    HttpCase("tts-array", "POST", TTS, b"[]", 422, "invalid_message"),
    HttpCase("tts-null", "POST", TTS, b"null", 422, "invalid_message"),
    HttpCase("tts-string", "POST", TTS, b'"text"', 422, "invalid_message"),
    HttpCase("tts-nan", "POST", TTS, b'{"text":"Hi.","exaggeration":NaN}', 422, "invalid_message"),
    HttpCase("tts-infinity", "POST", TTS, b'{"text":"Hi.","temperature":Infinity}', 422, "invalid_message"),
    HttpCase("tts-overflow", "POST", TTS, b'{"text":"Hi.","top_p":1e999}', 422, "invalid_message"),
    HttpCase("tts-missing-text", "POST", TTS, b'{"exaggeration":1}', 422, "invalid_message"),
    HttpCase("tts-empty-text", "POST", TTS, tts(text=""), 422, "invalid_message"),
    HttpCase("tts-text-int", "POST", TTS, tts(text=5), 422, "invalid_message"),
    HttpCase("tts-text-list", "POST", TTS, tts(text=["a"]), 422, "invalid_message"),
    HttpCase("tts-lone-surrogate", "POST", TTS, b'{"text":"\\ud800"}', 422, "invalid_message"),
    HttpCase("tts-unknown-field", "POST", TTS, tts(bogus=1), 422, "invalid_message"),
    HttpCase("tts-nested-unknown", "POST", TTS, b'{"text":"Hi.","a":' * 40 + b"1" + b"}" * 40, 422, "invalid_message"),
    HttpCase("tts-seed-negative", "POST", TTS, tts(seed=-1), 422, "out_of_range"),
    HttpCase("tts-seed-huge", "POST", TTS, tts(seed=2**64), 422, "out_of_range"),
    HttpCase("tts-seed-float", "POST", TTS, tts(seed=1.5), 422, "invalid_message"),
    HttpCase("tts-format-aac", "POST", TTS, tts(output_format="aac"), 422, "invalid_message"),
    HttpCase("tts-rate-odd", "POST", TTS, tts(sample_rate=12345), 422, "invalid_message"),
    HttpCase("tts-stream-string", "POST", TTS, tts(stream="yes please"), 422, "invalid_message"),
    HttpCase("tts-voice-unknown", "POST", TTS, tts(voice="nobody"), 404, "voice_not_found"),
    HttpCase("tts-voice-long", "POST", TTS, tts(voice="v" * 129), 422, "invalid_message"),
    HttpCase("tts-clip-metadata-url", "POST", TTS, tts(reference_audio="http://169.254.169.254/latest/"), 422,
             "unsupported"),
    HttpCase("tts-clip-file-url", "POST", TTS, tts(reference_audio="file:///etc/passwd"), 422, "unsupported"),
    HttpCase("tts-clip-garbage", "POST", TTS, tts(reference_audio=base64.b64encode(os.urandom(256)).decode()), 422,
             "unsupported"),
    HttpCase("tts-clip-empty", "POST", TTS, tts(reference_audio=""), 422, "invalid_message"),
    HttpCase("tts-accept-html", "POST", TTS, tts(), 406, "not_acceptable",
             headers=(("content-type", "application/json"), ("accept", "text/html"))),
    HttpCase("tts-text-too-long", "POST", TTS, tts(text="x" * 20_001), 413, "text_too_long"),
    HttpCase("tts-body-too-large", "POST", TTS, tts(text="x" * 200_000), 413, "body_too_large"),
    HttpCase("tts-get", "GET", TTS, b"", 405, headers=()),
    HttpCase("tts-long-key-open-server", "POST", TTS, tts(), 200, headers=(("content-type", "application/json"),
                                                                          ("x-api-key", "x" * 4_000))),
    HttpCase("tts-key-header-over-8-kib", "POST", TTS, tts(), 431, headers=(("content-type", "application/json"),
                                                                           ("x-api-key", "x" * 10_000))),
    HttpCase("speech-no-voice", "POST", SPEECH, json.dumps({"model": "tts-1", "input": "Hi."}).encode(), 422,
             "invalid_message"),
    HttpCase("speech-no-model", "POST", SPEECH, json.dumps({"input": "Hi.", "voice": "alloy"}).encode(), 422,
             "invalid_message"),
    HttpCase("speech-empty-input", "POST", SPEECH, speech(input=""), 422, "invalid_message"),
    HttpCase("speech-aac", "POST", SPEECH, speech(response_format="aac"), 422, "invalid_message"),
    HttpCase("speech-sse", "POST", SPEECH, speech(stream_format="sse"), 422, "invalid_message"),
    HttpCase("speech-speed", "POST", SPEECH, speech(speed=9), 422, "out_of_range"),
    HttpCase("speech-voice-object", "POST", SPEECH, speech(voice={"id": 5}), 422, "invalid_message"),
    HttpCase("speech-voice-unknown", "POST", SPEECH, speech(voice="nobody"), 404, "voice_not_found"),
    HttpCase("speech-instructions-huge", "POST", SPEECH, speech(instructions="x" * 5000), 422, "invalid_message"),
    HttpCase("speech-not-json", "POST", SPEECH, b"{nope", 400, "invalid_json"),
    HttpCase("speech-clip-internal", "POST", SPEECH, speech(reference_audio="http://127.0.0.1:22/"), 422,
             "unsupported"),
    HttpCase("voices-bad-base64", "POST", "/v1/voices", b'{"audio":"garbage!!"}', 415, "bad_audio"),
    HttpCase("voices-octet-stream", "POST", "/v1/voices", b"\x00" * 10, 415, "bad_audio",
             headers=(("content-type", "application/octet-stream"),)),
    HttpCase("voices-unknown-field", "POST", "/v1/voices", b'{"audio":"UklGRg==","x":1}', 422, "invalid_message"),
    HttpCase("voices-multipart-no-file", "POST", "/v1/voices", b"--b\r\nContent-Disposition: form-data; "
             b'name="name"\r\n\r\nx\r\n--b--\r\n', 422, "invalid_message",
             headers=(("content-type", "multipart/form-data; boundary=b"),)),
    HttpCase("voices-body-too-large", "POST", "/v1/voices", b'{"audio":"' + b"A" * 200_000 + b'"}', 413,
             "body_too_large"),
    HttpCase("voices-delete-unknown", "DELETE", "/v1/voices/nope", b"", 404, "voice_not_found", headers=()),
    HttpCase("voices-delete-traversal", "DELETE", "/v1/voices/..%2F..%2Fetc", b"", 404, headers=()),  # no route
    HttpCase("unknown-path", "GET", "/v1/nothing", b"", 404, headers=()),
    HttpCase("healthz-post", "POST", "/healthz", b"", 405, headers=()),
    # Types are strict on HTTP as on the websocket.
    HttpCase("tts-seed-bool", "POST", TTS, tts(seed=True), 422, "invalid_message"),
    HttpCase("tts-seed-string", "POST", TTS, tts(seed="7"), 422, "invalid_message"),
    # Bodies the JSON parser gives up on other than by a syntax error are invalid_json too.
    HttpCase("tts-deep-array", "POST", TTS, b"[" * 100_000, 400, "invalid_json"),
    HttpCase("speech-deep-object", "POST", SPEECH, b'{"a":' * 19_000, 400, "invalid_json"),
    HttpCase("tts-not-utf8", "POST", TTS, b'{"text":"caf\xe9"}', 400, "invalid_json"),
    HttpCase("speech-int-5000-digits", "POST", SPEECH, b'{"input":"x","seed":' + b"9" * 5000 + b"}", 400,
             "invalid_json"),
    HttpCase("voices-not-json", "POST", "/v1/voices", b"{nope", 400, "invalid_json"),
    HttpCase("voices-deep-array", "POST", "/v1/voices", b"[" * 90_000, 400, "invalid_json"),
    HttpCase("voices-not-utf8", "POST", "/v1/voices", b'{"audio":"\xff"}', 400, "invalid_json"),
    # Content-Encoding: gzip is decoded within the body cap (100 000 bytes in the corpus server); others are refused.
    HttpCase("tts-gzip", "POST", TTS, gzip.compress(tts(output_format="pcm")), 200, headers=GZIP_JSON),
    HttpCase("tts-gzip-bomb", "POST", TTS, gzip.compress(tts(text=" " * 10_000_000)), 413, "body_too_large",
             headers=GZIP_JSON),
    HttpCase("speech-gzip-bomb", "POST", SPEECH, gzip.compress(b" " * 10_000_000), 413, "body_too_large",
             headers=GZIP_JSON),
    HttpCase("voices-gzip-bomb", "POST", "/v1/voices", gzip.compress(b'{"audio":"' + b"A" * 10_000_000 + b'"}'), 413,
             "body_too_large", headers=GZIP_JSON),
    HttpCase("tts-gzip-corrupt", "POST", TTS, gzip.compress(tts())[:-12] + b"garbage", 415, "bad_encoding",
             headers=GZIP_JSON),
    HttpCase("tts-gzip-truncated", "POST", TTS, gzip.compress(tts())[:-8], 415, "bad_encoding", headers=GZIP_JSON),
    HttpCase("tts-gzip-not-gzip", "POST", TTS, tts(), 415, "bad_encoding", headers=GZIP_JSON),
    HttpCase("tts-brotli", "POST", TTS, tts(), 415, "bad_encoding",
             headers=(("content-type", "application/json"), ("content-encoding", "br"))),
    HttpCase("speech-deflate", "POST", SPEECH, zlib.compress(speech()), 415, "bad_encoding",
             headers=(("content-type", "application/json"), ("content-encoding", "deflate"))),
    HttpCase("tts-gzip-twice", "POST", TTS, gzip.compress(gzip.compress(tts())), 415, "bad_encoding",
             headers=(("content-type", "application/json"), ("content-encoding", "gzip, gzip"))),
]
