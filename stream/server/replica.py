"""This server process's name among replicas: in `ready`, `/healthz`, `/readyz`, metrics and every log line.

Behind a load balancer or Ray Serve's proxy, clients and operators need to see which process
answered. The name comes from `--replica-name` / `VOICEWIRE_REPLICA` (the Ray deployment passes its
replica id), else `<hostname>-<pid>`, unique on one machine and readable across several.
"""

from __future__ import annotations

import logging
import os
import socket

from stream.settings import Settings


def replica_name(settings: Settings) -> str:
    """The configured name, or `<hostname>-<pid>`."""
    if settings.replica and settings.replica.strip():
        return settings.replica.strip()
    return f"{socket.gethostname()}-{os.getpid()}"


class ReplicaField(logging.Filter):
    """A handler filter that gives every record a `replica` attribute, so formats can show `%(replica)s`."""

    def __init__(self, replica: str = "") -> None:
        super().__init__()
        self.replica = replica

    def filter(self, record: logging.LogRecord) -> bool:
        record.replica = self.replica
        return True
