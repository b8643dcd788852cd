"""TTFA through the ElevenLabs-compatible `stream-input` websocket next to voicewire's own
`/v1/stream`, on one Piper server, the same replies on the same token schedule, alternating which
goes first reply by reply (issue 17: the compat driver must cost no latency).

    python -m benchmarks.compat_ttfa                 # the 36-reply corpus, one pass
    python -m benchmarks.compat_ttfa --replies 4     # a smoke run

Both sides are measured the same way at the client: the deltas are sent on the schedule, the audio
is decoded (16-bit PCM at the engine's rate on both) and speech onset is found by `measure_turn`.
Writes results/compat-ttfa-piper.json and prints the markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import time

import numpy as np
import websockets

from clients import VoicewireClient

from .corpus import Reply, select
from .engines import EngineSpec
from .measure import Arrival, TurnAudio, measure_turn, summarize
from .report import RESULTS, machine, now_utc, uptime, write_json
from .scenario import Pacing, Schedule, schedule, stream_turn
from .server import ServerProcess

GENERATION = {"exaggeration": 0.5, "temperature": 0.667}


async def elevenlabs_turn(base: str, rate: int, sched: Schedule) -> float | None:
    """One reply over `stream-input` as an ElevenLabs client streams it; client-side speech-onset TTFA (ms)."""
    url = f"{base}/elevenlabs/v1/text-to-speech/default/stream-input?output_format=pcm_{rate}"
    async with websockets.connect(url, max_size=2**24) as ws:
        await ws.send(json.dumps({"text": " ", "voice_settings": None}))
        arrivals: list[Arrival] = []
        pieces: list[np.ndarray] = []
        t0: float | None = None

        async def send() -> None:
            nonlocal t0
            start = time.monotonic()
            for delta, offset in zip(sched.deltas, sched.offsets, strict=True):
                if (wait := start + offset - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                if t0 is None:
                    t0 = time.monotonic()
                await ws.send(json.dumps({"text": delta}))
            await ws.send(json.dumps({"text": ""}))

        sender = asyncio.create_task(send())
        async for frame in ws:
            message = json.loads(frame)
            if message.get("audio"):
                samples = np.frombuffer(base64.b64decode(message["audio"]), dtype="<i2").astype(np.float32) / 32768
                arrivals.append(Arrival(time.monotonic() - (t0 or time.monotonic()), samples.size))
                pieces.append(samples)
            if message.get("isFinal"):
                break
        await sender
    if not pieces:
        return None
    return measure_turn(TurnAudio(tuple(arrivals), np.concatenate(pieces), rate), (0.1,)).ttfa_ms


async def voicewire_turn(url: str, reply: Reply, sched: Schedule, pacing: Pacing) -> float | None:
    async with await VoicewireClient.connect(url) as client:
        await client.init(output_format={"encoding": "pcm_s16le"})
        return (await stream_turn(client, reply, sched, pacing, GENERATION, (0.1,))).ttfa_ms


async def run(server: ServerProcess, rate: int, replies: list[Reply], pacing: Pacing, seed: int) -> list[dict]:
    base = f"ws://127.0.0.1:{server.port}"
    warm = replies[0]
    await voicewire_turn(server.ws_url, warm, schedule(warm.text, pacing, seed), pacing)
    await elevenlabs_turn(base, rate, schedule(warm.text, pacing, seed))
    rows = []
    for i, reply in enumerate(replies):
        sched = schedule(reply.text, pacing, seed + i)
        sides = {"v1_stream": lambda s=sched, r=reply: voicewire_turn(server.ws_url, r, s, pacing),
                 "elevenlabs": lambda s=sched: elevenlabs_turn(base, rate, s)}
        order = list(sides) if i % 2 == 0 else list(reversed(sides))
        ttfa = {name: await sides[name]() for name in order}
        rows.append({"reply": reply.id, "first": order[0], **{f"{k}_ttfa_ms": v for k, v in ttfa.items()}})
        print(f"{reply.id:24s} /v1/stream {ttfa['v1_stream']:7.1f} ms  elevenlabs {ttfa['elevenlabs']:7.1f} ms",
              flush=True)
    return rows


def table(rows: list[dict]) -> str:
    paired = [r for r in rows if r["v1_stream_ttfa_ms"] is not None and r["elevenlabs_ttfa_ms"] is not None]
    v1 = summarize(r["v1_stream_ttfa_ms"] for r in paired)
    el = summarize(r["elevenlabs_ttfa_ms"] for r in paired)
    diff = summarize(r["elevenlabs_ttfa_ms"] - r["v1_stream_ttfa_ms"] for r in paired)
    return "\n".join([
        "| path | turns | TTFA p50 ms | TTFA p90 ms |",
        "|---|---|---|---|",
        f"| `/v1/stream` | {len(paired)} | {v1['p50']:.0f} | {v1['p90']:.0f} |",
        f"| ElevenLabs `stream-input` | {len(paired)} | {el['p50']:.0f} | {el['p90']:.0f} |",
        f"| **difference per reply** (ElevenLabs − `/v1/stream`) | {len(paired)} | **{diff['p50']:+.1f}** | "
        f"{diff['p90']:+.1f} |",
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compat_ttfa", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replies", type=int, default=None, help="only the first N replies (a smoke run)")
    parser.add_argument("--tokens-per-second", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    pacing = Pacing(tokens_per_second=args.tokens_per_second, jitter=0.3)
    load_before = uptime()
    with ServerProcess(EngineSpec(name="piper")) as server:
        rate = 22050  # Piper's rate: neither side resamples
        rows = asyncio.run(run(server, rate, select(limit=args.replies), pacing, args.seed))
    load_after = uptime()
    write_json(RESULTS / "compat-ttfa-piper.json", {"date": now_utc(), "machine": machine(), "uptime_before":
                                                    load_before, "uptime_after": load_after, "pacing": vars(pacing),
                                                    "turns": rows})
    print(f"\nuptime before: {load_before}\nuptime after:  {load_after}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
