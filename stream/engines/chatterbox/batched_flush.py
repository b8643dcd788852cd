"""Flushes of several requests' phrase decoders run together, padded to length buckets.

A scheduler that serves many sessions on one GPU flushes the most urgent phrases together: their
flow passes (encoder + CFM estimator) run as one padded, masked batch per group of equal CFM steps
and solver, and their HiFT calls as one batch per group of equal shapes (HiFT's convs look both
ways, so it is never padded). Each request's result is what its own `PhraseDecoder.flush(final)`
would have returned alone, and its decoder's state advances exactly as if it had been flushed
alone, so a later flush (batched or not) matches too: the decoders' noise is their own and indexed
by position, and padding is masked (see `decoding`).

Equality: identical up to float rounding. At float64 the results agree to ~1e-12; at float32 the
batched kernels and the longer padded axis change the last bits of the mel (within 1e-5), which
HiFT passes on to the audio (tests hold it within 1e-4 of a unit-scale signal).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch

from stream.engines.chatterbox.decoding import (
    FlowRequest,
    PhraseDecoder,
    VocoderRequest,
    run_flow,
    run_vocoder,
)

MAX_FLOW_BATCH = 16      # flow passes per padded call; more are split (bounds the activation memory)


@torch.inference_mode()
def flush_many(items: Sequence[tuple[PhraseDecoder, bool]]) -> list[np.ndarray]:
    """Run the pending flush of each `(decoder, final)` pair; results in the order given.

    Equal to `[decoder.flush(final) for decoder, final in items]`: identical at float64, within
    float32 rounding of batched kernels at fp32. A decoder may appear at most once; decoders batched
    together share one S3Gen model (decoders of different models run in separate batches).
    """
    decoders = [decoder for decoder, _ in items]
    if len({id(d) for d in decoders}) != len(decoders):
        raise ValueError("flush_many: a decoder appears more than once; flush it once per call")
    flows: dict[tuple, list[tuple[int, FlowRequest]]] = defaultdict(list)
    for index, (decoder, final) in enumerate(items):
        request = decoder.begin_flush(final)
        if request is not None:
            flows[(id(decoder.flow), request.steps, request.meanflow)].append((index, request))
    mels: dict[int, torch.Tensor] = {}
    for group in flows.values():
        for start in range(0, len(group), MAX_FLOW_BATCH):
            part = group[start: start + MAX_FLOW_BATCH]
            flow = decoders[part[0][0]].flow
            mels.update(zip((i for i, _ in part), run_flow(flow, [r for _, r in part]), strict=True))
    vocoders: dict[tuple, list[tuple[int, VocoderRequest]]] = defaultdict(list)
    for index in sorted(mels):
        request = decoders[index].vocoder_request(mels[index])
        vocoders[(id(decoders[index].hift), request.mel.shape, request.cache.shape)].append((index, request))
    vocoded: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    for group in vocoders.values():
        hift = decoders[group[0][0]].hift
        vocoded.update(zip((i for i, _ in group), run_vocoder(hift, [r for _, r in group]), strict=True))
    return [decoder.end_flush(final, vocoded.get(index)) for index, (decoder, final) in enumerate(items)]
