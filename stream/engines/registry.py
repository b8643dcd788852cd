"""Every engine the server can run, and the `auto` choice among them.

Adding an engine touches its own folder (which exports an `EngineEntry` as `ENTRY`) and the
`ENGINES` line below, nothing else: `--engine` choices, `auto` and instantiation all read it.
`auto` takes the first entry, in this order, that says it can run here, and logs why.
"""

from __future__ import annotations

from stream.engines import chatterbox, piper
from stream.engines.base import Engine, EngineEntry, EngineLoadError
from stream.settings import Settings

__all__ = ["ENGINES", "ENGINE_NAMES", "choose_engine", "create_engine"]

ENGINES: tuple[EngineEntry, ...] = (chatterbox.ENTRY, piper.ENTRY)  # `auto` preference, best first
ENGINE_NAMES: tuple[str, ...] = ("auto", *(name for entry in ENGINES for name in entry.names))


def choose_engine(settings: Settings) -> tuple[str, str]:
    """Resolve `settings.engine` to a concrete engine name, with the reason for the choice."""
    if settings.engine != "auto":
        return settings.engine, "requested explicitly"
    passed: list[str] = []
    for entry in ENGINES:
        ok, why = entry.auto(settings)
        if ok:
            # Falling back, the reason that matters is why the better engines were passed over.
            return entry.names[0], f"auto: {'; '.join(passed) or why}"
        passed.append(why)
    raise EngineLoadError(f"engine: auto found no engine that can run here ({'; '.join(passed)})")


def create_engine(name: str, settings: Settings) -> Engine:
    """Instantiate (not load) the named engine."""
    for entry in ENGINES:
        if name in entry.names:
            return entry.create(name, settings)
    raise EngineLoadError(f"engine: unknown engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}")
