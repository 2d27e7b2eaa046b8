"""OpenTelemetry for a service: OTLP over HTTP to Jaeger, configured by OTEL_* variables.

Harmless without a collector: spans are batched and export failures are dropped
(the exporter logs them at most once per batch, on its own logger, which we quiet).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "RouteOf",
    "SpanNamedByRoute",
    "fastapi_telemetry",
    "quiet_unless_sampled",
    "setup_telemetry",
    "span_processor",
    "telemetry_enabled",
]

_configured_service: str | None = None
_instrumented = False

# The span processor's defaults, where OTEL_BSP_* leave them unset. The SDK's (every 5 s, up
# to 512 spans a batch) made one large batch every 5 s: encoding 420 spans took 30 ms of the
# exporter thread, and the event loop waited for the GIL meanwhile (a p99 spike every 5 s on
# the gateway at 140 req/s, 10 % sampled). 64 spans take 4 ms, and the HTTP post between two
# batches gives the GIL back.
BSP_SCHEDULE_DELAY_MS = 1000
BSP_MAX_EXPORT_BATCH_SIZE = 64


def telemetry_enabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() != "true"


def setup_telemetry(service_name: str) -> None:
    """Install the tracer provider and instrument the client libraries, once per process."""
    global _configured_service, _instrumented
    if not telemetry_enabled() or _configured_service is not None:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # OTEL_SERVICE_NAME wins when set, as the specification says.
    name = os.environ.get("OTEL_SERVICE_NAME") or service_name
    os.environ.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(span_processor(OTLPSpanExporter(timeout=2)))
    trace.set_tracer_provider(provider)
    logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter").setLevel(
        logging.CRITICAL
    )
    _configured_service = name
    if not _instrumented:
        _instrument_libraries()
        _instrumented = True


def span_processor(exporter: Any) -> BatchSpanProcessor:
    """Batches exported often and small (`OTEL_BSP_SCHEDULE_DELAY` and
    `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` still win when set)."""

    def unless_set(variable: str, default: int) -> int | None:
        return None if os.environ.get(variable) else default  # None: the SDK reads it

    return BatchSpanProcessor(
        exporter,
        schedule_delay_millis=unless_set("OTEL_BSP_SCHEDULE_DELAY", BSP_SCHEDULE_DELAY_MS),
        max_export_batch_size=unless_set(
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", BSP_MAX_EXPORT_BATCH_SIZE
        ),
    )


def _instrument_libraries() -> None:
    # Not aiohttp: its instrumentation's signal hooks cost the gateway ~90 us of CPU per
    # proxied request, sampled or not; the gateway's upstream client makes its own span.
    # The other aiohttp calls (JWKS, the OpenAPI documents) are rare and need none.
    # Not httpx: no service calls with it (it is a test client only).
    # Not aio-pika: the publisher's and the consumer's own spans (`<type> publish`, `<type>
    # process`) are the messaging spans; the instrumentation added a second pair per event.
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    PymongoInstrumentor().instrument()
    RedisInstrumentor().instrument()


@contextlib.contextmanager
def quiet_unless_sampled() -> Iterator[None]:
    """Within a trace that is not sampled, the client libraries' instrumentation (PyMongo,
    Redis) stays out of the way: it would only make spans nobody records, which cost a
    few tens of µs each (docs/performance.md#tracing-cost).

    Outside any trace (start-up, background loops) nothing changes: a command there may
    start a trace of its own, sampled as the sampler decides.
    """
    context = trace.get_current_span().get_span_context()
    if not context.is_valid or context.trace_flags.sampled:
        yield
        return
    with suppress_instrumentation():
        yield


RouteOf = Callable[[Scope], str | None]

# Requests that get no span: probes and scrapes, many a minute, of no use in a trace.
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _untraced(scope: Scope) -> bool:
    return scope.get("path") in UNTRACED_PATHS


def fastapi_telemetry(tracer_provider: Any = None) -> TelemetryConfig:
    """FastAPI's own OpenTelemetry (`FastAPI(telemetry=...)`): one SERVER span per request,
    continuing the caller's W3C trace context, named "<method> <route template>" once the
    router has matched, with the stable HTTP attributes (`tracer_provider`: the global one
    unless given).

    Only the server span: request metrics are ours (`/metrics`), logs are ours (JSON with the
    trace id), and the per-request operation spans (dependencies, endpoint, serialization)
    would triple the spans for what the server span and the database spans already show.
    OpenTelemetry's FastAPI instrumentation walks the routes, collects a dozen attributes and
    feeds no-op metrics for every request, sampled or not: in-process, at 10 % sampled, ~107 us
    of CPU a request against ~37 us for this (docs/performance.md#tracing-cost).
    """
    return {
        "tracing": telemetry_enabled(),
        "tracer_provider": tracer_provider,
        "metrics": False,
        "logs": False,
        "operation_spans": False,
        "auto_configure": False,  # setup_telemetry owns the provider and its one exporter
        "exclude": _untraced,
    }


class SpanNamedByRoute:
    """Names the server span of requests the router never sees (the gateway's proxied
    paths) by `route_of(scope)`: "<method> <template>", with `http.route`, instead of a bare
    "<method>". Only sampled spans are touched."""

    def __init__(self, app: ASGIApp, route_of: RouteOf) -> None:
        self.app = app
        self.route_of = route_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            span = trace.get_current_span()
            if span.is_recording():
                route = self.route_of(scope)
                if route is not None:
                    span.update_name(f"{scope['method']} {route}")
                    span.set_attribute("http.route", route)
        await self.app(scope, receive, send)


def inject_headers(headers: dict[str, Any]) -> dict[str, Any]:
    """W3C traceparent/tracestate of the current span, for messages and outbox records."""
    propagate.inject(headers)
    return headers
