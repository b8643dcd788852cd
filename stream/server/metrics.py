"""Prometheus metrics, on a registry of their own so several servers can live in one process (tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from stream.inference.observer import EngineObserver

TTFA_BUCKETS = (0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)
STEP_BUCKETS = (0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)


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

        # The engine's own scheduling (the batching executor reports through `EngineObserver`).
        self.engine_batch_rows = Histogram("voicewire_engine_batch_rows",
                                           "Rows in each batched decode step (a request with CFG is 2)",
                                           buckets=BATCH_BUCKETS, registry=r)
        self.engine_flush_batch = Histogram("voicewire_engine_flush_batch", "Requests flushed together in one step",
                                            buckets=BATCH_BUCKETS, registry=r)
        self.engine_step_seconds = Histogram("voicewire_engine_step_seconds",
                                             "One scheduler iteration: prefill chunks, the decode step, its flushes",
                                             buckets=STEP_BUCKETS, registry=r)
        self.engine_queue_wait = Histogram("voicewire_engine_queue_wait_seconds",
                                           "A phrase's wait for decoding rows, submit to admission",
                                           buckets=TTFA_BUCKETS, registry=r)
        self.engine_deadline_misses = Counter("voicewire_engine_deadline_misses",
                                              "Chunks delivered after their listener's audio ran out", registry=r)

    def engine_observer(self) -> EngineObserver:
        """The executor's hook into these metrics."""
        return _EngineMetrics(self)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _EngineMetrics:
    """`EngineObserver` onto the server's metrics (called from the executor's thread; prometheus is thread-safe)."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def decode_step(self, rows: int, seconds: float) -> None:
        self._m.engine_batch_rows.observe(rows)
        self._m.engine_step_seconds.observe(seconds)

    def flush_batch(self, requests: int) -> None:
        self._m.engine_flush_batch.observe(requests)

    def queue_wait(self, seconds: float) -> None:
        self._m.engine_queue_wait.observe(seconds)

    def deadline_miss(self) -> None:
        self._m.engine_deadline_misses.inc()
