"""OpenTelemetry for a service: OTLP over HTTP to Jaeger, configured by OTEL_* variables.

Harmless without a collector: spans are batched and export failures are dropped
(the exporter logs them at most once per batch, on its own logger, which we quiet).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, Literal

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

__all__ = [
    "RouteOf",
    "instrument_app",
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
    from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    HTTPXClientInstrumentor().instrument()
    PymongoInstrumentor().instrument()
    RedisInstrumentor().instrument()
    # The instrumentation declares aio_pika < 10 and silently does nothing with 10.x
    # unless told to skip the check; it works with 10.x.
    AioPikaInstrumentor().instrument(skip_dep_check=True)


# The ASGI instrumentation's internal spans, one per ASGI message ("GET /x http send" for the
# head, another for the body, "http receive" for the request body) repeat the server span's
# timing; they cost the gateway ~0.2 ms of CPU a request, sampled or not, about a third of
# what tracing cost it in-process (docs/performance.md).
EXCLUDED_SPANS: list[Literal["receive", "send"]] = ["receive", "send"]


RouteOf = Callable[[dict[str, Any]], str | None]


def instrument_app(app: Any, tracer_provider: Any = None, route_of: RouteOf | None = None) -> None:
    """One server span per request (`tracer_provider`: the global one unless given).

    `route_of(scope)` names the route template of requests the router never sees (the
    gateway's proxied paths); the span is then called "<method> <template>", with
    `http.route`, instead of just "<method>".
    """
    if not telemetry_enabled():
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    def name_by_route(span: Any, scope: dict[str, Any]) -> None:
        if route_of is None or not span.is_recording():
            return
        route = route_of(scope)
        if route is not None:
            span.update_name(f"{scope.get('method', 'HTTP')} {route}")
            span.set_attribute("http.route", route)

    FastAPIInstrumentor.instrument_app(
        app,
        excluded_urls="healthz,readyz,metrics",
        exclude_spans=EXCLUDED_SPANS,
        tracer_provider=tracer_provider,
        server_request_hook=name_by_route if route_of is not None else None,
    )


def inject_headers(headers: dict[str, Any]) -> dict[str, Any]:
    """W3C traceparent/tracestate of the current span, for messages and outbox records."""
    propagate.inject(headers)
    return headers
