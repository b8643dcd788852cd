"""A real voicewire server in its own process, for benchmarks, with its CPU use sampled by psutil.

The server runs in a separate process (not a thread of the benchmark) so the client's decoding and
the baselines' synthesis never share its interpreter lock, and so psutil can attribute CPU time to
it alone. It is the real app under uvicorn, bound to 127.0.0.1; only the engine construction is the
benchmark's (a random-weight Chatterbox with a fixed token budget needs that).

    python -m benchmarks.server --spec '{"name": "piper"}' --port 8799
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from .engines import EngineSpec, load_engine

HOST = "127.0.0.1"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class CpuSample:
    server: float  # server process, fraction of the whole machine (1.0 = every core busy)
    machine: float  # every process, same scale: shows other load on a shared machine


@dataclass
class CpuMonitor:
    """Samples the server's and the machine's CPU utilisation on a thread while a scenario runs."""

    pid: int
    interval_s: float = 0.5
    samples: list[CpuSample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> CpuMonitor:
        self.samples.clear()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        proc = psutil.Process(self.pid)
        cores = psutil.cpu_count() or 1
        proc.cpu_percent(None)
        psutil.cpu_percent(None)
        while True:
            stopped = self._stop.wait(self.interval_s)
            # The last sample covers the partial interval, so a scenario shorter than one interval
            # still gets a reading.
            self.samples.append(
                CpuSample(proc.cpu_percent(None) / 100 / cores, psutil.cpu_percent(None) / 100)
            )
            if stopped:
                return

    def summary(self) -> dict[str, float | None]:
        if not self.samples:
            return {"server_mean": None, "server_max": None, "machine_mean": None}
        server = [s.server for s in self.samples]
        return {
            "server_mean": sum(server) / len(server),
            "server_max": max(server),
            "machine_mean": sum(s.machine for s in self.samples) / len(self.samples),
        }


class ServerProcess:
    """`python -m benchmarks.server` for the length of a `with` block; ready once /healthz answers."""

    def __init__(
        self,
        spec: EngineSpec,
        port: int | None = None,
        workers: int = 0,
        start_timeout_s: float = 900.0,
        wait: bool = True,
    ) -> None:
        self.spec = spec
        self.port = port or free_port()
        self.workers = workers
        self.start_timeout_s = start_timeout_s
        self.wait = wait
        self._proc: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(
            "w+", prefix="voicewire-bench-server-", suffix=".log", delete=False
        )

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/v1/stream"

    @property
    def pid(self) -> int:
        assert self._proc is not None, "enter the context first"
        return self._proc.pid

    def __enter__(self) -> ServerProcess:
        """Start the process; wait until it serves unless `wait=False` leaves `wait_ready()` to the caller."""
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.server",
            "--spec",
            self.spec.to_json(),
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        self._proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=Path(__file__).parent.parent
        )
        if self.wait:
            try:
                self.wait_ready()
            except BaseException:
                self.__exit__()
                raise
        return self

    def wait_ready(self) -> None:
        assert self._proc is not None, "enter the context first"
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"benchmark server exited ({self._proc.returncode}):\n{self.log_tail()}")
            try:
                if httpx.get(f"http://{HOST}:{self.port}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"benchmark server not up after {self.start_timeout_s:g} s:\n{self.log_tail()}"
                )
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if not self._log.closed:
            self._log.close()
            os.unlink(self._log.name)

    def log_tail(self, chars: int = 4000) -> str:
        self._log.flush()
        return Path(self._log.name).read_text()[-chars:]


def serve(spec: EngineSpec, port: int, workers: int) -> None:
    import uvicorn

    from stream.server.app import create_app
    from stream.server.runtime import build_runtime
    from stream.settings import Settings

    data_dir = tempfile.mkdtemp(prefix="voicewire-bench-")
    engine = load_engine(spec, data_dir)
    settings = Settings(
        host=HOST,
        port=port,
        engine=spec.name,
        data_dir=data_dir,
        workers=workers,
        model_dir=spec.checkpoint,
        device=spec.device,
    )
    runtime = build_runtime(settings, engine=engine)
    uvicorn.run(
        create_app(runtime),
        host=HOST,
        port=port,
        ws="stream.server.ws_protocol:WebSocketProtocol",
        ws_max_size=settings.limits.max_frame_bytes * 2,
        log_level="warning",
        timeout_graceful_shutdown=3,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.server",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--spec", required=True, help="EngineSpec as JSON")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=0, help="inference threads (0: the server's default)")
    args = parser.parse_args(argv)
    serve(EngineSpec.from_json(args.spec), args.port, args.workers)


if __name__ == "__main__":
    main()
