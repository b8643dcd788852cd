"""Prometheus metrics, on a registry of their own so several servers can live in one process (tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

TTFA_BUCKETS = (0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.ttfa = Histogram("voicewire_ttfa_seconds", "Server-side TTFA: first text of a context to its first audio sent",
                              buckets=TTFA_BUCKETS, registry=r)
        self.engine_first_chunk = Histogram("voicewire_engine_first_chunk_seconds",
                                            "Phrase handed to the engine until its first audio chunk",
                                            buckets=TTFA_BUCKETS, registry=r)
        self.replica_info = Gauge("voicewire_replica_info", "This server process; the label is its replica name",
                                  ["replica"], registry=r)
        self.draining = Gauge("voicewire_draining", "1 once this replica drains (refuses new sessions)", registry=r)
        self.active_sessions = Gauge("voicewire_active_sessions", "Open websocket sessions", registry=r)
        self.active_contexts = Gauge("voicewire_active_contexts", "Open contexts over all sessions", registry=r)
        self.audio_seconds = Counter("voicewire_audio_seconds", "Seconds of audio sent", registry=r)
        self.characters = Counter("voicewire_characters", "Characters of text synthesized", registry=r)
        self.contexts = Counter("voicewire_contexts", "Contexts finished, by outcome", ["outcome"], registry=r)
        self.errors = Counter("voicewire_errors", "Errors sent to clients, by code", ["code"], registry=r)
        self.http_requests = Counter("voicewire_http_requests", "HTTP synthesis requests, by endpoint and status",
                                     ["endpoint", "status"], registry=r)
        self.compat_ignored = Counter("voicewire_compat_ignored_fields",
                                      "Accepted-and-ignored parameters/fields on the compat endpoints "
                                      "(docs/compat.md); names outside that list count as 'other'",
                                      ["endpoint", "field"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
