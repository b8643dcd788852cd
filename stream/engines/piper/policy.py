"""Piper's speech policy: short phrases, and digits left to its own text front end.

Piper says a two-word phrase cleanly and synthesizes a phrase in tens of milliseconds, so short
first phrases buy time-to-first-audio at no cost in quality (measurements: docs/phrasing.md).
espeak-ng, Piper's phonemizer, reads numbers, currency and times itself.
"""

from __future__ import annotations

from stream.core.normalizer import NormalizerOptions
from stream.core.segmenter import CutterConfig
from stream.core.speech_policy import SpeechPolicy

# release_opener: Piper says a one-word sentence ("Halt!", "Done.") as cleanly as a long one, so an
# opening sentence goes out alone. synth_s_per_char: about 0.075 s of audio per character at a
# real-time factor of 0.13, the expected synthesis time until the session measures the engine's own;
# on the corpus replay it took the gapped turns at RTF 0.25 from 2 to 0 (docs/benchmarks.md).
POLICY = SpeechPolicy(
    cutter=CutterConfig(first_min_words=2, first_max_words=5, min_words=2, soft_chars=120, hard_chars=300,
                        stall_s=0.3, ahead_relaxed_s=3.0, ahead_starving_s=0.5, relaxed_min_chars=80,
                        release_opener=True, synth_s_per_char=0.01),
    normalizer=NormalizerOptions(spell_out_numbers=False),
)
