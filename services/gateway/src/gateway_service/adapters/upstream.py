"""Calling the services: one shared aiohttp session, breakers per route group, timeouts and
budgeted retries.

A breaker counts connect errors, timeouts and 5xx, but not an explicit overload answer
(503 with `Retry-After`): that service is up and shedding load, and the answer goes to the
client as it is, so it knows when to come back.

aiohttp rather than httpx: measured as a proxy client on this hardware, aiohttp keeps about
0.84x of an upstream's direct throughput, plain httpx 0.12x (a lock in httpcore's pool).

Each attempt is one client span, made here rather than by the OpenTelemetry aiohttp
instrumentation: its signal hooks cost ~90 us of CPU per request, sampled or not, the
largest part of what tracing cost the gateway (docs/performance.md#gateway-upstream); this
costs ~20 us.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDict
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from taskmesh_common.telemetry import inject_headers, telemetry_enabled
from yarl import URL

from gateway_service.adapters.breaker import UpstreamBreaker
from gateway_service.config import Settings
from gateway_service.domain.errors import UpstreamTimeout, UpstreamUnreachable
from gateway_service.domain.overload import overload_delay
from gateway_service.domain.retry_budget import RetryBudget
from gateway_service.domain.routing import BREAKER_GROUPS, Upstream, breaker_group
from gateway_service.metrics import UPSTREAM_DURATION

__all__ = ["UPSTREAMS", "UpstreamClient", "UpstreamResponse", "create_session"]

logger = logging.getLogger("gateway.upstream")

UPSTREAMS: tuple[Upstream, ...] = ("auth", "tasks", "analytics")
# Safe to send twice (RFC 9110 §9.2.2); others only with an Idempotency-Key.
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# The request never reached the application (or the pooled connection was already dead).
_CONNECTION_ERRORS = (
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientOSError,
)
# The client's headers go through as they are; aiohttp must not add its own defaults.
_SKIP_AUTO = frozenset({"User-Agent", "Accept", "Accept-Encoding", "Content-Type"})
_tracer = trace.get_tracer("gateway_service.upstream")


@dataclass(frozen=True)
class UpstreamResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class _ServerError(Exception):
    """A 5xx: counted by the breaker, yet still the answer the client gets."""

    def __init__(self, response: UpstreamResponse) -> None:
        super().__init__(f"upstream answered {response.status}")
        self.response = response


def create_session(settings: Settings) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=0,  # bounded per host instead
        limit_per_host=settings.upstream_pool_per_host,
        keepalive_timeout=settings.upstream_keepalive_seconds,
        ttl_dns_cache=60,
    )
    # Bodies pass through as the upstream encoded them: no decompressing, no re-compressing.
    return aiohttp.ClientSession(
        connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
    )


class UpstreamClient:
    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        self._session = session
        self._deadline = settings.upstream_deadline_seconds
        self._retries = settings.retry_attempts
        self._retry_after_max = settings.retry_after_max_seconds
        self.urls: dict[str, str] = {name: settings.upstream_url(name) for name in UPSTREAMS}
        # Keyed by route group (routing.BREAKER_GROUPS): login and register have their own.
        self.breakers = {
            group: UpstreamBreaker(
                group,
                upstream=upstream,
                fail_max=settings.breaker_fail_max,
                reset_timeout=settings.breaker_reset_timeout_seconds,
            )
            for group, upstream in BREAKER_GROUPS.items()
        }
        self.budgets = {
            name: RetryBudget(
                settings.retry_budget_ratio, min_per_window=settings.retry_budget_min_per_window
            )
            for name in UPSTREAMS
        }
        self._traced = telemetry_enabled()
        self._timeouts = {}
        for name in UPSTREAMS:
            connect, read = settings.upstream_timeouts(name)
            self._timeouts[name] = aiohttp.ClientTimeout(
                total=None, sock_connect=connect, sock_read=read
            )

    def breaker_details(self) -> dict[str, dict[str, object]]:
        return {name: breaker.details() for name, breaker in self.breakers.items()}

    async def send(
        self,
        upstream: Upstream,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> UpstreamResponse:
        """Forward one request; raises UpstreamError subclasses when there is no answer.

        `target` is the raw (still percent-encoded) path plus query string.
        """
        breaker = self.breakers[breaker_group(upstream, target.partition("?")[0])]
        url = URL(self.urls[upstream] + target, encoded=True)
        retryable = method in _IDEMPOTENT or any(
            name.lower() == "idempotency-key" for name, _ in headers
        )
        self.budgets[upstream].record_request()
        try:
            with breaker.guard():
                async with asyncio.timeout(self._deadline):
                    response = await self._attempts(upstream, method, url, headers, body, retryable)
                if response.status >= 500 and _overload_delay(response) is None:
                    raise _ServerError(response)
        except _ServerError as exc:
            return exc.response
        except TimeoutError:
            raise UpstreamTimeout(upstream) from None
        except _CONNECTION_ERRORS:
            raise UpstreamUnreachable(upstream) from None
        except aiohttp.ClientError:
            # A malformed answer (bad status line, truncated body): the upstream's fault.
            raise UpstreamUnreachable(upstream) from None
        return response

    async def _attempts(
        self,
        upstream: Upstream,
        method: str,
        url: URL,
        headers: list[tuple[str, str]],
        body: bytes,
        retryable: bool,
    ) -> UpstreamResponse:
        attempt = 0
        deadline = asyncio.get_running_loop().time() + self._deadline
        while True:
            try:
                response = await self._once(upstream, method, url, headers, body)
            except _CONNECTION_ERRORS as exc:
                attempt += 1
                if (
                    not retryable
                    or attempt > self._retries
                    or not self.budgets[upstream].try_acquire()
                ):
                    raise
                logger.info(
                    "retrying upstream request after a connection error",
                    extra={"upstream": upstream, "method": method, "error": type(exc).__name__},
                )
                continue
            delay = _overload_delay(response)
            # An overload answer is retried only after the wait it asks for, only if that
            # wait is short and ends well before the deadline, and only within the budget;
            # otherwise the client gets it, Retry-After included.
            if (
                delay is None
                or not retryable
                or attempt >= self._retries
                or delay > self._retry_after_max
                or asyncio.get_running_loop().time() + delay >= deadline - 0.1
                or not self.budgets[upstream].try_acquire()
            ):
                return response
            attempt += 1
            logger.info(
                "retrying upstream request after its Retry-After",
                extra={"upstream": upstream, "method": method, "retry_after": delay},
            )
            await asyncio.sleep(delay)

    async def _once(
        self,
        upstream: Upstream,
        method: str,
        url: URL,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> UpstreamResponse:
        if not self._traced:
            return await self._exchange(upstream, method, url, headers, body)
        with _tracer.start_as_current_span(method, kind=SpanKind.CLIENT) as span:
            if span.is_recording():
                span.set_attributes(
                    {
                        "http.request.method": method,
                        "url.full": str(url),
                        "server.address": url.host or "",
                        "server.port": url.port or 80,
                        "taskmesh.upstream": upstream,
                    }
                )
            response = await self._exchange(upstream, method, url, _traced(headers), body)
            if span.is_recording():
                span.set_attribute("http.response.status_code", response.status)
                if response.status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            return response

    async def _exchange(
        self,
        upstream: Upstream,
        method: str,
        url: URL,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> UpstreamResponse:
        started = time.perf_counter()
        status = "error"
        try:
            async with self._session.request(
                method,
                url,
                headers=CIMultiDict(headers),
                data=body or None,
                timeout=self._timeouts[upstream],
                allow_redirects=False,
                skip_auto_headers=_SKIP_AUTO,
            ) as response:
                payload = await response.read()
                status = str(response.status)
                return UpstreamResponse(response.status, list(response.raw_headers), payload)
        finally:
            UPSTREAM_DURATION.labels(upstream, status).observe(time.perf_counter() - started)


def _overload_delay(response: UpstreamResponse) -> float | None:
    return overload_delay(response.status, response.headers)


def _traced(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """`headers` with the current span's context (W3C traceparent/tracestate, baggage) in
    place of any the client sent: the upstream's spans hang off this attempt's span."""
    carrier = inject_headers({})
    if not carrier:
        return headers
    replaced = {name.lower() for name in carrier}
    return [(k, v) for k, v in headers if k.lower() not in replaced] + list(carrier.items())
