"""Chatterbox's speech policy: longer phrases, and every number spelled out.

Chatterbox garbles inputs under about four words and drifts past about 300 characters, so first
phrases wait for five words and every phrase stays under 250 characters (measurements:
docs/phrasing.md). Its tokenizer has no number handling at all, so digits become words first.
All variants (original, Turbo, multilingual) share it.
"""

from __future__ import annotations

from stream.core.normalizer import NormalizerOptions
from stream.core.segmenter import CutterConfig
from stream.core.speech_policy import SpeechPolicy

POLICY = SpeechPolicy(
    cutter=CutterConfig(first_min_words=5, first_max_words=10, min_words=4, soft_chars=150, hard_chars=250,
                        stall_s=0.5, ahead_relaxed_s=5.0, ahead_starving_s=1.5, relaxed_min_chars=120),
    normalizer=NormalizerOptions(spell_out_numbers=True),
)
