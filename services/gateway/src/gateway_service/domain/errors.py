"""What can go wrong at the edge, free of HTTP; api/errors.py maps it to problem+json.

GatewayError
 ├── RateLimited             a policy's quota is spent
 ├── RateLimiterUnavailable  Redis is away and the limiter fails closed
 ├── PayloadTooLarge         the request body is over the limit
 └── UpstreamError           the upstream did not give an answer
      ├── UpstreamCircuitOpen  its breaker is open (or a half-open probe is in flight)
      ├── UpstreamUnreachable  connection refused, reset or dropped
      └── UpstreamTimeout      no answer within the timeouts or the deadline
"""

from __future__ import annotations

__all__ = [
    "GatewayError",
    "PayloadTooLarge",
    "RateLimited",
    "RateLimiterUnavailable",
    "UpstreamCircuitOpen",
    "UpstreamError",
    "UpstreamTimeout",
    "UpstreamUnreachable",
]


class GatewayError(Exception):
    # Seconds a client should wait before trying again, when that is known.
    retry_after: int | None = None


class RateLimited(GatewayError):
    def __init__(self, policy: str, retry_after: int) -> None:
        super().__init__(f"rate limit {policy!r} exceeded; retry in {retry_after}s")
        self.policy = policy
        self.retry_after = retry_after


class RateLimiterUnavailable(GatewayError):
    retry_after = 1

    def __init__(self) -> None:
        super().__init__("the rate limiter is unavailable; try again shortly")


class PayloadTooLarge(GatewayError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body exceeds {limit} bytes")
        self.limit = limit


class HeadersTooLarge(GatewayError):
    def __init__(self, max_bytes: int, max_count: int) -> None:
        super().__init__(f"request headers exceed {max_bytes} bytes or {max_count} fields in total")


class UpstreamError(GatewayError):
    def __init__(self, upstream: str, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.upstream = upstream
        self.retry_after = retry_after


class UpstreamCircuitOpen(UpstreamError):
    def __init__(self, upstream: str, retry_after: int) -> None:
        super().__init__(
            upstream, f"the {upstream} service is unavailable; retry in {retry_after}s", retry_after
        )


class UpstreamUnreachable(UpstreamError):
    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, f"the {upstream} service cannot be reached", 2)


class UpstreamTimeout(UpstreamError):
    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, f"the {upstream} service did not answer in time", 2)
