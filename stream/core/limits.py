"""Per-session and per-server limits: plain values the core enforces and `ready.limits` reports.

They are set, with every other tunable, through `stream.settings.Settings` (CLI flags and env).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass
class Limits:
    """Per-session and per-server limits; each breach maps to one protocol error code."""

    max_contexts_per_session: int = 8          # too_many_contexts
    max_text_chars_per_context: int = 20_000   # text_too_long
    max_frame_bytes: int = 4 * 1024 * 1024     # message_too_large (close 1009); fits inline clips
    idle_timeout_s: float = 120.0              # idle_timeout (close 1000)
    max_sessions: int = 256                    # rate_limited at connect (close 1013)
    max_sessions_per_key: int = 32             # rate_limited at connect (close 1013)
    messages_per_second: float = 200.0         # rate_limited (token bucket, burst = 2 s worth)
    max_reference_bytes: int = 10 * 1024 * 1024
    max_reference_seconds: float = 60.0
    min_reference_seconds: float = 1.0
    reference_fetch_timeout_s: float = 10.0    # HTTP API: the whole fetch of a reference_audio URL
    reference_url_ttl_s: float = 300.0         # HTTP API: a fetched clip is reused this long, then revalidated
    max_http_body_bytes: int = 16 * 1024 * 1024  # HTTP API: request body (413); fits a base64 max-size clip
    max_http_header_bytes: int = 64 * 1024   # every HTTP request: request line + headers (431)
    send_buffer_chunks: int = 32               # chunks a synthesis job holds unread before it parks
    stalled_client_timeout_s: float = 30.0     # a client that reads nothing this long is closed
    engine_stall_timeout_s: float = 60.0       # a synthesis with no chunk this long fails its context (internal)

    def to_wire(self) -> dict:
        return dataclasses.asdict(self)
