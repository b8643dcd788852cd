"""All limits and tunables in one object, documented once, overridable by CLI flags and env vars.

Every field can be set with an environment variable `VOICEWIRE_<FIELD>` (upper case); CLI flags
override the environment. `ready.limits` reports the limit fields to clients.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path


@dataclass
class Limits:
    """Per-session and per-server limits; each breach maps to one protocol error code."""

    max_contexts_per_session: int = 8          # too_many_contexts
    max_text_chars_per_context: int = 20_000   # text_too_long
    max_frame_bytes: int = 4 * 1024 * 1024     # message_too_large (close 1009); fits inline clips
    idle_timeout_s: float = 120.0              # idle_timeout (close 1000)
    max_sessions: int = 256                    # rate_limited at connect (close 1013)
    max_sessions_per_key: int = 32             # rate_limited at connect (close 1013)
    messages_per_second: float = 200.0         # rate_limited (token bucket, burst = 2 s worth)
    max_reference_bytes: int = 10 * 1024 * 1024
    max_reference_seconds: float = 60.0
    min_reference_seconds: float = 1.0
    reference_fetch_timeout_s: float = 10.0    # HTTP API: the whole fetch of a reference_audio URL
    reference_url_ttl_s: float = 300.0         # HTTP API: a fetched clip is reused this long, then revalidated
    max_http_body_bytes: int = 16 * 1024 * 1024  # HTTP API: request body (413); fits a base64 max-size clip
    send_buffer_chunks: int = 32               # chunks a synthesis job holds unread before it parks
    stalled_client_timeout_s: float = 30.0     # a client that reads nothing this long is closed
    engine_stall_timeout_s: float = 60.0       # a synthesis with no chunk this long fails its context (internal)

    def to_wire(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8765
    engine: str = "auto"
    model_dir: str | None = None
    device: str | None = None
    dtype: str | None = None
    watermark: bool = True
    data_dir: str = field(default_factory=lambda: str(Path.home() / ".voicewire"))
    api_keys: tuple[str, ...] = ()             # static keys; the key database adds more
    workers: int = 0                           # inference threads; 0 = auto (GPU engines 1, piper: cores)
    voice_cache_size: int = 64
    allow_private_urls: bool = False
    log_level: str = "info"
    limits: Limits = field(default_factory=Limits)

    @property
    def database_path(self) -> Path:
        return Path(self.data_dir) / "voicewire.sqlite3"


def _coerce(raw: str, current: object) -> object:
    if isinstance(current, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(current, int):
        return int(raw)
    if isinstance(current, float):
        return float(raw)
    if isinstance(current, tuple):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def from_env(environ: dict[str, str] | None = None) -> Settings:
    """Settings with `VOICEWIRE_*` overrides applied (limits included, e.g. VOICEWIRE_IDLE_TIMEOUT_S)."""
    env = os.environ if environ is None else environ
    settings = Settings()
    for target in (settings, settings.limits):
        for f in fields(target):
            if f.name == "limits":
                continue
            raw = env.get(f"VOICEWIRE_{f.name.upper()}")
            if raw is not None:
                setattr(target, f.name, _coerce(raw, getattr(target, f.name) if getattr(target, f.name) is not None else ""))
    return settings
