"""Spans leave in small batches, so encoding one never holds the GIL for long; a request
makes one server span, continuing the caller's trace."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import SpanKind, StatusCode
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from taskmesh_common.middleware import RequestContextMiddleware
from taskmesh_common.telemetry import (
    BSP_MAX_EXPORT_BATCH_SIZE,
    SpanNamedByRoute,
    fastapi_telemetry,
    span_processor,
)


class Batches(SpanExporter):
    def __init__(self) -> None:
        self.sizes: list[int] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.sizes.append(len(spans))
        return SpanExportResult.SUCCESS


@pytest.fixture(autouse=True)
def sdk_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "false")  # tests may run with it off


def export_spans(count: int) -> list[int]:
    exporter = Batches()
    provider = TracerProvider()
    provider.add_span_processor(span_processor(exporter))
    tracer = provider.get_tracer("test")
    for i in range(count):
        with tracer.start_as_current_span(f"span {i}"):
            pass
    provider.force_flush()
    provider.shutdown()
    return exporter.sizes


def test_spans_are_exported_in_batches_of_at_most_64(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", raising=False)
    sizes = export_spans(300)
    assert sum(sizes) == 300
    assert max(sizes) <= BSP_MAX_EXPORT_BATCH_SIZE == 64


def test_the_standard_variable_still_sets_the_batch_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "200")
    sizes = export_spans(300)
    assert sum(sizes) == 300
    assert 64 < max(sizes) <= 200


async def test_a_request_makes_one_server_span_and_nothing_more() -> None:
    """An SRE sees the request's server span; not one more span per ASGI message or per
    step of FastAPI's handling."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = FastAPI(telemetry=fastapi_telemetry(provider))

    @app.post("/items/{item_id}")
    async def item(item_id: str, body: dict[str, str]) -> dict[str, str]:
        return {"id": item_id, **body}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        created = await client.post("/items/7", json={"a": "b"})
        assert created.json() == {"id": "7", "a": "b"}
        assert (await client.get("/healthz")).status_code == 404  # excluded: no span either

    spans = exporter.get_finished_spans()
    assert [(s.name, s.kind) for s in spans] == [("POST /items/{item_id}", SpanKind.SERVER)]
    attributes = spans[0].attributes or {}
    assert attributes["http.response.status_code"] == 200


async def test_requests_the_router_never_sees_are_named_by_their_route_template() -> None:
    """The gateway answers proxied paths before its router: an SRE still sees
    "GET /proxied/{path}" in Jaeger, not a bare "GET"."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = FastAPI(telemetry=fastapi_telemetry(provider))

    @app.get("/own/{name}")
    async def own(name: str) -> dict[str, str]:
        return {"name": name}

    class AnswerBeforeTheRouter:
        def __init__(self, inner: ASGIApp) -> None:
            self.inner = inner

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"].startswith("/proxied/"):
                await PlainTextResponse("proxied")(scope, receive, send)
                return
            await self.inner(scope, receive, send)

    app.add_middleware(AnswerBeforeTheRouter)

    def route_of(scope: Scope) -> str | None:
        return "/proxied/{path}" if scope["path"].startswith("/proxied/") else None

    app.add_middleware(SpanNamedByRoute, route_of=route_of)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/proxied/a/b")).text == "proxied"
        assert (await client.get("/own/x")).json() == {"name": "x"}

    spans = {s.name: s.attributes or {} for s in exporter.get_finished_spans()}
    assert set(spans) == {"GET /proxied/{path}", "GET /own/{name}"}
    assert spans["GET /proxied/{path}"]["http.route"] == "/proxied/{path}"
    assert spans["GET /own/{name}"]["http.route"] == "/own/{name}"


def traced_app(provider: TracerProvider) -> FastAPI:
    app = FastAPI(telemetry=fastapi_telemetry(provider))

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        context = trace.get_current_span().get_span_context()
        return {"id": item_id, "trace": format(context.trace_id, "032x")}

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("the handler failed")

    return app


def recording(sampler: Any = None) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler) if sampler is not None else TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


WHAT_AN_SRE_READS = (
    "http.request.method",
    "http.route",
    "http.response.status_code",
    "url.path",
    "url.query",
    "server.address",
)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


async def test_the_server_span_continues_the_callers_trace_and_says_what_was_asked() -> None:
    provider, exporter = recording()
    transport = httpx.ASGITransport(app=traced_app(provider))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get(
            "/items/7?verbose=1",
            headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"},
        )
    assert answer.json() == {"id": "7", "trace": TRACE_ID}  # the handler runs inside the span

    [span] = exporter.get_finished_spans()
    assert span.name == "GET /items/{item_id}"
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == CALLER_SPAN
    attributes = span.attributes or {}
    assert {key: attributes.get(key) for key in WHAT_AN_SRE_READS} == {
        "http.request.method": "GET",
        "http.route": "/items/{item_id}",
        "http.response.status_code": 200,
        "url.path": "/items/7",
        "url.query": "verbose=1",
        "server.address": "t",
    }


async def test_an_unsampled_request_records_nothing_but_keeps_the_trace_for_what_it_calls() -> None:
    """Nine requests in ten at a 10 % sampling rate: no span leaves, yet logs, database
    calls and the events the request writes still carry the caller's trace id."""
    provider, exporter = recording(ParentBased(ALWAYS_OFF))
    transport = httpx.ASGITransport(app=traced_app(provider))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        unsampled = await client.get(
            "/items/8", headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-00"}
        )
        sampled = await client.get(
            "/items/9", headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"}
        )
    assert unsampled.json()["trace"] == TRACE_ID
    assert sampled.json()["trace"] == TRACE_ID
    # Parent-based: the caller's sampled flag decides, whatever the root sampler says.
    assert [s.attributes["url.path"] for s in exporter.get_finished_spans()] == ["/items/9"]


async def test_client_libraries_make_spans_only_inside_a_sampled_trace() -> None:
    """PyMongo's and Redis's instrumentation check `is_instrumentation_enabled()` before each
    command: inside an unsampled request it says no, so they make no span nobody records."""
    provider, _ = recording(ParentBased(ALWAYS_OFF))
    app = FastAPI(telemetry=fastapi_telemetry(provider))

    @app.get("/instrumented")
    async def instrumented() -> dict[str, bool]:
        return {"on": is_instrumentation_enabled()}

    app.add_middleware(RequestContextMiddleware, service="test")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

        async def on(flags: str | None) -> bool:
            headers = (
                {} if flags is None else {"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-{flags}"}
            )
            answer = await client.get("/instrumented", headers=headers)
            return bool(answer.json()["on"])

        assert await on("01")  # sampled by the caller
        assert not await on("00")  # not sampled by the caller
        assert not await on(None)  # a root the sampler left out
    assert is_instrumentation_enabled()  # nothing stays quiet after the request


async def test_an_unhandled_error_is_a_failed_500_span_naming_the_exception() -> None:
    provider, exporter = recording()
    transport = httpx.ASGITransport(app=traced_app(provider), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/broken")).status_code == 500

    [span] = exporter.get_finished_spans()
    assert span.name == "GET /broken"
    assert span.status.status_code is StatusCode.ERROR
    attributes = span.attributes or {}
    assert (attributes["http.response.status_code"], attributes["error.type"]) == (
        500,
        "RuntimeError",
    )
