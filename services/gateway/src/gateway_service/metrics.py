"""The gateway's own Prometheus metrics (requests by route and status come from taskmesh_common)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BREAKER_STATE",
    "RATELIMIT_BATCH_SIZE",
    "RATELIMIT_DECISIONS",
    "REDIS_FAILURES",
    "UPSTREAM_DURATION",
]

UPSTREAM_DURATION = Histogram(
    "gateway_upstream_duration_seconds",
    "Time from sending a request upstream to having its whole answer",
    ["upstream", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BREAKER_STATE = Gauge(
    "gateway_breaker_state",
    "Circuit breaker state per upstream route group (auth, auth-credentials, tasks, analytics):"
    " 0 closed, 1 half-open, 2 open",
    ["upstream"],
)
RATELIMIT_DECISIONS = Counter(
    "gateway_ratelimit_decisions_total",
    "Rate-limit decisions by policy: allowed, denied, or failed_open/failed_closed (Redis away)",
    ["policy", "decision"],
)
REDIS_FAILURES = Counter(
    "gateway_redis_failures_total",
    "Rate-limiter calls to Redis that failed or timed out",
)
RATELIMIT_BATCH_SIZE = Histogram(
    "gateway_ratelimit_batch_size",
    "Rate-limit decisions asked of Redis in one script call (one turn of the event loop)",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
