"""`voicewire say`: stream text through a running server, print TTFA, write a WAV and/or play it."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import get_args

from pydantic.fields import FieldInfo

from stream.core.protocol import GenerationSettings

from .client import VoicewireClient
from .endpoint import CONNECTION_ERRORS, add_server_options, describe_failure, resolve
from .tokens import llm_deltas, paced

# what each per-turn setting does; ranges and defaults come from the wire model, so help never drifts
GENERATION_HELP = {
    "exaggeration": "expressiveness",
    "temperature": "sampling temperature",
    "cfg_weight": "classifier-free guidance weight",
    "min_p": "min-p sampling",
    "top_p": "nucleus sampling",
    "repetition_penalty": "repetition penalty",
    "seed": "same seed, same audio on engines whose ready.capabilities.deterministic_seed is true",
    "language": "language tag for multilingual engines",
    "speed": "speaking rate, where the engine supports it",
}
GENERATION_FIELDS = tuple(GenerationSettings.model_fields)
METAVARS = {float: "X", int: "N", str: "TAG"}


def _bounds(info: FieldInfo) -> tuple[object, object]:
    """The field's (ge, le) from its pydantic constraints."""
    low = next((m.ge for m in info.metadata if getattr(m, "ge", None) is not None), None)
    high = next((m.le for m in info.metadata if getattr(m, "le", None) is not None), None)
    return low, high


def generation_help(name: str) -> str:
    """`meaning, range (default …)` for one generation flag, read off `GenerationSettings`."""
    info = GenerationSettings.model_fields[name]
    low, high = _bounds(info)
    if name == "seed":
        span = "integer >= 0"
    elif low is not None and high is not None:
        span = f"{low:g}-{high:g}"
    else:
        span = "e.g. en, fr, pt-BR"
    default = "random" if name == "seed" else "the engine's" if info.default is None else f"{info.default:g}"
    return f"{GENERATION_HELP[name]}; {span} (default {default})"


def _type(name: str) -> type:
    """The flag's value type: the field's type without its `None`."""
    annotation = GenerationSettings.model_fields[name].annotation
    return next(t for t in (get_args(annotation) or (annotation,)) if t is not type(None))


def add_say_parser(sub: argparse._SubParsersAction) -> None:
    say = sub.add_parser("say", help="speak text through a running voicewire server")
    say.add_argument("text", nargs="?", help="text to speak (default: read stdin)")
    add_server_options(say)
    say.add_argument("-o", "--output", help="write the audio to this WAV file")
    say.add_argument("--play", action="store_true", help="play through the default output device (sounddevice)")
    say.add_argument("--tokens-per-second", type=float, default=0.0,
                     help="simulate an LLM: send the text as token deltas at this rate (0 = all at once)")
    say.add_argument("--voice", help="voice id or name")
    say.add_argument("--encoding", default="pcm_s16le", choices=("pcm_s16le", "pcm_f32le", "mulaw", "alaw"))
    say.add_argument("--sample-rate", type=int, help="output sample rate (default: the engine's)")
    settings = say.add_argument_group("generation settings (per turn; unset = the server's default)")
    for name in GENERATION_FIELDS:
        settings.add_argument(f"--{name.replace('_', '-')}", dest=name, type=_type(name),
                              metavar=METAVARS[_type(name)], help=generation_help(name))
    say.set_defaults(func=run_say)


async def say(args: argparse.Namespace, text: str, url: str) -> int:
    async with await VoicewireClient.connect(url, api_key=args.api_key) as client:
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
    url = args.url or ""
    try:
        url = resolve(args)
        return asyncio.run(say(args, text, url))
    except CONNECTION_ERRORS as exc:
        print(f"say: {describe_failure(exc, url)}", file=sys.stderr)
        return 1
