"""A real PostgreSQL server for tests, from the Debian package, in a temporary directory.

`initdb` and `postgres` refuse to run as root (CI's user), so both run as the `postgres` user
(`runuser`) in a directory it owns, listening on 127.0.0.1 on a free port and on a unix socket in
that directory, with `fsync=off` (a test database need not survive a power cut). One server serves
the whole test session; each test gets a database of its own (`fresh_database`). `stop` and `start`
let a fault test take the server away and bring it back on the same port.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

START_TIMEOUT_S = 30


def binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder, or None when the package is absent."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


def unavailable_reason() -> str | None:
    """Why no server can be started here, or None when one can."""
    if binaries() is None:
        return "PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb); scripts/test installs it"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser, and PostgreSQL refuses to run as root"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self) -> None:
        bindir = binaries()
        assert bindir is not None, unavailable_reason()
        self._bin = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="voicewire-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                  "--no-sync", "-N")
        self.start()

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess:
        command = [str(self._bin / tool), *args]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        """A URL of a database on this server (trust auth: any password is accepted)."""
        user = "postgres" if password is None else f"postgres:{password}"
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        self._run("pg_ctl", "start", "-D", str(self.data), "-w", "-t", str(START_TIMEOUT_S),
                  "-l", str(self.dir / "postgres.log"), "-o", options)

    def stop(self) -> None:
        """Shut down now (`-m fast`): open connections are cut, as when the database restarts."""
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w")

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def fresh_database(self) -> str:
        """Create an empty database; its URL."""
        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self.running:
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_until(predicate, timeout_s: float, what: str) -> None:
    """Poll `predicate` until it is true; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        time.sleep(0.01)
