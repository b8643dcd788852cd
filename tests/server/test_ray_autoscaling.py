"""The autoscaling policy: replicas for the open sessions, on a context shaped like Serve's."""

from __future__ import annotations

from dataclasses import dataclass, field

from stream.server.ray_autoscaling import SESSIONS_METRIC, sessions_policy


@dataclass
class Config:
    target_ongoing_requests: float


@dataclass
class Context:
    target_num_replicas: int
    config: Config
    aggregated_metrics: dict = field(default_factory=dict)


def test_enough_replicas_for_the_open_sessions_at_the_target_each():
    ctx = Context(1, Config(8), {SESSIONS_METRIC: {"a": 8.0, "b": 9.0}})
    assert sessions_policy(ctx) == (3, {})


def test_no_sessions_wants_none_and_serve_keeps_its_minimum():
    assert sessions_policy(Context(2, Config(8), {SESSIONS_METRIC: {"a": 0.0, "b": 0.0}}))[0] == 0


def test_before_any_report_the_current_target_stands():
    assert sessions_policy(Context(2, Config(8), {}))[0] == 2
    assert sessions_policy(Context(3, Config(8), {SESSIONS_METRIC: {}}))[0] == 3
