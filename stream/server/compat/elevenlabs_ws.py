"""ElevenLabs' `stream-input` and `multi-stream-input` websockets, as a driver of the voicewire session.

The same `Connection` as `/v1/stream` (session, synthesis jobs, outbox, clock), with ElevenLabs'
frames translated at both ends: a client frame becomes voicewire's text/flush/end/cancel input, and
the session's actions become `audio` + `alignment` frames and `isFinal`. `stream-input` is one
context per socket (`{"text": ""}` ends it and the socket); `multi-stream-input` names contexts by
`context_id`, where `{"text": ""}` is a keepalive. `close_context` right after a flush without
text (how pipecat and LiveKit end a turn) ends it: the text is spoken, then `isFinal`; any other
`close_context` (after text, flushed per sentence or not, or on an ended context) is a barge-in
and stops the context within a chunk, as voicewire's `cancel` does (docs/compat.md).
"""

from __future__ import annotations

import asyncio
import base64

from starlette.websockets import WebSocket

from stream.accounts.auth import Caller
from stream.audio.phrase_audio import ContainerPhraseAudio, EncodedPhraseAudio
from stream.core.actions import Action, Close, Complete, SendAudio, SendMessage
from stream.core.errors import ProtocolError, Unauthorized
from stream.core.protocol import CancelMessage, EndMessage, FlushMessage, TextMessage
from stream.core.server_messages import CancelledMessage, ErrorMessage, PhraseMessage
from stream.core.session import ContextState
from stream.deadline import deadline
from stream.server.compat.alignment import Pace, PhraseAligner
from stream.server.compat.elevenlabs_messages import (
    IGNORED_FIELDS,
    Alignment,
    AudioOut,
    ErrorOut,
    FinalOut,
    InputMessage,
    output_format,
    parse_input,
)
from stream.server.credentials import authenticate, request_key
from stream.server.outbox import Outbox
from stream.server.runtime import Runtime
from stream.server.session_driver import SessionDriver

SINGLE_CONTEXT = "stream-input"
KNOWN_QUERY = frozenset({"api_key", "output_format"})


class ElevenLabsOutbox(Outbox):
    """Sends prepared ElevenLabs frames; closes with ElevenLabs' error frame (none for a normal close)."""

    async def _deliver(self, item: object) -> None:
        await self._send(item)  # type: ignore[arg-type]

    async def _close(self, err: ProtocolError | None, code: int | None) -> None:
        if err is None:  # `close_socket`, or the end of a `stream-input` stream, once the audio is out
            await self._close_socket(code or 1000, "")
            return
        self.rt.metrics.errors.labels(err.code).inc()
        await self._send(ErrorOut(message=err.message, error=err.code, code=code or err.close_code or 1008))
        await self._close_socket(code or err.close_code or 1008, err.message)


class ElevenLabsConnection(SessionDriver):
    def __init__(self, ws: WebSocket, runtime: Runtime, voice_id: str, multi: bool) -> None:
        super().__init__(ws, runtime)
        self.endpoint = "elevenlabs/multi-stream-input" if multi else "elevenlabs/stream-input"
        self.voice_id, self.multi = voice_id, multi
        self.outbox = ElevenLabsOutbox(ws, runtime, self.id, on_stalled=lambda: self._execute(self.session.disconnect()))
        self._pace = Pace()
        self._aligners: dict[str, PhraseAligner] = {}
        self._flushed: set[str] = set()      # contexts whose last input was a bare flush (close_context = end)
        self._first: dict | None = None      # the first frame, read early for its in-message key
        self._format_error: ProtocolError | None = None
        try:
            self._format = output_format(ws.query_params.get("output_format"))
        except ProtocolError as err:
            self._format, self._format_error = ("pcm_s16le", runtime.engine.sample_rate), err
        self._count_ignored(name for name in ws.query_params if name not in KNOWN_QUERY)

    # -- inputs -------------------------------------------------------------------------------
    async def _authenticate(self) -> Caller | None:
        """`xi-api-key` (or any voicewire form) on the request; else the key in the first message."""
        if self._format_error is not None:
            self._format_error.fatal = True
            raise self._format_error
        credential = request_key(self.ws.headers, self.ws.query_params)
        if credential is None and self.rt.auth.required:
            try:
                async with deadline(self.limits.idle_timeout_s):
                    self._first = await self.ws.receive()
            except asyncio.TimeoutError:
                raise Unauthorized("xi_api_key: no key arrived") from None
            raw = self._first.get("text") or self._first.get("bytes") or b""
            try:
                key = parse_input(raw).key() if len(raw) <= self.limits.max_frame_bytes else None
            except ProtocolError:
                key = None
            return await asyncio.to_thread(self.rt.auth.authenticate, key, "xi_api_key message field")
        return await asyncio.to_thread(authenticate, self.rt.auth, credential)

    async def _next_frame(self) -> dict:
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        return await self.ws.receive()

    async def _frame(self, raw: str | bytes, now: float) -> None:
        msg = parse_input(raw)
        self.session.admit(now)
        self._count_ignored(msg.ignored())
        if msg.close_socket:
            self._execute([*self.session.disconnect(), Close(None)])
            return
        cid = msg.context_id or ("default" if self.multi else SINGLE_CONTEXT)
        if msg.text:
            await self._text(msg, cid, now)
        elif msg.text == "" and not self.multi and not msg.flush:
            await self._end_stream(now)
            return
        if msg.flush and cid in self.session.contexts:
            await self._handle(FlushMessage(type="flush", context_id=cid), now)
            if not (msg.text or "").strip():
                self._flushed.add(cid)
        if msg.text and msg.text.strip():
            self._flushed.discard(cid)
        if msg.close_context and cid in self.session.contexts:
            ends = cid in self._flushed and self.session.contexts[cid].state is ContextState.OPEN
            await self._handle(EndMessage(type="end", context_id=cid) if ends
                               else CancelMessage(type="cancel", context_id=cid), now)

    async def _text(self, msg: InputMessage, cid: str, now: float) -> None:
        opens = cid not in self.session.contexts
        settings = msg.voice_settings
        await self._handle(TextMessage(type="text", context_id=cid, text=msg.text or "",
                                       voice=self.voice_id if opens else None,
                                       generation=settings.generation() if opens and settings else None), now)

    async def _end_stream(self, now: float) -> None:
        """`stream-input`'s end of stream: speak what is left, `isFinal`, then close the socket."""
        if SINGLE_CONTEXT in self.session.contexts:
            await self._handle(EndMessage(type="end", context_id=SINGLE_CONTEXT), now)
        else:
            self._post([Close(None)])

    def _count_ignored(self, names) -> None:
        for name in names:
            label = name if name.split(".")[-1] in IGNORED_FIELDS else "other"
            self.rt.metrics.compat_ignored.labels(self.endpoint, label).inc()

    # -- outputs ------------------------------------------------------------------------------
    def _phrase_audio(self, encoding: str, output_rate: int) -> EncodedPhraseAudio | ContainerPhraseAudio:
        if encoding == "mp3":
            return ContainerPhraseAudio(self.rt.engine.sample_rate, output_rate, "mp3")
        return super()._phrase_audio(encoding, output_rate)

    def _output(self) -> tuple[str, int]:
        return self._format

    def _post(self, actions: list[Action]) -> None:
        """Translate the session's actions to ElevenLabs frames, in order."""
        metrics = self.rt.metrics
        for i, action in enumerate(actions):
            if isinstance(action, SendAudio):
                ends = any(_ends_phrase(later, action.context_id) for later in actions[i + 1:])
                self.outbox.put(self._audio(action, ends))
                metrics.audio_seconds.inc(action.duration_ms / 1000.0)
            elif isinstance(action, SendMessage):
                self._message(action.message)
            elif isinstance(action, Complete):
                metrics.contexts.labels("done").inc()
                metrics.characters.inc(action.message.characters)
                if action.message.ttfa_ms is not None:
                    metrics.ttfa.observe(action.message.ttfa_ms / 1000)
                self._final(action.message.context_id)
            else:
                self.outbox.put(action)

    def _message(self, message: PhraseMessage | CancelledMessage | ErrorMessage) -> None:
        if isinstance(message, PhraseMessage):
            aligner = self._aligners.setdefault(message.context_id, PhraseAligner(self._pace))
            aligner.phrase(message.text, message.start_ms)
        elif isinstance(message, CancelledMessage):
            self.rt.metrics.contexts.labels("cancelled").inc()
            self.rt.metrics.characters.inc(len(message.text_spoken))
            self._final(message.context_id)
        else:
            self.rt.metrics.errors.labels(message.code).inc()
            self.outbox.put(ErrorOut(message=message.message, error=message.code,
                                     contextId=message.context_id if self.multi else None))

    def _audio(self, action: SendAudio, ends_phrase: bool) -> AudioOut:
        aligner = self._aligners.setdefault(action.context_id, PhraseAligner(self._pace))
        chars, starts, durations = aligner.take(action.start_ms, action.duration_ms, ends_phrase)
        alignment = Alignment(chars=chars, charStartTimesMs=starts, charDurationsMs=durations)
        return AudioOut(audio=base64.b64encode(action.payload).decode("ascii"), alignment=alignment,
                        normalizedAlignment=alignment, contextId=action.context_id if self.multi else None)

    def _final(self, context_id: str) -> None:
        self._aligners.pop(context_id, None)
        self._flushed.discard(context_id)
        self.outbox.put(FinalOut(contextId=context_id if self.multi else None))
        if not self.multi:
            self.outbox.put(Close(None))


def _ends_phrase(action: Action, context_id: str) -> bool:
    """Does `action` (later in the same batch) close the phrase whose audio precedes it?"""
    if isinstance(action, Complete):
        return action.message.context_id == context_id
    return isinstance(action, SendMessage) and isinstance(action.message, PhraseMessage | CancelledMessage) \
        and action.message.context_id == context_id
