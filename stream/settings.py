"""All limits and tunables in one object, documented once, overridable by CLI flags and env vars.

Every field can be set with an environment variable `VOICEWIRE_<FIELD>` (upper case); CLI flags
override the environment. `ready.limits` reports the limit fields to clients.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from stream.core.limits import Limits

__all__ = ["Limits", "Settings", "from_env"]


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
    database_url: str | None = None            # keys, voices, usage: sqlite:///ABSOLUTE/PATH; None = database_path
    api_keys: tuple[str, ...] = ()             # static keys; the key database adds more
    workers: int = 0                           # inference threads; 0 = auto (GPU engines 1, piper: cores)
    batching: bool = True                      # Chatterbox (Llama T3): one continuous batch per device; False: serial pool
    batch_rows: int = 0                        # batching: decoding rows (a CFG request takes 2); 0 = 32 on CUDA, else 4
    sampler: str = "package"                   # serial Chatterbox T3: package (torch.multinomial) or counter (the batched runner's)
    voice_cache_size: int = 64
    allow_private_urls: bool = False
    log_level: str = "info"
    replica: str | None = None                 # this process's name in ready, /healthz and logs; None = <host>-<pid>
    drain_timeout_s: float = 10.0              # on stop: open turns get this long to finish before shutting_down
    lease_ttl_s: float = 10.0                  # a dead replica's sessions and credit holds expire within this
    limits: Limits = field(default_factory=Limits)

    @property
    def database_path(self) -> Path:
        """The SQLite file used when `database_url` is unset."""
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
