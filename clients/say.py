"""`voicewire say`: stream text through a running server, print TTFA, write a WAV and/or play it."""

from __future__ import annotations

import argparse
import asyncio
import sys

from .client import DEFAULT_URL, ServerError, VoicewireClient
from .tokens import llm_deltas, paced

GENERATION_FIELDS = ("exaggeration", "temperature", "cfg_weight", "min_p", "top_p", "repetition_penalty", "seed")


def add_say_parser(sub: argparse._SubParsersAction) -> None:
    say = sub.add_parser("say", help="speak text through a running voicewire server")
    say.add_argument("text", nargs="?", help="text to speak (default: read stdin)")
    say.add_argument("--url", default=DEFAULT_URL, help=f"server websocket URL (default {DEFAULT_URL})")
    say.add_argument("--api-key", help="API key, when the server requires one")
    say.add_argument("-o", "--output", help="write the audio to this WAV file")
    say.add_argument("--play", action="store_true", help="play through the default output device (sounddevice)")
    say.add_argument("--tokens-per-second", type=float, default=0.0,
                     help="simulate an LLM: send the text as token deltas at this rate (0 = all at once)")
    say.add_argument("--voice", help="voice id or name")
    say.add_argument("--encoding", default="pcm_s16le", choices=("pcm_s16le", "pcm_f32le", "mulaw", "alaw"))
    say.add_argument("--sample-rate", type=int, help="output sample rate (default: the engine's)")
    for name in GENERATION_FIELDS:
        say.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int if name == "seed" else float)
    say.set_defaults(func=run_say)


async def say(args: argparse.Namespace, text: str) -> int:
    async with await VoicewireClient.connect(args.url, api_key=args.api_key) as client:
        fmt = {"encoding": args.encoding}
        if args.sample_rate:
            fmt["sample_rate"] = args.sample_rate
        await client.init(output_format=fmt)
        generation = {n: getattr(args, n) for n in GENERATION_FIELDS if getattr(args, n) is not None} or None
        deltas = paced(llm_deltas(text), args.tokens_per_second) if args.tokens_per_second else [text]
        result = await client.speak(deltas, voice=args.voice, generation=generation)
    done = result.final
    print(f"engine {client.ready['engine']}; client TTFA {result.ttfa_ms or 0:.0f} ms; "
          f"server TTFA {getattr(done, 'ttfa_ms', None) or 0:.0f} ms; "
          f"audio {getattr(done, 'audio_ms', 0) / 1000:.2f} s in {len(result.phrases)} phrases", file=sys.stderr)
    if args.output:
        result.write_wav(args.output)
        print(f"wrote {args.output}", file=sys.stderr)
    if args.play:
        import sounddevice

        sounddevice.play(result.samples(), result.sample_rate, blocking=True)
    return 0


def run_say(args: argparse.Namespace) -> int:
    text = args.text if args.text is not None else sys.stdin.read()
    if not text.strip():
        print("say: no text given", file=sys.stderr)
        return 2
    try:
        return asyncio.run(say(args, text))
    except ServerError as exc:
        print(f"say: server error {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"say: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
