"""Piper, the embedded CPU voice; `ENTRY` is what the registry knows of it."""

from __future__ import annotations

from stream.engines.base import Engine, EngineEntry
from stream.settings import Settings

__all__ = ["ENTRY"]


def _create(name: str, settings: Settings) -> Engine:
    from stream.engines.piper.engine import PiperEngine

    return PiperEngine()


# `auto` falls back to it anywhere: it needs no GPU and no download.
ENTRY = EngineEntry(names=("piper",), create=_create, auto=lambda settings: (True, "the embedded CPU voice"))
