"""Ray Serve's replica count from open websocket sessions, not from in-flight HTTP requests.

Each replica reports its open sessions (`SESSIONS_METRIC`, from `Runtime.active_sessions`) through
Serve's `record_autoscaling_stats`; Serve averages each replica's reports over `look_back_period_s`
and calls `sessions_policy` on its controller. The policy wants enough replicas for every open
session at `target_ongoing_requests` sessions per replica; Serve itself applies `min_replicas`,
`max_replicas` and the upscale/downscale delays around it. Plain Python on a context object, so it
runs in the controller without loading voicewire's server (and is tested without Ray).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ray.serve.config import AutoscalingContext

SESSIONS_METRIC = "sessions"
POLICY_PATH = "stream.server.ray_autoscaling:sessions_policy"


def sessions_policy(ctx: AutoscalingContext) -> tuple[int, dict[str, Any]]:
    """Replicas needed for the open sessions, `ctx.config.target_ongoing_requests` per replica.

    Before any replica has reported (just deployed, or metrics not pushed yet) the current target
    stands: no report is not the same as no sessions."""
    per_replica = (ctx.aggregated_metrics or {}).get(SESSIONS_METRIC)
    if not per_replica:
        return ctx.target_num_replicas, {}
    sessions = sum(per_replica.values())
    target = ctx.config.target_ongoing_requests or 1.0
    return math.ceil(sessions / target), {}
