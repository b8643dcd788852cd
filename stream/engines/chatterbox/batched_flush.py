"""Flushes of several requests' phrase decoders run together, padded to length buckets.

A scheduler that serves many sessions on one GPU flushes the most urgent phrases together: their
flow passes (encoder + CFM estimator) run as one padded, masked batch per length bucket and CFM step
count, so the GPU sees one large call instead of many small ones. Each request's result is what its
own `PhraseDecoder.flush(final)` would have returned alone, and its decoder's state advances exactly
as if it had been flushed alone, so a later flush (batched or not) matches too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stream.engines.chatterbox.decoding import PhraseDecoder


def flush_many(items: Sequence[tuple[PhraseDecoder, bool]]) -> list[np.ndarray]:
    """Run the pending flush of each `(decoder, final)` pair; results in the order given.

    Equal to `[decoder.flush(final) for decoder, final in items]`: identical at float64, within
    float32 rounding of batched kernels at fp32 (the tests state the tolerance). A decoder may appear
    at most once; decoders must share one S3Gen model.
    """
    return [decoder.flush(final) for decoder, final in items]
