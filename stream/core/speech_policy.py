"""How an engine wants a reply's text cut into phrases and normalized before it is spoken.

Each engine declares its own policy (`Engine.policy`); the session applies it to every context.
The core holds only the type and a conservative default for engines that have measured nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stream.core.normalizer import NormalizerOptions
from stream.core.segmenter import CutterConfig


def _conservative_cutter() -> CutterConfig:
    # Neural models that garble very short inputs: longer first phrases, sentence-level later ones.
    return CutterConfig(first_min_words=5, first_max_words=10, min_words=4, soft_chars=150, hard_chars=250,
                        stall_s=0.5, ahead_relaxed_s=5.0, ahead_starving_s=1.5, relaxed_min_chars=120)


@dataclass(frozen=True)
class SpeechPolicy:
    cutter: CutterConfig = field(default_factory=_conservative_cutter)
    normalizer: NormalizerOptions = field(default_factory=lambda: NormalizerOptions(spell_out_numbers=True))
