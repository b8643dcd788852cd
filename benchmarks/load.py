"""Load and soak: N concurrent voice-agent sessions of realistic turns against a real server.

Each session streams assistant replies at an LLM token rate, listens to the audio in real time (the
next turn starts once the previous one has "played" plus a think pause), and mixes in barge-ins
(`cancel` part-way) and abrupt disconnects (socket dropped mid-turn, then a reconnect). Every turn is
checked: a `done` turn's phrases must spell exactly the text sent, a `cancelled` one's
`text_spoken + text_remaining` must; audio `seq` must run 0, 1, 2, ... Anything else, and any `error`
frame, is counted. The server's RSS is sampled from /proc while it runs; `rss_mb.after_warmup` says
whether it stays flat once warm (first/last/max after `--warmup-s`, least-squares slope in MB/min,
checkpoints), and the last line printed sums it up.

    python -m benchmarks.load --sessions 64 --duration 600 --json soak.json   # starts its own piper server
    python -m benchmarks.load --url ws://127.0.0.1:8765/v1/stream --pid 1234   # an already running one
    python -m benchmarks.load --server-env MALLOC_ARENA_MAX=2                  # the started server's env
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import websockets

from benchmarks.corpus import select
from clients.tokens import llm_deltas

HOST = "127.0.0.1"
KEEPALIVE_S = 20.0


@dataclass
class Stats:
    turns_done: int = 0
    turns_cancelled: int = 0
    disconnects: int = 0
    errors: Counter = field(default_factory=Counter)          # error code (or a client-side failure) -> count
    coverage_violations: list[str] = field(default_factory=list)
    timeouts_at_s: list[float] = field(default_factory=list)  # when turns timed out (into the run)
    ttfa_ms: list[float] = field(default_factory=list)        # client side: first text sent -> first audio in
    server_ttfa_ms: list[float] = field(default_factory=list)
    audio_s: float = 0.0
    characters: int = 0


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def cpu_s(pid: int) -> float | None:
    """User + system CPU seconds the process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 1)
    except (OSError, IndexError, ValueError):
        return None


def rss_mb(pid: int, field: str = "VmRSS") -> float | None:
    """Resident memory now (VmRSS), or the highest it has been (VmHWM), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


class Turn:
    """One context: what was sent and what came back, checked against the protocol's invariants."""

    def __init__(self, context_id: str) -> None:
        self.id = context_id
        self.sent: list[str] = []
        self.phrases: list[str] = []
        self.next_seq = 0
        self.first_text_at: float | None = None
        self.first_audio_at: float | None = None
        self.final: dict | None = None
        self.finished = asyncio.Event()

    def on_message(self, msg: dict, stats: Stats) -> None:
        kind = msg["type"]
        if kind == "phrase":
            self.phrases.append(msg["text"])
        elif kind == "audio":
            if msg["seq"] != self.next_seq:
                stats.coverage_violations.append(f"{self.id}: audio seq {msg['seq']}, expected {self.next_seq}")
            self.next_seq = msg["seq"] + 1
            if self.first_audio_at is None:
                self.first_audio_at = time.monotonic()
        elif kind in ("done", "cancelled"):
            self.final = msg
            self.finished.set()

    def check(self, stats: Stats) -> None:
        sent = "".join(self.sent)
        msg = self.final
        assert msg is not None
        if msg["type"] == "done":
            if "".join(self.phrases) != sent:
                stats.coverage_violations.append(f"{self.id}: phrases do not spell the text sent")
            stats.turns_done += 1
            stats.audio_s += msg["audio_ms"] / 1000
            stats.characters += msg["characters"]
            if msg["ttfa_ms"] is not None:
                stats.server_ttfa_ms.append(msg["ttfa_ms"])
            if self.first_audio_at is not None and self.first_text_at is not None:
                stats.ttfa_ms.append((self.first_audio_at - self.first_text_at) * 1000)
        else:
            if msg["text_spoken"] + msg["text_remaining"] != sent:
                stats.coverage_violations.append(f"{self.id}: text_spoken + text_remaining != text sent")
            if not sent.startswith(msg["text_spoken"]) or "".join(self.phrases)[:len(msg["text_spoken"])] != \
                    msg["text_spoken"]:
                stats.coverage_violations.append(f"{self.id}: text_spoken is not what the phrases announced")
            stats.turns_cancelled += 1


class Agent:
    """One simulated voice-agent session (reconnecting after each deliberate disconnect)."""

    def __init__(self, index: int, url: str, deadline: float, args: argparse.Namespace, stats: Stats) -> None:
        self.index = index
        self.url = url
        self.deadline = deadline
        self.args = args
        self.stats = stats
        self.rng = random.Random(args.seed * 1000 + index)
        self.replies = [r.text for r in select(tuple(args.kinds))]
        self.turn_no = 0

    async def run(self) -> None:
        await asyncio.sleep(self.rng.uniform(0, self.args.ramp_s))
        while time.monotonic() < self.deadline:
            try:
                await self._session()
            except (OSError, websockets.WebSocketException, asyncio.TimeoutError) as exc:
                self.stats.errors[f"client:{type(exc).__name__}"] += 1
                await asyncio.sleep(1.0)

    async def _session(self) -> None:
        async with websockets.connect(self.url, max_size=2**25, open_timeout=30, close_timeout=5) as ws:
            ready = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if ready.get("type") != "ready":
                self.stats.errors[ready.get("code", "no_ready")] += 1
                await asyncio.sleep(1.0)
                return
            turns: dict[str, Turn] = {}
            reader = asyncio.create_task(self._read(ws, turns))
            try:
                while time.monotonic() < self.deadline:
                    if not await self._turn(ws, turns, reader):
                        return  # dropped the socket on purpose; reconnect
            finally:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)

    async def _read(self, ws, turns: dict[str, Turn]) -> None:
        async for raw in ws:
            msg = json.loads(raw)
            if msg["type"] == "error":
                self.stats.errors[msg["code"]] += 1
                turn = turns.get(msg.get("context_id") or "")
                if turn is not None:  # that context ends with no final message
                    turn.finished.set()
                continue
            turn = turns.get(msg.get("context_id") or "")
            if turn is not None:
                turn.on_message(msg, self.stats)

    async def _turn(self, ws, turns: dict[str, Turn], reader: asyncio.Task) -> bool:
        """Speak one reply; False if this turn ended by dropping the connection."""
        self.turn_no += 1
        turn = Turn(f"s{self.index}-t{self.turn_no}")
        turns[turn.id] = turn
        deltas = llm_deltas(self.rng.choice(self.replies))
        roll = self.rng.random()
        stop_at = self.rng.randrange(1, len(deltas) + 1)
        cancel = roll < self.args.cancel_rate
        disconnect = not cancel and roll < self.args.cancel_rate + self.args.disconnect_rate
        for i, delta in enumerate(deltas):
            if (cancel or disconnect) and i == stop_at or time.monotonic() > self.deadline:
                break  # a reply cut short at the deadline is ended as it stands
            if turn.first_text_at is None:
                turn.first_text_at = time.monotonic()
            turn.sent.append(delta)
            await ws.send(json.dumps({"type": "text", "context_id": turn.id, "text": delta}))
            await asyncio.sleep(self.rng.expovariate(self.args.tokens_per_second))
        if disconnect:
            await asyncio.sleep(self.rng.uniform(0, 1.0))  # mid-phrase, usually
            self.stats.disconnects += 1
            ws.transport.abort()  # no close frame: the server sees the TCP connection vanish
            return False
        await ws.send(json.dumps({"type": "cancel" if cancel else "end", "context_id": turn.id}))
        finished = asyncio.create_task(turn.finished.wait())
        await asyncio.wait({finished, reader}, timeout=self.args.turn_timeout_s, return_when=asyncio.FIRST_COMPLETED)
        if not finished.done():
            finished.cancel()
            self.stats.errors["client:closed" if reader.done() else "client:turn_timeout"] += 1
            self.stats.timeouts_at_s.append(round(time.monotonic() - (self.deadline - self.args.duration), 1))
            return False
        del turns[turn.id]
        if turn.final is not None:
            turn.check(self.stats)
        if self.args.realtime and turn.final is not None and turn.first_audio_at is not None \
                and time.monotonic() < self.deadline:
            # The user hears the reply out before answering.
            played = time.monotonic() - turn.first_audio_at
            await self._listen(ws, max(0.0, turn.final["audio_ms"] / 1000 - played))
        await self._listen(ws, self.rng.uniform(*self.args.think_s))
        return True

    async def _listen(self, ws, seconds: float) -> None:
        """Wait like an agent whose user is listening or talking: keepalives hold off the idle timeout."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            await asyncio.sleep(min(left, KEEPALIVE_S))
            if until - time.monotonic() > 0:
                await ws.send(json.dumps({"type": "keepalive"}))


async def sample_rss(pid: int | None, started: float, interval: float, out: list[tuple[float, float, float | None]],
                     stop: asyncio.Event) -> None:
    """(seconds since start, server RSS MB, server CPU seconds used) every `interval`."""
    while pid is not None and not stop.is_set():
        value = rss_mb(pid)
        if value is not None:
            out.append((round(time.monotonic() - started, 1), value, cpu_s(pid)))
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except asyncio.TimeoutError:
            pass


def rss_after_warmup(samples: list[tuple[float, float, float | None]], warmup_s: float,
                     load_end_s: float) -> dict | None:
    """Is RSS flat once warm? Samples from `warmup_s` to the deadline (`load_end_s`; the drain of
    turns in flight after it is left out): first, last and highest value, and the least-squares
    slope, with checkpoints every tenth of that span."""
    steady = [(t, v) for t, v, _ in samples if warmup_s <= t <= load_end_s]
    if len(steady) < 2:
        return None
    n = len(steady)
    mean_t = sum(t for t, _ in steady) / n
    mean_v = sum(v for _, v in steady) / n
    var_t = sum((t - mean_t) ** 2 for t, _ in steady)
    slope = sum((t - mean_t) * (v - mean_v) for t, v in steady) / var_t if var_t else 0.0
    step = (steady[-1][0] - steady[0][0]) / 10
    checkpoints = []
    for k in range(11):
        at = steady[0][0] + k * step
        t, v = min(steady, key=lambda s: abs(s[0] - at))
        if not checkpoints or checkpoints[-1][0] != t:
            checkpoints.append((t, v))
    return {"warmup_s": warmup_s, "from_s": steady[0][0], "to_s": steady[-1][0], "first": steady[0][1],
            "last": steady[-1][1], "max": max(v for _, v in steady), "growth": round(steady[-1][1] - steady[0][1], 1),
            "slope_mb_per_min": round(slope * 60, 2), "checkpoints": checkpoints}


def rss_line(report: dict) -> str:
    """One line for people: '... after warm-up (150 s): 940 -> 976 MB at 600 s, slope +3.9 MB/min, ...'."""
    rss = report["rss_mb"]
    warm = rss.get("after_warmup")
    if rss["start"] is None:
        return "RSS: not sampled"
    tail = f"{rss['end']:.0f} MB at the end (after the deadline's drain), max {rss['max']:.0f} MB"
    if rss.get("peak") is not None:
        tail += f", high-water {rss['peak']:.0f} MB"
    if warm is None:
        return f"RSS: {rss['start']:.0f} MB at start, too few samples after warm-up; {tail}"
    return (f"RSS: {rss['start']:.0f} MB at start; after warm-up ({warm['warmup_s']:g} s): {warm['first']:.0f} -> "
            f"{warm['last']:.0f} MB at {warm['to_s']:g} s, slope {warm['slope_mb_per_min']:+.1f} MB/min, max "
            f"{warm['max']:.0f} MB; {tail}")


async def run_load(url: str, pid: int | None, args: argparse.Namespace) -> dict:
    stats = Stats()
    wall_started = time.time()
    started = time.monotonic()
    deadline = started + args.duration
    rss: list[tuple[float, float, float | None]] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(pid, started, args.rss_interval_s, rss, stop))
    agents = [Agent(i, url, deadline, args, stats) for i in range(args.sessions)]
    # Turns in flight at the deadline may finish; they are bounded by the turn timeout.
    await asyncio.wait_for(asyncio.gather(*(a.run() for a in agents)), args.duration + args.turn_timeout_s + 60)
    stop.set()
    await sampler
    peak = rss_mb(pid, "VmHWM") if pid is not None else None
    elapsed = time.monotonic() - started
    load = os.getloadavg()
    warmup_s = args.warmup_s if args.warmup_s is not None else max(args.ramp_s, args.duration / 4)
    return {
        "sessions": args.sessions,
        "duration_s": round(elapsed, 1),
        "turns_done": stats.turns_done,
        "turns_cancelled": stats.turns_cancelled,
        "disconnects": stats.disconnects,
        "errors": dict(stats.errors),
        "error_count": sum(stats.errors.values()),
        "coverage_violations": len(stats.coverage_violations),
        "coverage_examples": stats.coverage_violations[:10],
        "turn_timeouts_at_s": stats.timeouts_at_s,
        "ttfa_ms": {"p50": percentile(stats.ttfa_ms, 0.5), "p95": percentile(stats.ttfa_ms, 0.95),
                    "max": percentile(stats.ttfa_ms, 1.0), "turns": len(stats.ttfa_ms)},
        "server_ttfa_ms": {"p50": percentile(stats.server_ttfa_ms, 0.5),
                           "p95": percentile(stats.server_ttfa_ms, 0.95)},
        "audio_s": round(stats.audio_s, 1),
        "characters": stats.characters,
        "rss_mb": {"start": rss[0][1] if rss else None, "end": rss[-1][1] if rss else None,
                   "max": max(v for _, v, _ in rss) if rss else None, "peak": peak,  # peak: between samples too
                   "after_warmup": rss_after_warmup(rss, warmup_s, args.duration), "samples": rss},
        # Server CPU over the run, in cores (2.0 = both cores of a 2-core machine all the time).
        "server_cpu_cores": round((rss[-1][2] - rss[0][2]) / max(1e-9, rss[-1][0] - rss[0][0]), 2)
        if len(rss) > 1 and rss[0][2] is not None and rss[-1][2] is not None else None,
        "machine": {"cpus": os.cpu_count(), "loadavg_1_5_15_at_end": [round(x, 2) for x in load],
                    "started_at": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(wall_started))},
        "settings": {k: v for k, v in vars(args).items() if k not in ("json",)},
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    """`voicewire serve --engine piper` in its own process, on a free loopback port."""
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="voicewire-load-")
    env = {**os.environ, "VOICEWIRE_MAX_SESSIONS": str(max(256, args.sessions * 2))}
    for assignment in args.server_env:
        name, _, value = assignment.partition("=")
        env[name] = value
    cmd = [sys.executable, "-m", "stream.server.cli", "serve", "--engine", "piper", "--host", HOST, "--port", str(port),
           "--data-dir", data_dir]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE if args.quiet else None)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return proc, f"ws://{HOST}:{port}/v1/stream"
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start within 60 s")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="server to load (default: start a piper server for the run)")
    p.add_argument("--pid", type=int, help="server process id for RSS sampling, with --url")
    p.add_argument("--sessions", type=int, default=16)
    p.add_argument("--duration", type=float, default=20.0, help="seconds of load (turns in flight then finish)")
    p.add_argument("--tokens-per-second", type=float, default=30.0, help="LLM token rate of the replies")
    p.add_argument("--kinds", nargs="+", default=["chat", "npc", "long"], choices=["chat", "npc", "long"],
                   help="reply shapes from benchmarks/corpus.py (long: explanations with lists)")
    p.add_argument("--cancel-rate", type=float, default=0.15, help="fraction of turns cancelled part-way")
    p.add_argument("--disconnect-rate", type=float, default=0.05, help="fraction of turns ended by dropping the socket")
    p.add_argument("--think-s", type=float, nargs=2, default=(0.5, 2.0), help="pause between turns (uniform range)")
    p.add_argument("--no-realtime", dest="realtime", action="store_false",
                   help="do not wait for a turn's audio to play before the next turn")
    p.add_argument("--ramp-s", type=float, default=5.0, help="sessions start spread over this many seconds")
    p.add_argument("--turn-timeout-s", type=float, default=120.0)
    p.add_argument("--rss-interval-s", type=float, default=5.0)
    p.add_argument("--warmup-s", type=float, help="RSS is judged flat or not from here on "
                   "(default: the ramp or a quarter of the duration, whichever is longer)")
    p.add_argument("--workers", type=int, default=0, help="server inference threads (started server only)")
    p.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                   help="environment for the started server, e.g. MALLOC_ARENA_MAX=2 (repeatable)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--quiet", action="store_true", help="hide the started server's log")
    p.add_argument("--json", help="write the report here (default: stdout only)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    proc = None
    url, pid = args.url, args.pid
    if url is None:
        proc, url = start_server(args)
        pid = proc.pid
    try:
        report = asyncio.run(run_load(url, pid, args))
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    if proc is not None:
        report["server_exit_code"] = proc.returncode
    text = json.dumps(report, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    summary = {k: report[k] for k in ("sessions", "duration_s", "turns_done", "turns_cancelled", "disconnects",
                                      "errors", "coverage_violations", "ttfa_ms")}
    summary["rss_mb"] = {k: report["rss_mb"][k] for k in ("start", "end", "max")}
    summary["server_cpu_cores"] = report["server_cpu_cores"]
    print(json.dumps(summary, indent=2))
    print(rss_line(report))
    return 0 if report["error_count"] == 0 and report["coverage_violations"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
