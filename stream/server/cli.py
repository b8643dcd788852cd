"""The server's commands: `serve` runs the server, `keys` manages API keys and credits, `db` moves
the database between backends.

`stream.cli` (the `voicewire` console script) adds the client commands; `python -m stream.server.cli`
runs the server's commands alone."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import fields

from stream.deadline import deadline
from stream.engines.registry import ENGINE_NAMES
from stream.settings import Settings, from_env

SHUTDOWN_GRACE_S = 5.0  # on SIGTERM, after the drain, open sessions get this long for their final messages
CLOSE_DRAIN_S = 10.0  # then this long for clients to read what is buffered and answer the close frame


def _serve(args: argparse.Namespace) -> int:
    if args.ray:
        return _serve_on_ray(args)
    import ipaddress

    from stream.engines.registry import EngineLoadError
    from stream.server.app import create_app
    from stream.server.log_redaction import configure_logging
    from stream.server.replica import replica_name
    from stream.server.runtime import build_runtime
    from stream.server.serving import startup_lines, uvicorn_config
    from stream.storage import DatabaseUrlError, StorageUnavailable

    settings = from_env()
    for name in ("host", "port", "engine", "model_dir", "device", "dtype", "data_dir", "database_url", "workers",
                 "replica", "drain_timeout_s", "batch_rows", "sampler"):
        value = getattr(args, name)
        if value is not None:
            setattr(settings, name, value)
    if args.api_key:
        settings.api_keys = tuple(args.api_key)
    if args.no_watermark:
        settings.watermark = False
    if args.batching is not None:
        settings.batching = args.batching == "on"
    if args.chatterbox_serial:
        settings.batching = False
    settings.replica = replica_name(settings)
    configure_logging(settings.log_level, settings.api_keys, settings.replica)   # before anything logs: redacted
    log = logging.getLogger("voicewire")
    try:
        runtime = build_runtime(settings)
    except (EngineLoadError, DatabaseUrlError, StorageUnavailable) as exc:
        log.error("cannot start: %s", exc)
        return 2
    log.info("engine %s (%s), model %s, %d Hz", runtime.engine.name, runtime.engine_reason,
             runtime.engine.model, runtime.engine.sample_rate)
    try:
        loopback = ipaddress.ip_address(settings.host).is_loopback
    except ValueError:
        loopback = settings.host == "localhost"
    if not runtime.auth.required and not loopback:
        log.warning("no API keys configured and bound to %s: anyone who can reach it can use it", settings.host)
    for line in startup_lines(settings, runtime.auth):
        log.info("%s", line)
    config = uvicorn_config(create_app(runtime), settings)
    _graceful_server(config, runtime).run()
    return 0


def _serve_on_ray(args: argparse.Namespace) -> int:
    """`serve --ray`: the same server as replicas on Ray Serve (stream/server/ray_serve.py)."""
    from pydantic import ValidationError

    from stream.server.log_redaction import configure_logging

    settings = from_env()
    configure_logging(settings.log_level, tuple(args.api_key or ()) or settings.api_keys)
    try:
        from stream.server.ray_serve import ServeArgs, run_local
    except ImportError as exc:
        logging.getLogger("voicewire").error("--ray needs the cluster extra (pip install 'voicewire[cluster]'): %s", exc)
        return 2
    given = {name: getattr(args, name, None) for name in ("engine", "model_dir", "device", "dtype", "data_dir",
                                                          "database_url", "workers", "max_replicas", "drain_timeout_s")}
    try:
        serve_args = ServeArgs(**{k: v for k, v in given.items() if v is not None}, replicas=args.replicas,
                               api_keys=args.api_key, watermark=False if args.no_watermark else None)
    except ValidationError as exc:
        first = exc.errors()[0]
        logging.getLogger("voicewire").error("cannot start: %s: %s", ".".join(map(str, first["loc"])), first["msg"])
        return 2
    return run_local(serve_args, args.host or settings.host, args.port or settings.port, args.ray_address)


def _graceful_server(config, runtime):
    """uvicorn's server, except that on SIGTERM/SIGINT the runtime drains (`Runtime.drain`: open turns
    finish up to `--drain-timeout`, then `cancelled` per open context, `shutting_down`, close 1001)
    before uvicorn drops sockets."""
    import asyncio
    import time

    import uvicorn
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    class GracefulServer(uvicorn.Server):
        async def shutdown(self, sockets=None) -> None:
            log = logging.getLogger("voicewire")
            for server in self.servers:  # no new sessions while the open ones finish
                server.close()
            started = time.monotonic()
            told = runtime.active_sessions()
            grace = runtime.settings.drain_timeout_s + SHUTDOWN_GRACE_S
            try:
                async with deadline(grace):
                    await runtime.drain()
            except asyncio.TimeoutError:
                log.warning("sessions not told within %g s; dropping them", grace)
            # uvicorn's own shutdown closes every socket at once, and a process that exits with
            # bytes still in a socket's user-space buffer loses them: a slow reader would see the
            # stream end without its final messages. Let clients finish the close handshake first.
            until = time.monotonic() + CLOSE_DRAIN_S
            while (open_ws := self._websockets()) and time.monotonic() < until:
                await asyncio.sleep(0.05)
            log.info("shutdown: %d session(s) told in %.2f s; %d websocket(s) still open", told,
                     time.monotonic() - started, len(open_ws))
            await super().shutdown(sockets)

        def _websockets(self) -> list:
            return [c for c in self.server_state.connections if isinstance(c, WebSocketsSansIOProtocol)]

    return GracefulServer(config)


# `serve --ray` flags choose how many servers run and where, not one server's settings: no variable
RAY_FLAGS = ("ray", "replicas", "max_replicas", "ray_address")
# flags whose variable is not simply VOICEWIRE_<DEST>
ENV_OF_FLAG = {"api_key": "VOICEWIRE_API_KEYS, comma-separated", "no_watermark": "VOICEWIRE_WATERMARK=0",
               "chatterbox_serial": "VOICEWIRE_BATCHING=0"}


def _name_env_vars(parser: argparse.ArgumentParser) -> None:
    """End each flag's help with its `VOICEWIRE_*` variable, from the Settings field the flag sets, so
    `serve --help` and `from_env` cannot disagree."""
    env = {f.name: f"VOICEWIRE_{f.name.upper()}" for f in fields(Settings)} | ENV_OF_FLAG
    for action in parser._actions:
        if action.dest in env:
            action.help = f"{action.help} (env {env[action.dest]})"


def add_server_commands(sub: argparse._SubParsersAction) -> None:
    """Register `serve`, `keys` and `db`, the commands that run or manage a server on this machine."""
    serve = sub.add_parser("serve", help="run the streaming server")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8765)")
    serve.add_argument("--engine", choices=ENGINE_NAMES,
                       help="TTS engine; auto = chatterbox with CUDA and weights, else piper")
    serve.add_argument("--model-dir", dest="model_dir", help="local Chatterbox checkpoint folder")
    serve.add_argument("--device", help="cuda, cpu or mps (default: cuda when available)")
    serve.add_argument("--dtype", help="float32, float16 or bfloat16 (GPU)")
    serve.add_argument("--data-dir", dest="data_dir", help="voices, keys and caches (default ~/.voicewire)")
    serve.add_argument("--database-url", dest="database_url",
                       help="keys, voices and usage: sqlite:///ABSOLUTE/PATH or "
                       "postgresql://USER:PASSWORD@HOST:PORT/DATABASE (default <data-dir>/voicewire.sqlite3)")
    serve.add_argument("--workers", type=int, help="inference threads (default: auto)")
    serve.add_argument("--batching", choices=("on", "off"),
                       help="Chatterbox: run every session's phrases in one continuous batch per device "
                            "(default on; Turbo always runs serially)")
    serve.add_argument("--chatterbox-serial", action="store_true",
                       help="Chatterbox: one phrase per worker thread, as before batching (same as --batching off)")
    serve.add_argument("--batch-rows", dest="batch_rows", type=int,
                       help="batching: decoding rows, the KV pool's size; a request with CFG takes 2 "
                            "(default 32 on CUDA, else 4)")
    serve.add_argument("--sampler", choices=("package", "counter"),
                       help="Chatterbox without batching: package draws the package's tokens for a seed "
                            "(torch.multinomial, default); counter draws the batched runner's (its counter-based "
                            "sampler), so a seed gives the same tokens with and without batching")
    serve.add_argument("--api-key", action="append", help="require this API key (repeatable)")
    serve.add_argument("--no-watermark", action="store_true", help="do not watermark output")
    serve.add_argument("--ray", action="store_true",
                       help="run as replicas on Ray Serve behind its proxy (docs/deploy.md; the cluster extra)")
    serve.add_argument("--replicas", type=int, default=1, help="with --ray: replicas (autoscaling minimum)")
    serve.add_argument("--max-replicas", dest="max_replicas", type=int,
                       help="with --ray: autoscale on open sessions up to this many replicas")
    serve.add_argument("--ray-address", dest="ray_address",
                       help="with --ray: join this Ray cluster (default RAY_ADDRESS, else start one here)")
    serve.add_argument("--replica-name", dest="replica",
                       help="this process's name in ready, /healthz and logs (default <hostname>-<pid>)")
    serve.add_argument("--drain-timeout", dest="drain_timeout_s", type=float,
                       help="on SIGTERM, seconds open turns get to finish before sessions close (default 10)")
    _name_env_vars(serve)
    serve.set_defaults(func=_serve)

    from stream.server.db_command import add_db_parser
    from stream.server.keys_command import add_keys_parser

    add_keys_parser(sub)
    add_db_parser(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicewire", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add_server_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
