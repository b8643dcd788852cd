"""One real local Ray cluster per test session, with voicewire deployed on Ray Serve.

Everything binds 127.0.0.1, usage statistics are off (`RAY_USAGE_STATS_ENABLED=0`: nothing leaves the
machine), no dashboard. The cluster declares 6 logical CPUs so two Piper replicas, a rolling redeploy
and an autoscaled third fit on a 2-core machine (each replica asks for 0.5). The replicas share a
real PostgreSQL database (tests/postgres_server.py), or a SQLite file where PostgreSQL is not
installed (one machine: SQLite works across processes too)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stream.server.ray_serve import APP_NAME, DEPLOYMENT_NAME, build
from tests.conftest import LocalUrls, free_port

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"   # before Ray is imported: nothing leaves the machine
try:
    import ray
    from ray import serve
except ImportError:   # the cluster extra (ray[serve]) is not installed: nothing here can run
    collect_ignore_glob = ["test_*.py"]

LOGICAL_CPUS = 6
DEPLOY_TIMEOUT_S = 120


@dataclass(frozen=True)
class Replica:
    id: str
    state: str
    pid: int | None


@dataclass
class Cluster(LocalUrls):
    port: int
    data_dir: Path
    database_url: str
    base_args: dict
    deployed: dict | None = field(default=None)
    api_key: str = ""     # an unlimited key: a key in the database turns authentication on for everyone

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key}

    def deploy(self, **overrides) -> None:
        """(Re)deploy with the base arguments plus `overrides` and wait until it runs; a no-op when
        that is what runs. Each real deploy is a new version: Serve replaces every replica."""
        args = self.base_args | overrides
        if args == self.deployed:
            return
        serve.run(build(args), name=APP_NAME, route_prefix="/")
        self.deployed = args

    def replicas(self) -> list[Replica]:
        from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

        controller = ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
        details = ray.get(controller.get_deployment_details.remote(APP_NAME, DEPLOYMENT_NAME))
        return [Replica(r.replica_id, str(getattr(r.state, "value", r.state)), r.pid) for r in details.replicas]

    def running(self) -> list[Replica]:
        return [r for r in self.replicas() if r.state == "RUNNING"]

    def wait_for(self, predicate, timeout: float = DEPLOY_TIMEOUT_S, what: str = "cluster state"):
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            if result := predicate():
                return result
            time.sleep(0.25)
        raise AssertionError(f"{what} not reached within {timeout:g} s: {self.replicas()}")

    def keys(self, *argv: str) -> dict | list | str:
        """`voicewire keys ...` against the replicas' database, as an operator would run it."""
        json_flag = ["--json"] if argv[0] in ("create", "list") else []
        out = subprocess.run([sys.executable, "-m", "stream.server.cli", "keys", *argv,
                              "--database-url", self.database_url, *json_flag],
                             check=True, capture_output=True, text=True, timeout=60).stdout
        return json.loads(out) if out.strip().startswith(("{", "[")) else out


def _database_url(request: pytest.FixtureRequest, data: Path) -> str:
    from tests.postgres_server import unavailable_reason

    if unavailable_reason() is None:
        return request.getfixturevalue("postgres_server").fresh_database()
    return f"sqlite:///{data / 'voicewire.sqlite3'}"


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Cluster]:
    data = tmp_path_factory.mktemp("cluster")
    database_url = _database_url(request, data)
    ray.init(num_cpus=LOGICAL_CPUS, include_dashboard=False, _node_ip_address="127.0.0.1",
             logging_level="warning", log_to_driver=False)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    base = {"engine": "piper", "data_dir": str(data), "database_url": database_url, "workers": 1, "replicas": 2,
            "num_cpus": 0.5, "max_sessions": 8, "drain_timeout_s": 20.0, "log_level": "warning",
            "limits": {"max_http_body_bytes": 100_000}}   # as tests/server/test_hostile_http.py
    handle = Cluster(port, data, database_url, base)
    handle.api_key = handle.keys("create", "--name", "tests")["key"]
    try:
        yield handle
    finally:
        serve.shutdown()
        ray.shutdown()


@pytest.fixture
def two_replicas(cluster: Cluster) -> Cluster:
    """The base deployment: two Piper replicas, both running."""
    cluster.deploy()
    cluster.wait_for(lambda: len(cluster.running()) == 2 and len(cluster.replicas()) == 2, what="two replicas")
    return cluster
