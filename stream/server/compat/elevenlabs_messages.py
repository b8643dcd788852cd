"""ElevenLabs' websocket and query vocabulary as typed models, and how each maps onto voicewire.

Unlike voicewire's own protocol, unknown fields are accepted (clients send many); the driver
counts them in `voicewire_compat_ignored_fields` (docs/compat.md lists the known ones).
"""

from __future__ import annotations

import json
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stream.audio.containers import FORMATS
from stream.core.errors import InvalidJson, InvalidMessage, Unsupported
from stream.core.protocol import GenerationSettings, describe_validation_error

# Fields and query parameters that clients send and voicewire accepts without acting on them.
IGNORED_FIELDS = frozenset({
    "model_id", "inactivity_timeout", "sync_alignment", "auto_mode", "enable_logging", "enable_ssml_parsing",
    "apply_text_normalization", "language_code", "pronunciation_dictionary_locators", "optimize_streaming_latency",
    "try_trigger_generation", "generation_config", "similarity_boost", "use_speaker_boost", "seed",
    "previous_text", "next_text", "previous_request_ids", "next_request_ids", "output_format",
})
DEFAULT_OUTPUT_FORMAT = "mp3_44100_128"   # ElevenLabs' documented default
_ENCODINGS = {"pcm": "pcm_s16le", "ulaw": "mulaw", "alaw": "alaw", "mp3": "mp3"}


class VoiceSettings(BaseModel):
    """ElevenLabs voice settings; `style` and `stability` steer Chatterbox, the rest are ignored."""

    model_config = ConfigDict(extra="allow")
    stability: float | None = Field(None, ge=0, le=1)
    similarity_boost: float | None = Field(None, ge=0, le=1)
    style: float | None = Field(None, ge=0, le=1)
    use_speaker_boost: bool | None = None
    speed: float | None = Field(None, ge=0.25, le=4.0)

    def generation(self) -> GenerationSettings:
        """`style` 0..1 raises exaggeration from Chatterbox's neutral 0.5 to 1.5; `stability` 0..1
        lowers temperature from 1.3 to 0.3 (ElevenLabs' default 0.5 gives Chatterbox's default 0.8)."""
        update: dict[str, float] = {}
        if self.style is not None:
            update["exaggeration"] = 0.5 + self.style
        if self.stability is not None:
            update["temperature"] = 1.3 - self.stability
        if self.speed is not None:
            update["speed"] = self.speed
        return GenerationSettings(**update)


class InputMessage(BaseModel):
    """One client frame on `stream-input` / `multi-stream-input`."""

    model_config = ConfigDict(extra="allow")
    text: str | None = None
    voice_settings: VoiceSettings | None = None
    flush: bool = False
    try_trigger_generation: bool | None = None
    xi_api_key: str | None = None
    authorization: str | None = None
    context_id: str | None = Field(None, min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
    close_context: bool = False
    close_socket: bool = False

    def key(self) -> str | None:
        """The in-message key: `xi_api_key`, or `authorization` with or without `Bearer `."""
        if self.xi_api_key is not None:
            return self.xi_api_key
        if self.authorization is not None:
            scheme, _, token = self.authorization.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else self.authorization
        return None

    def ignored(self) -> list[str]:
        return [*(self.model_extra or {}),
                *(["voice_settings." + k for k in self.voice_settings.model_extra or {}]
                  if self.voice_settings else [])]


def parse_input(raw: str | bytes) -> InputMessage:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise InvalidJson(f"message: not valid JSON ({reason})") from None
    if not isinstance(data, dict):
        raise InvalidMessage("message: expected a JSON object")
    try:
        return InputMessage.model_validate(data)
    except ValidationError as exc:
        raise describe_validation_error(exc, None) from None


def output_format(name: str | None) -> tuple[str, int]:
    """`pcm_16000`, `ulaw_8000`, `mp3_44100_128`, ... -> (voicewire encoding, rate); others refused."""
    name = name or DEFAULT_OUTPUT_FORMAT
    codec, _, rest = name.partition("_")
    rate = int(digits) if (digits := rest.partition("_")[0]).isdigit() else 0
    served = {"pcm": 8000 <= rate <= 48000, "ulaw": rate == 8000, "alaw": rate == 8000,
              "mp3": rate in (FORMATS["mp3"].sample_rates or ())}
    if served.get(codec):
        return _ENCODINGS[codec], rate
    raise Unsupported(f"output_format: {name!r} is not served; use pcm_<rate>, ulaw_8000, alaw_8000 or "
                      f"mp3_<rate>_<bitrate> (docs/compat.md)")


class _Out(BaseModel):
    """An outbound frame; `absent_when_none` fields are left out rather than sent as null."""

    absent_when_none: ClassVar[tuple[str, ...]] = ()


class Alignment(BaseModel):
    chars: list[str]
    charStartTimesMs: list[int]  # noqa: N815 - ElevenLabs' wire names
    charDurationsMs: list[int]  # noqa: N815


class AudioOut(_Out):
    audio: str
    isFinal: bool | None = None  # noqa: N815
    alignment: Alignment | None = None
    normalizedAlignment: Alignment | None = None  # noqa: N815
    contextId: str | None = None  # noqa: N815
    absent_when_none: ClassVar[tuple[str, ...]] = ("contextId",)


class FinalOut(_Out):
    isFinal: bool = True  # noqa: N815
    contextId: str | None = None  # noqa: N815
    absent_when_none: ClassVar[tuple[str, ...]] = ("contextId",)


class ErrorOut(_Out):
    """ElevenLabs' error frame: a readable `message`, a short `error` code, the close `code`."""

    message: str
    error: str
    code: int | None = None
    contextId: str | None = None  # noqa: N815
    absent_when_none: ClassVar[tuple[str, ...]] = ("code", "contextId")
