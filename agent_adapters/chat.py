"""`voicewire chat`: a terminal voice chat. Type a line; an LLM streams the reply; voicewire speaks it.

The LLM is any OpenAI-compatible server (`--llm-url`, e.g. vLLM, Ollama, llama.cpp) or, when none
is configured, an offline scripted responder that streams canned replies at an LLM-like token
rate. Typing a new line while a reply is being spoken interrupts it (barge-in): the turn is
cancelled, queued audio is dropped, and only what was heard goes into the conversation history.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from clients.client import AudioEvent, PhraseEvent, ServerError, VoicewireClient
from clients.endpoint import CONNECTION_ERRORS, add_server_options, describe_failure, resolve
from clients.tokens import llm_deltas, paced
from stream.audio.codecs import decode_samples

from .llm_stream import ReplySpeech, speak_stream
from .openai_stream import openai_reply

SYSTEM_PROMPT = "You are a friendly voice assistant. Answer in two or three short spoken sentences."
SCRIPTED_REPLIES = (
    "Sure! I am the offline scripted responder, so I cannot really think, but I can talk. "
    "Point me at a real model with the llm url option.",
    "Here is a longer answer, so you can try interrupting me. Just type something while I am still "
    "speaking, and press enter. I will stop at once, and the next turn starts right away.",
    "Voicewire cuts my reply into phrases while it is still being written, so the first words play "
    "long before the last ones exist.",
)
HELP = "commands: /voice NAME  /exaggeration X  /help  /quit   (type while it speaks to interrupt)"


def add_chat_parser(sub: argparse._SubParsersAction) -> None:
    chat = sub.add_parser("chat", help="terminal voice chat: an LLM's replies spoken through the speakers")
    add_server_options(chat)
    chat.add_argument("--llm-url", default=os.environ.get("VOICEWIRE_LLM_URL"),
                      help="OpenAI-compatible base URL, e.g. http://127.0.0.1:11434/v1 "
                           "(env VOICEWIRE_LLM_URL; default: offline scripted replies)")
    chat.add_argument("--llm-model", default=os.environ.get("VOICEWIRE_LLM_MODEL", "default"),
                      help="model name for the LLM server (env VOICEWIRE_LLM_MODEL)")
    chat.add_argument("--llm-api-key", default=os.environ.get("OPENAI_API_KEY", "none"),
                      help="LLM API key (env OPENAI_API_KEY)")
    chat.add_argument("--voice", help="voice id or name (switch later with /voice)")
    chat.add_argument("--exaggeration", type=float, help="expressiveness 0-2 for each turn (/exaggeration)")
    chat.add_argument("--tokens-per-second", type=float, default=25.0, help="scripted responder's token rate")
    chat.add_argument("--sample-rate", type=int, default=48000, help="playback sample rate")
    chat.add_argument("--device", help="sounddevice output device (name or index)")
    chat.add_argument("--prebuffer-ms", type=float, default=120.0, help="jitter buffer cushion")
    chat.add_argument("--no-play", action="store_true", help="do not open an audio device (show timings only)")
    chat.set_defaults(func=run_chat)


@dataclass
class ChatState:
    voice: str | None
    exaggeration: float | None
    history: list[dict] = field(default_factory=lambda: [{"role": "system", "content": SYSTEM_PROMPT}])
    turns: int = 0

    @property
    def generation(self) -> dict | None:
        return {"exaggeration": self.exaggeration} if self.exaggeration is not None else None


def _lines(loop: asyncio.AbstractEventLoop, stream: TextIO) -> asyncio.Queue[str | None]:
    """Lines typed on stdin, read on a thread so the event loop keeps playing audio meanwhile."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        for line in stream:
            loop.call_soon_threadsafe(queue.put_nowait, line.rstrip("\n"))
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=read, daemon=True).start()
    return queue


class Chat:
    def __init__(self, args: argparse.Namespace, client: VoicewireClient, output: Any, out: TextIO) -> None:
        self.args = args
        self.client = client
        self.output = output  # SpeakerOutput, or None with --no-play
        self.out = out
        self.state = ChatState(args.voice, args.exaggeration)
        self.llm = None
        if args.llm_url:
            from openai import AsyncOpenAI

            self.llm = AsyncOpenAI(base_url=args.llm_url, api_key=args.llm_api_key, max_retries=0)

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def reply_deltas(self) -> AsyncIterator[str]:
        if self.llm is not None:
            return openai_reply(self.llm, model=self.args.llm_model, messages=list(self.state.history))
        reply = SCRIPTED_REPLIES[self.state.turns % len(SCRIPTED_REPLIES)]
        return paced(llm_deltas(reply), self.args.tokens_per_second)

    def command(self, line: str) -> bool:
        """Apply a /command; False means quit."""
        name, _, value = line[1:].partition(" ")
        value = value.strip()
        if name == "quit":
            return False
        if name == "voice" and value:
            self.state.voice = value
            self.say(f"[voice: {value}, from the next reply]")
        elif name == "exaggeration" and value:
            try:
                self.state.exaggeration = float(value)
                self.say(f"[exaggeration: {self.state.exaggeration}]")
            except ValueError:
                self.say("[exaggeration needs a number, e.g. /exaggeration 0.8]")
        else:
            self.say(HELP)
        return True

    async def turn(self, speech: ReplySpeech) -> None:
        """Play one reply: audio into the jitter buffer, phrases to the screen, TTFA once."""
        fmt = self.client.output_format
        shown_ttfa = False
        async for event in speech.events():
            if isinstance(event, AudioEvent):
                if not shown_ttfa:
                    sent = speech.context.sent_first_text_at or event.received_at
                    self.say(f"[TTFA {(event.received_at - sent) * 1000:.0f} ms]")
                    shown_ttfa = True
                if self.output is not None:
                    self.output.buffer.push(decode_samples(event.data, fmt["encoding"]))
            elif isinstance(event, PhraseEvent) and event.text.strip():
                self.say(f"bot: {event.text.strip()}")
        if self.output is not None:
            self.output.buffer.end()
            await self.output.drained()
            buffer = self.output.buffer
            self.say(f"[played {buffer.played_ms / 1000:.2f} s, {buffer.underruns} underruns]")

    async def run(self, lines: asyncio.Queue[str | None]) -> int:
        self.say(f"voicewire chat — engine {self.client.ready['engine']}, "
                 f"LLM {self.args.llm_url or 'offline scripted responder'}. {HELP}")
        speaking: tuple[ReplySpeech, asyncio.Task] | None = None
        while True:
            line = await lines.get()
            if speaking is not None:
                speech, task = speaking
                speaking = None
                if not task.done() and line is not None:
                    await self.barge_in(speech, task)
                else:
                    await self.finish(speech, task)
            if line is None:
                return 0
            line = line.strip()
            if not line:
                continue
            if line.startswith("/"):
                if not self.command(line):
                    return 0
                continue
            speaking = self.start_reply(line)

    def start_reply(self, line: str) -> tuple[ReplySpeech, asyncio.Task]:
        self.state.history.append({"role": "user", "content": line})
        if self.output is not None:
            self.output.buffer.clear()
        speech = speak_stream(self.client, self.reply_deltas(), voice=self.state.voice,
                              generation=self.state.generation)
        self.state.turns += 1
        return speech, asyncio.create_task(self.turn(speech))

    async def finish(self, speech: ReplySpeech, task: asyncio.Task) -> None:
        """Let the reply play out, then record it in the history."""
        try:
            await task
        except ServerError as exc:
            self.say(f"[voicewire error: {exc}]")
        reply = await speech.wait()
        self.state.history.append({"role": "assistant", "content": reply.text})

    async def barge_in(self, speech: ReplySpeech, task: asyncio.Task) -> None:
        """The user typed while the bot spoke: stop it, keep only what was heard in the history."""
        played_ms = None
        if self.output is not None:
            played_ms = self.output.buffer.played_ms
            self.output.buffer.clear()
        await speech.cancel()
        try:
            await task
        except ServerError as exc:
            self.say(f"[voicewire error: {exc}]")
        reply = await speech.wait()
        heard = reply.heard_at(played_ms) if played_ms is not None else reply.text_spoken
        self.say(f"[interrupted after {len(heard.split())} of {len(reply.text.split())} words]")
        if heard.strip():
            self.state.history.append({"role": "assistant", "content": heard})


class NoAudioOutput(Exception):
    """The speakers cannot be opened; the chat says so instead of failing mid-conversation."""


async def chat(args: argparse.Namespace, url: str, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    async with await VoicewireClient.connect(url, api_key=args.api_key) as client:
        await client.init(output_format={"encoding": "pcm_f32le", "sample_rate": args.sample_rate})
        lines = _lines(asyncio.get_running_loop(), stdin)
        if args.no_play:
            return await Chat(args, client, None, out).run(lines)
        import sounddevice

        from clients.playback import SpeakerOutput

        device = int(args.device) if args.device and args.device.isdigit() else args.device
        try:
            output = SpeakerOutput(args.sample_rate, device, args.prebuffer_ms)
        except sounddevice.PortAudioError as exc:
            raise NoAudioOutput(f"no usable audio output ({exc}); pick one with --device, or use --no-play") from exc
        with output:
            return await Chat(args, client, output, out).run(lines)


def run_chat(args: argparse.Namespace) -> int:
    url = args.url or ""
    try:
        url = resolve(args)
        return asyncio.run(chat(args, url))
    except NoAudioOutput as exc:
        print(f"chat: {exc}", file=sys.stderr)
        return 1
    except CONNECTION_ERRORS as exc:
        print(f"chat: {describe_failure(exc, url)}", file=sys.stderr)
        return 1
