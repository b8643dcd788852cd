"""voicewire on Ray Serve: the same FastAPI app as `voicewire serve`, as replicas behind Serve's proxy.

Each replica is one server process: it loads its own engine in its constructor, names itself with
its Serve replica id (in `ready`, `/healthz`, `/metrics` and logs), and shares keys, credits, voices
and per-key session counts with the others through `--database-url`. Serve's HTTP proxy carries the
websockets (`/v1/stream` and the compatibility routes), the HTTP API and each replica's `/metrics`.

Two Serve facts shape the deployment (docs/deploy.md, "Several replicas"):
- An open websocket holds one of its replica's `max_ongoing_requests` slots for its whole life
  (tests/cluster/test_ray_serve.py shows it), so the slots are the session budget plus room for
  HTTP requests; with no room, a replica full of sessions would queue its own `/metrics`.
- Serve has no "stopping" callback: on scale-down or redeploy it stops routing to the replica, waits
  while requests are open (websockets included), then runs the destructor. So the replica watches
  its own state in the Serve controller and starts the runtime's drain the moment it turns
  STOPPING: readiness fails, open turns finish, sessions close with `shutting_down`, and Serve's
  wait ends because the websockets did.

`build` is the Serve application builder (`deploy/serve.yaml`, `serve run`); `run_local` backs
`voicewire serve --ray`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from dataclasses import fields, replace

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stream.server.ray_autoscaling import POLICY_PATH, SESSIONS_METRIC
from stream.settings import Limits, Settings, from_env

log = logging.getLogger("voicewire")

APP_NAME = "voicewire"
DEPLOYMENT_NAME = "voicewire"
STOP_POLL_S = 0.5          # how often a replica asks the controller whether it is being stopped
CLOSE_MARGIN_S = 15.0      # graceful-shutdown time past the drain: final messages (5 s), reading them (10 s)
SETTINGS_FIELDS = ("engine", "model_dir", "device", "dtype", "data_dir", "database_url", "workers",
                   "watermark", "drain_timeout_s", "log_level")


class ServeArgs(BaseModel):
    """The application's arguments (`args:` in deploy/serve.yaml, or `key=value` after `serve run`).

    Unset server fields come from `VOICEWIRE_*` variables, as for `voicewire serve`."""

    model_config = ConfigDict(extra="forbid")

    engine: str | None = None
    model_dir: str | None = None
    device: str | None = None
    dtype: str | None = None
    data_dir: str | None = None
    database_url: str | None = Field(None, description="shared by every replica: postgresql://... or one "
                                     "machine's sqlite:///ABSOLUTE/PATH")
    workers: int | None = None
    watermark: bool | None = None
    drain_timeout_s: float | None = None
    log_level: str | None = None
    api_keys: list[str] | None = None
    max_sessions: int | None = Field(None, ge=1, description="each replica's session budget")
    limits: dict[str, float] = Field(default_factory=dict, description="other Limits fields by name "
                                     "(docs/limits.md), e.g. {max_http_body_bytes: 100000}")
    http_slots: int = Field(16, ge=0, description="max_ongoing_requests above the session budget: room "
                            "for HTTP requests (voices, one-shot speech, /metrics) on a replica full of sessions")
    replicas: int = Field(1, ge=1, description="replicas at start, and the autoscaler's minimum")
    max_replicas: int | None = Field(None, ge=1, description="autoscale up to this many; unset = fixed")
    sessions_per_replica: float = Field(8.0, gt=0, description="autoscaling target: open sessions per replica")
    upscale_delay_s: float = Field(10.0, ge=0)
    downscale_delay_s: float = Field(300.0, ge=0)
    look_back_period_s: float = Field(30.0, gt=0, description="the autoscaler averages sessions over this")
    metrics_interval_s: float = Field(10.0, gt=0, description="how often a replica reports its sessions; "
                                      "below look_back_period_s")
    num_cpus: float = Field(1.0, ge=0, description="per replica; Piper's threads")
    num_gpus: float = Field(0.0, ge=0, description="per replica; 1 for Chatterbox")

    def settings(self) -> Settings:
        settings = from_env()
        for name in SETTINGS_FIELDS:
            if (value := getattr(self, name)) is not None:
                setattr(settings, name, value)
        if self.api_keys is not None:
            settings.api_keys = tuple(self.api_keys)
        for name, value in self.limits.items():
            current = getattr(settings.limits, name)
            setattr(settings.limits, name, type(current)(value))
        if self.max_sessions is not None:
            settings.limits.max_sessions = self.max_sessions
        return settings

    @field_validator("limits")
    @classmethod
    def _known_limits(cls, limits: dict[str, float]) -> dict[str, float]:
        known = {f.name for f in fields(Limits)}
        if unknown := sorted(set(limits) - known):
            raise ValueError(f"limits: no such limit {', '.join(unknown)} (docs/limits.md lists them)")
        return limits


def deployment_options(args: ServeArgs, settings: Settings) -> dict:
    """Serve's options for the replicas: slots, resources, autoscaling on sessions, drain time."""
    top = max(args.max_replicas or args.replicas, args.replicas)
    return {
        "name": DEPLOYMENT_NAME,
        "max_ongoing_requests": settings.limits.max_sessions + args.http_slots,
        "ray_actor_options": {"num_cpus": args.num_cpus, "num_gpus": args.num_gpus},
        # always an autoscaling config (min = max = replicas for a fixed count): Serve 2.55 gathers a
        # replica's own metrics (`record_autoscaling_stats`) only for autoscaling deployments
        "autoscaling_config": {
            "min_replicas": args.replicas,
            "initial_replicas": args.replicas,
            "max_replicas": top,
            "target_ongoing_requests": args.sessions_per_replica,
            "upscale_delay_s": args.upscale_delay_s,
            "downscale_delay_s": args.downscale_delay_s,
            "look_back_period_s": args.look_back_period_s,
            "metrics_interval_s": args.metrics_interval_s,
            "policy": {"policy_function": POLICY_PATH},
        },
        "graceful_shutdown_wait_loop_s": STOP_POLL_S,
        "graceful_shutdown_timeout_s": settings.drain_timeout_s + CLOSE_MARGIN_S,
        "health_check_period_s": 5.0,
    }


def _replica_class():
    """The deployment class, built on first use so that importing this module needs no Ray."""
    from ray import serve

    from stream.server.app import create_app
    from stream.server.log_redaction import configure_logging
    from stream.server.runtime import Runtime, build_runtime

    built: list[Runtime] = []   # the constructor's runtime, for the app builder Serve calls right after it

    def app():
        return create_app(built[-1])

    @serve.ingress(app)
    class VoicewireReplica:
        """One server process: its own engine, runtime and sessions; the shared state is the database."""

        async def __init__(self, settings: Settings) -> None:
            self.replica_id = serve.get_replica_context().replica_id
            settings = replace(settings, replica=self.replica_id.unique_id)   # `serve status` shows the same id
            configure_logging(settings.log_level, settings.api_keys, settings.replica)
            self.runtime = build_runtime(settings)
            built.append(self.runtime)
            self._watch = asyncio.create_task(self._drain_when_stopping())

        async def record_autoscaling_stats(self) -> dict[str, float]:
            return {SESSIONS_METRIC: float(self.runtime.active_sessions())}

        async def _drain_when_stopping(self) -> None:
            while not await _is_stopping(self.replica_id):
                await asyncio.sleep(STOP_POLL_S)
            log.info("replica %s: Serve is stopping it; draining", self.runtime.replica)
            await self.runtime.drain(self.runtime.settings.drain_timeout_s)

    return VoicewireReplica


async def _is_stopping(replica_id) -> bool:
    """Whether the Serve controller has this replica in STOPPING (scale-down, redeploy, delete).

    Serve offers no public "you are being stopped" signal to a replica; the controller's deployment
    details (what `serve status -v` prints) list each replica's state. An unreachable controller
    counts as not stopping: the replica keeps serving, and Serve's own timeout still ends it."""
    import ray
    from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

    deployment = replica_id.deployment_id
    try:
        controller = ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
        details = await controller.get_deployment_details.remote(deployment.app_name, deployment.name)
    except Exception as exc:  # controller restarting, or the deployment already gone
        log.debug("replica state unknown: %s", exc)
        return False
    states = {r.replica_id: str(getattr(r.state, "value", r.state)) for r in details.replicas}
    return states.get(replica_id.unique_id) == "STOPPING"


def build(args: ServeArgs | dict):
    """Serve's application builder: `serve run stream.server.ray_serve:build engine=piper replicas=2`,
    or `args:` in deploy/serve.yaml (a dict, checked here: a misspelt field is an error, not a default)."""
    from ray import serve

    args = ServeArgs.model_validate(args)
    settings = args.settings()
    options = deployment_options(args, settings)
    return serve.deployment(_replica_class(), **options).bind(settings)


def run_local(args: ServeArgs, host: str, port: int, address: str | None = None) -> int:
    """`voicewire serve --ray`: join the Ray cluster at `address` (or `RAY_ADDRESS`) or start one on
    this machine, deploy, serve on `host:port` until SIGINT/SIGTERM, then let every replica drain."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")   # nothing leaves the machine unless asked
    import ray
    from ray import serve

    started = not (address or os.environ.get("RAY_ADDRESS"))
    if started:
        ray.init(include_dashboard=False, _node_ip_address="127.0.0.1" if _loopback(host) else None)
    else:
        ray.init(address=address or os.environ["RAY_ADDRESS"])
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        serve.start(http_options={"host": host, "port": port})
        serve.run(build(args), name=APP_NAME, route_prefix="/")
        url = f"{host}:{port}"
        log.info("Ray Serve: %d replica(s) of %s; websocket: ws://%s/v1/stream, metrics per replica: "
                 "http://%s/metrics", args.replicas, DEPLOYMENT_NAME, url, url)
        stop.wait()
        log.info("stopping: replicas drain (up to %g s)", args.settings().drain_timeout_s + CLOSE_MARGIN_S)
        serve.delete(APP_NAME)
        if started:
            serve.shutdown()
    finally:
        if started:
            ray.shutdown()
    return 0


def _loopback(host: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
