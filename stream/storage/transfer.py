"""Copying everything one storage holds into another (`voicewire db copy`), through the repositories.

Keys keep their ids, digests, balances, usage counts, times and revoked state; usage keeps its
days; voices keep their ids, metadata and clip bytes. The target must be empty (no key, voice or
usage): merging two installs could give one id two meanings, so that is refused rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

from stream.storage.base import Storage


class TargetNotEmpty(Exception):
    """The target already holds records; the message says how many of which."""


@dataclass(frozen=True)
class CopyCounts:
    keys: int
    usage_days: int
    voices: int

    def describe(self) -> str:
        return f"{self.keys} key(s), {self.usage_days} day(s) of usage, {self.voices} voice(s)"


def counts(storage: Storage) -> CopyCounts:
    return CopyCounts(len(storage.keys.export()), len(storage.usage.export()), len(storage.voices.list()))


def copy_storage(source: Storage, target: Storage) -> CopyCounts:
    """Copy every key, usage day and voice of `source` into the empty `target`; what was copied."""
    present = counts(target)
    if present != CopyCounts(0, 0, 0):
        raise TargetNotEmpty(f"the target {target.url.redacted} already holds {present.describe()}; "
                             "copy into an empty database")
    keys, usage = source.keys.export(), source.usage.export()
    target.keys.restore(keys)
    target.usage.restore(usage)
    copied = 0
    for voice in source.voices.list():
        audio = source.voices.audio(voice.id)
        if audio is not None:            # None: deleted while we copied
            target.voices.add(voice, audio)
            copied += 1
    return CopyCounts(len(keys), len(usage), copied)
