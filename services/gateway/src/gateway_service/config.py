"""Settings of the gateway (environment variables TASKMESH_*)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, PlainSerializer
from pydantic_settings import NoDecode
from taskmesh_common.settings import BackingServer, ServiceSettings

from gateway_service.domain.ratelimit import Rate, parse_rate

__all__ = ["DEV_CORS_ORIGINS", "RateSetting", "Settings"]


def _to_rate(value: Any) -> Rate:
    return value if isinstance(value, Rate) else parse_rate(str(value))


def _split_origins(value: Any) -> Any:
    # Comma-separated in the environment, a list in code.
    if isinstance(value, str):
        return [origin.strip() for origin in value.split(",") if origin.strip()]
    return value


DEV_CORS_ORIGINS = (
    "http://localhost:3000",
    "http://127.0.0.1:3000",
    "http://localhost:5173",
    "http://127.0.0.1:5173",
)
RateSetting = Annotated[Rate, NoDecode, BeforeValidator(_to_rate), PlainSerializer(str)]


class Settings(ServiceSettings):
    # Redis only (rate limits): production checks no MongoDB or broker URL here.
    uses: ClassVar[frozenset[BackingServer]] = frozenset({"redis"})
    service_name: str = "gateway"
    port: int = 8080
    internal_port: int = 9080
    tasks_url: str = "http://127.0.0.1:8002"
    analytics_url: str = "http://127.0.0.1:8003"

    # Rate limits, `<count>/<second|minute|hour>`.
    rate_limit_user: RateSetting = Rate(600, 60)
    rate_limit_anon: RateSetting = Rate(120, 60)
    rate_limit_auth: RateSetting = Rate(20, 60)
    # Redis away: true lets requests through (logged, counted); false answers 503.
    rate_limit_fail_open: bool = True
    # The limiter's whole Redis round trip is bounded by this, so a hung Redis costs little.
    rate_limit_redis_timeout_seconds: float = Field(default=0.25, gt=0, le=1.0)
    rate_limit_redis_pool_size: int = Field(default=8, ge=1)
    # After a Redis failure the limiter skips Redis this long instead of waiting on every call.
    rate_limit_redis_backoff_seconds: float = Field(default=1.0, ge=0)

    # Per-upstream timeouts: connecting, and waiting between bytes of the answer.
    auth_connect_timeout_seconds: float = Field(default=1.0, gt=0)
    # Auth refuses at once (503 + Retry-After) what its hashing queue cannot clear in
    # TASKMESH_ARGON2_QUEUE_SECONDS (1 s); an admitted login may wait that long twice (verify,
    # then the re-hash of an old hash) plus up to 1 s of slowdown after failed attempts, with
    # hashes of ~25-100 ms and a few MongoDB calls: ~2.3 s at worst. 4 s leaves room for the
    # queue's estimate lagging a machine that slows down; a longer wait is a stuck auth.
    auth_read_timeout_seconds: float = Field(default=4.0, gt=0)
    tasks_connect_timeout_seconds: float = Field(default=1.0, gt=0)
    tasks_read_timeout_seconds: float = Field(default=10.0, gt=0)
    analytics_connect_timeout_seconds: float = Field(default=1.0, gt=0)
    analytics_read_timeout_seconds: float = Field(default=10.0, gt=0)
    # The whole exchange with an upstream, retries included.
    upstream_deadline_seconds: float = Field(default=15.0, gt=0)
    upstream_pool_per_host: int = Field(default=256, ge=1)
    # Below the services' keep_alive_seconds (75 s): the pool drops an idle connection
    # before the upstream closes it, so no request is ever sent on a closing connection.
    upstream_keepalive_seconds: float = Field(default=15.0, gt=0)

    # Retries: idempotent requests only, on connection errors and on an overload answer
    # (503 + Retry-After) whose Retry-After is at most retry_after_max_seconds.
    retry_attempts: int = Field(default=1, ge=0, le=3)
    retry_after_max_seconds: float = Field(default=1.0, ge=0)
    retry_budget_ratio: float = Field(default=0.2, ge=0, le=1)
    retry_budget_min_per_window: int = Field(default=3, ge=0)

    breaker_fail_max: int = Field(default=5, ge=1)
    breaker_reset_timeout_seconds: float = Field(default=10.0, gt=0)

    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    # Headers are never streamed: a client could otherwise make us hold and forward megabytes.
    max_header_bytes: int = Field(default=32 * 1024, ge=1024)
    max_header_count: int = Field(default=100, ge=10)
    gzip_minimum_bytes: int = Field(default=1024, ge=0)
    # Comma-separated in the environment. Unset: the local dev front-ends, except in
    # production, where only the configured origins are allowed (none when unset).
    cors_origins: Annotated[tuple[str, ...] | None, NoDecode, BeforeValidator(_split_origins)] = (
        None
    )
    # Strict-Transport-Security in production (TLS ends in front of the gateway); 0: none.
    hsts_max_age_seconds: int = Field(default=365 * 24 * 3600, ge=0)

    # The built web console (web/console) served at `/`; unset, `/` is a 404.
    console_dir: Path | None = None

    # The merged OpenAPI document is fetched again at most this often, on demand.
    openapi_refresh_seconds: float = Field(default=60.0, ge=0)
    openapi_fetch_timeout_seconds: float = Field(default=2.0, gt=0)

    @property
    def allowed_origins(self) -> tuple[str, ...]:
        if self.cors_origins is not None:
            return self.cors_origins
        return () if self.env == "production" else DEV_CORS_ORIGINS

    @property
    def hsts_header(self) -> bytes | None:
        if self.env != "production" or not self.hsts_max_age_seconds:
            return None
        return f"max-age={self.hsts_max_age_seconds}; includeSubDomains".encode()

    def upstream_url(self, upstream: str) -> str:
        urls = {"auth": self.auth_url, "tasks": self.tasks_url, "analytics": self.analytics_url}
        return urls[upstream].rstrip("/")

    def upstream_timeouts(self, upstream: str) -> tuple[float, float]:
        connect: float = getattr(self, f"{upstream}_connect_timeout_seconds")
        read: float = getattr(self, f"{upstream}_read_timeout_seconds")
        return connect, read
