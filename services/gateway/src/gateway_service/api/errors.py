"""The gateway's errors as RFC 9457 problem+json, in one place."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from taskmesh_common.errors import problem_response

from gateway_service.domain.errors import (
    GatewayError,
    HeadersTooLarge,
    PayloadTooLarge,
    RateLimited,
    RateLimiterUnavailable,
    UpstreamCircuitOpen,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnreachable,
)

__all__ = ["gateway_problem", "install_gateway_errors"]

# Most specific first: the first matching class decides.
_MAPPING: tuple[tuple[type[GatewayError], int, str], ...] = (
    (RateLimited, 429, "rate-limited"),
    (RateLimiterUnavailable, 503, "rate-limiter-unavailable"),
    (PayloadTooLarge, 413, "payload-too-large"),
    (HeadersTooLarge, 431, "request-header-fields-too-large"),
    (UpstreamCircuitOpen, 503, "upstream-circuit-open"),
    (UpstreamTimeout, 504, "upstream-timeout"),
    # A stopped service is "unavailable, retry shortly" to a client, as when its breaker opens.
    (UpstreamUnreachable, 503, "upstream-unavailable"),
    (UpstreamError, 502, "bad-gateway"),
)


def gateway_problem(exc: GatewayError, headers: dict[str, str] | None = None) -> JSONResponse:
    status, slug = 500, "internal-error"
    for cls, mapped_status, mapped_slug in _MAPPING:
        if isinstance(exc, cls):
            status, slug = mapped_status, mapped_slug
            break
    all_headers = dict(headers or {})
    if exc.retry_after is not None:
        all_headers["Retry-After"] = str(max(1, exc.retry_after))
    extra = {"upstream": exc.upstream} if isinstance(exc, UpstreamError) else {}
    return problem_response(status, str(exc), slug=slug, headers=all_headers, **extra)


def install_gateway_errors(app: FastAPI) -> None:
    async def handler(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, GatewayError)
        return gateway_problem(exc)

    app.add_exception_handler(GatewayError, handler)
