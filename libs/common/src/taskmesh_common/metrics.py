"""Prometheus metrics shared by every service (served by taskmesh_common.internal)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["HTTP_REQUESTS", "HTTP_REQUEST_DURATION"]

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests handled, by route template and status",
    ["service", "route", "method", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to handle an HTTP request, by route template and status",
    ["service", "route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
