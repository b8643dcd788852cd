"""The audio layer's side of the session's `PhraseAudio` port: shaping, resampling, encoding.

`EncodedPhraseAudio` (websocket) turns engine chunks into wire bytes at the client's rate and
encoding; `ShapedPhraseAudio` (one-shot HTTP, whose container writer resamples and encodes)
hands out shaped float32 samples at the engine's rate; `ContainerPhraseAudio` (ElevenLabs' MP3
default) writes one streamed container file per context. All shape phrase joins the same way.
"""

from __future__ import annotations

import numpy as np

from stream.audio.codecs import OutputEncoder, PhraseShaper, pause_after
from stream.audio.containers import FORMATS, FileEncoder
from stream.core.phrase_audio import AudioPiece


class EncodedPhraseAudio:
    def __init__(self, engine_rate: int, output_rate: int, encoding: str) -> None:
        self._shaper = PhraseShaper(engine_rate)
        self._encoder = OutputEncoder(engine_rate, output_rate, encoding)

    def push(self, chunk: np.ndarray) -> AudioPiece:
        data, count = self._encoder.encode(self._shaper.push(chunk))
        return AudioPiece(data, count)

    def end_phrase(self, text: str, last: bool) -> AudioPiece:
        data, count = self._encoder.encode(self._shaper.finish(0.0 if last else pause_after(text)), last=last)
        return AudioPiece(data, count)


class ShapedPhraseAudio:
    def __init__(self, engine_rate: int) -> None:
        self._shaper = PhraseShaper(engine_rate)

    def push(self, chunk: np.ndarray) -> AudioPiece:
        samples = self._shaper.push(chunk)
        return AudioPiece(samples, samples.size)

    def end_phrase(self, text: str, last: bool) -> AudioPiece:
        samples = self._shaper.finish(0.0 if last else pause_after(text))
        return AudioPiece(samples, samples.size)


class ContainerPhraseAudio:
    """A context's audio as one streamed file (e.g. MP3): each piece is the container bytes written so
    far (possibly none yet: the codec holds whole frames back); `samples` counts the audio they stand
    for at the output rate, so timing is exact even when the bytes lag."""

    def __init__(self, engine_rate: int, output_rate: int, container: str) -> None:
        self._shaper = PhraseShaper(engine_rate)
        self._file = FileEncoder(FORMATS[container], engine_rate, output_rate)
        self._reported = 0

    def push(self, chunk: np.ndarray) -> AudioPiece:
        return self._piece(self._file.write(self._shaper.push(chunk)))

    def end_phrase(self, text: str, last: bool) -> AudioPiece:
        data = self._file.write(self._shaper.finish(0.0 if last else pause_after(text)))
        return self._piece(data + self._file.close() if last else data)

    def _piece(self, data: bytes) -> AudioPiece:
        samples, self._reported = self._file.samples - self._reported, self._file.samples
        return AudioPiece(data, samples)
