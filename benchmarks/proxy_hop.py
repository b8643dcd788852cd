"""The Ray Serve proxy hop: TTFA and gaps direct to one server vs through Serve's proxy, same run.

    python -m benchmarks.proxy_hop --sessions 1,8 --rounds 3 --sweep 1,2,4,8,16

Two paths to the same engine on this machine: a voicewire server process on its own port (direct),
and one Ray Serve replica of the same app behind Serve's HTTP proxy (stream/server/ray_serve.py).
Each round runs every level on both paths, alternating which goes first, so machine load drifts
alike over both. Reports per level and path p50/p95 TTFA and gaps, and the proxy's cost as
per-reply ratios proxy/direct. Then a sweep through the proxy: the sessions one replica holds before
p95 TTFA exceeds `--p95-bound-ms` (1 s) with no gaps. Writes results/proxy_hop-ENGINE.json.

Ray starts on 127.0.0.1 with usage statistics off and no dashboard.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import tempfile
import time
from collections.abc import Sequence

from . import options
from .concurrency import capacity, level, level_summary, passes, session_levels
from .corpus import select
from .engines import EngineSpec
from .measure import buffer_label
from .report import machine, now_utc, pairwise, to_plain, write_json
from .scenario import TurnRecord
from .server import CpuMonitor, ServerProcess, free_port

PATHS = ("direct", "proxy")


class ServeReplica:
    """One voicewire replica on a local Ray Serve, for the length of a `with` block."""

    def __init__(self, engine: str, workers: int, num_cpus: float, max_sessions: int) -> None:
        self.port = free_port()
        self.args = {"engine": engine, "workers": workers or None, "replicas": 1, "num_cpus": num_cpus,
                     "max_sessions": max_sessions, "log_level": "warning"}

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/stream"

    def __enter__(self) -> ServeReplica:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        import ray
        from ray import serve

        from stream.server.ray_serve import APP_NAME, build

        self._data = tempfile.TemporaryDirectory(prefix="voicewire-proxy-hop-")
        data = self._data.name
        ray.init(include_dashboard=False, _node_ip_address="127.0.0.1", logging_level="warning",
                 log_to_driver=False)
        serve.start(http_options={"host": "127.0.0.1", "port": self.port})
        serve.run(build(self.args | {"data_dir": data, "database_url": f"sqlite:///{data}/voicewire.sqlite3"}),
                  name=APP_NAME, route_prefix="/")
        self.pid = self._replica_pid()
        return self

    @staticmethod
    def _replica_pid() -> int:
        """The replica's process, for the CPU monitor (the controller's view, as `serve status -v`)."""
        import ray
        from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

        from stream.server.ray_serve import APP_NAME, DEPLOYMENT_NAME

        controller = ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
        (replica,) = ray.get(controller.get_deployment_details.remote(APP_NAME, DEPLOYMENT_NAME)).replicas
        return replica.pid

    def __exit__(self, *exc) -> None:
        import ray
        from ray import serve

        serve.shutdown()
        ray.shutdown()
        self._data.cleanup()


async def compare(urls: dict[str, str], spec: EngineSpec, args: argparse.Namespace) -> tuple[list, list]:
    """Every level on both paths, `args.rounds` times, alternating which path goes first."""
    pace, buffers_s = options.pacing(args), options.buffers(args)
    corpus = select(options.kinds(args), args.replies or None)
    for url in urls.values():   # warm-up: the first turn on each path is not measured
        await level(url, 1, spec, corpus, 1, pace, buffers_s, args.seed, 0.0, 0.0)
    turns: list[dict] = []
    got: dict[tuple[int, str], list[TurnRecord]] = {}
    for run in range(args.rounds):
        for n in args.sessions:
            order = PATHS if (run + n) % 2 == 0 else PATHS[::-1]
            for path in order:
                records = await level(urls[path], n, spec, corpus, args.turns, pace, buffers_s,
                                      args.seed + run, args.stagger_ms / 1000, args.think_ms / 1000)
                for t in records:
                    t.path, t.run = path, run
                got.setdefault((n, path), []).extend(records)
                turns += [{"sessions": n, **dataclasses.asdict(t)} for t in records]
    levels = []
    for n in args.sessions:
        entry = {"sessions": n}
        for path in PATHS:
            entry[path] = level_summary(n, got[(n, path)], {}, 0.0)
        entry["proxy_over_direct"] = {metric: pairwise(got[(n, "proxy")], got[(n, "direct")], metric)
                                      for metric in ("ttfa_ms", "ttfb_ms")}
        levels.append(entry)
        ratio = entry["proxy_over_direct"]["ttfa_ms"]["p50"]
        print(f"N={n:3d}  TTFA p50 direct {entry['direct']['ttfa_ms']['p50']:6.0f} ms  "
              f"proxy {entry['proxy']['ttfa_ms']['p50']:6.0f} ms  per-reply ratio p50 "
              f"{'-' if ratio is None else f'{ratio:.3f}'}", flush=True)
    return levels, turns


async def proxy_capacity(url: str, pid: int, spec: EngineSpec, args: argparse.Namespace) -> list[dict]:
    """Levels through the proxy until one fails the bound (p95 TTFA, no gaps in the capacity buffer)."""
    pace, buffers_s = options.pacing(args), options.buffers(args)
    corpus = select(options.kinds(args), args.replies or None)
    buffer = buffer_label(args.capacity_buffer_ms / 1000)
    levels = []
    for n in args.sweep:
        began = time.monotonic()
        with CpuMonitor(pid) as cpu:
            got = await level(url, n, spec, corpus, args.turns, pace, buffers_s, args.seed,
                              args.stagger_ms / 1000, args.think_ms / 1000)
        lv = level_summary(n, got, cpu.summary(), time.monotonic() - began)
        levels.append(lv)
        print(f"proxy N={n:3d}  TTFA p95 {lv['ttfa_ms']['p95']:6.0f} ms  gaps({buffer}) "
              f"{lv['gaps'][buffer]['gaps']}", flush=True)
        if not passes(lv, buffer, args.p95_bound_ms):
            break
    return levels


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.proxy_hop", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_common(parser)
    parser.add_argument("--sessions", type=session_levels, default="1,8", help="levels compared on both paths")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the levels, alternating the paths")
    parser.add_argument("--turns", type=int, default=2, help="turns per session and level")
    parser.add_argument("--sweep", type=session_levels, default="1,2,4,8,12,16,24,32",
                        help="the proxy capacity sweep's levels")
    parser.add_argument("--skip-sweep", action="store_true", help="compare the paths only")
    parser.add_argument("--stagger-ms", type=float, default=2000.0, help="sessions start within this window")
    parser.add_argument("--think-ms", type=float, default=1000.0, help="pause after the listener heard a turn")
    parser.add_argument("--p95-bound-ms", type=float, default=1000.0, help="p95 TTFA bound for the capacity")
    parser.add_argument("--capacity-buffer-ms", type=float, default=100.0, help="jitter buffer for the capacity")
    parser.add_argument("--workers", type=int, default=0, help="inference threads on both paths (0: default)")
    parser.add_argument("--num-cpus", type=float, default=1.0, help="the replica's Ray CPUs (logical)")
    args = parser.parse_args(argv)
    if args.engine != "piper":
        parser.error("--engine: the proxy hop is measured on piper (a replica loads its engine from settings)")
    if args.capacity_buffer_ms / 1000 not in options.buffers(args):
        args.buffers_ms += f",{args.capacity_buffer_ms:g}"
    return args


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse(argv)
    spec = options.engine_spec(args)
    started, env = now_utc(), machine()
    budget = max([*args.sessions, *args.sweep]) + 1
    with ServerProcess(spec, workers=args.workers) as direct, \
            ServeReplica(spec.name, args.workers, args.num_cpus, budget) as replica:
        urls = {"direct": direct.ws_url, "proxy": replica.ws_url}
        levels, turns = asyncio.run(compare(urls, spec, args))
        sweep = [] if args.skip_sweep else asyncio.run(proxy_capacity(replica.ws_url, replica.pid, spec, args))
    buffer = buffer_label(args.capacity_buffer_ms / 1000)
    report = to_plain(options.report_head("proxy_hop", started, env, spec, args) | {
        "settings": {"rounds": args.rounds, "turns_per_session": args.turns, "stagger_ms": args.stagger_ms,
                     "think_ms": args.think_ms, "workers": args.workers, "num_cpus": args.num_cpus},
        "levels": levels,
        "proxy_sweep": sweep,
        "proxy_capacity": capacity(sweep, buffer, args.p95_bound_ms) if sweep else None,
        "turns": turns,
    })
    write_json(args.out / f"{args.name or f'proxy_hop-{spec.name}'}.json", report)
    if report["proxy_capacity"]:
        print(f"sessions per replica through the proxy with p95 TTFA <= {args.p95_bound_ms:g} ms and no gaps "
              f"({buffer}): {report['proxy_capacity']['sessions']}")
    return report


if __name__ == "__main__":
    main()
