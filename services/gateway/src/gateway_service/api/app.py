"""The composition root of the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.middleware import Middleware
from taskmesh_common.app import create_service_app
from taskmesh_common.security import TokenVerifier

from gateway_service.adapters.openapi_source import OpenApiCatalog
from gateway_service.adapters.ratelimiter import RateLimiter, create_limiter_redis
from gateway_service.adapters.upstream import UpstreamClient, create_session
from gateway_service.config import Settings
from gateway_service.domain.routing import route_template

from .console import install_console
from .edge import EdgeMiddleware
from .errors import install_gateway_errors
from .negotiation import CorsAndGzip
from .security_headers import SecurityHeadersMiddleware

__all__ = ["create_app"]

_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def create_app(
    settings: Settings | None = None, *, verifier: TokenVerifier | None = None
) -> FastAPI:
    """The gateway app; `verifier` replaces the JWKS-over-HTTP verifier (tests)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        session = create_session(settings)
        upstreams = UpstreamClient(settings, session)
        redis = create_limiter_redis(
            settings.redis_url,
            settings.rate_limit_redis_timeout_seconds,
            settings.rate_limit_redis_pool_size,
        )
        # The verifier keeps its own session: JWKS answers may be compressed, ours are not
        # decompressed on purpose.
        token_verifier = verifier or TokenVerifier.from_settings(settings)
        app.state.upstreams = upstreams
        app.state.verifier = token_verifier
        app.state.limiter = RateLimiter(
            redis,
            prefix=settings.redis_prefix,
            timeout_seconds=settings.rate_limit_redis_timeout_seconds,
            backoff_seconds=settings.rate_limit_redis_backoff_seconds,
            fail_open=settings.rate_limit_fail_open,
        )
        app.state.openapi = OpenApiCatalog(
            session,
            upstreams.urls,
            refresh_seconds=settings.openapi_refresh_seconds,
            timeout_seconds=settings.openapi_fetch_timeout_seconds,
            title="taskmesh API",
            version=app.version,
        )
        await app.state.limiter.warm_up()
        # Readiness is Redis only: a dead upstream is the breaker's business, and taking
        # every gateway out of rotation for it would turn one outage into a total one.
        app.state.readiness.add("redis", redis.ping)
        app.state.readiness.add_details("upstreams", upstreams.breaker_details)
        try:
            yield
        finally:
            await session.close()
            await token_verifier.aclose()
            await app.state.limiter.aclose()

    # The proxied paths never reach the router: their spans are named by route_template.
    app = create_service_app(
        settings,
        title="taskmesh gateway",
        lifespan=lifespan,
        route_of=lambda scope: route_template(scope.get("path", "")),
    )
    install_gateway_errors(app)

    # The merged document replaces FastAPI's own (which would list only health routes).
    app.router.routes = [
        r for r in app.router.routes if getattr(r, "path", None) != app.openapi_url
    ]

    async def openapi(request: Request) -> JSONResponse:
        catalog: OpenApiCatalog = request.app.state.openapi
        return JSONResponse(await catalog.document())

    app.add_route("/openapi.json", openapi, include_in_schema=False)
    install_console(app, settings.console_dir)

    # Innermost last: request ids (taskmesh_common) → security headers → CORS and gzip →
    # edge checks → routes. Appending keeps ours inside the request-id middleware, so even
    # a 429 or 401 made here carries X-Request-ID.
    app.user_middleware.extend(
        [
            Middleware(SecurityHeadersMiddleware, hsts=settings.hsts_header),
            Middleware(
                CorsAndGzip,
                allow_origins=settings.allowed_origins,
                allow_methods=_ALL_METHODS,
                allow_headers=[
                    "Authorization",
                    "Content-Type",
                    "Idempotency-Key",
                    "If-Match",
                    "If-None-Match",
                    "X-Request-ID",
                    "traceparent",
                    "tracestate",
                ],
                expose_headers=[
                    "ETag",
                    "Location",
                    "Retry-After",
                    "RateLimit",
                    "RateLimit-Policy",
                    "X-Request-ID",
                ],
                max_age=600,
                gzip_minimum_size=settings.gzip_minimum_bytes,
                gzip_level=5,
            ),
            Middleware(EdgeMiddleware),
        ]
    )
    return app
