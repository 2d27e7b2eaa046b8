"""Spans leave in small batches, so encoding one never holds the GIL for long; a request
makes one server span."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from taskmesh_common.telemetry import BSP_MAX_EXPORT_BATCH_SIZE, instrument_app, span_processor


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


async def test_a_request_makes_one_server_span_without_per_message_spans() -> None:
    """An SRE sees the request's server span; not one more span per ASGI message."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = FastAPI()

    @app.post("/items/{item_id}")
    async def item(item_id: str, body: dict[str, str]) -> dict[str, str]:
        return {"id": item_id, **body}

    instrument_app(app, tracer_provider=provider)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        created = await client.post("/items/7", json={"a": "b"})
        assert created.json() == {"id": "7", "a": "b"}
        assert (await client.get("/healthz")).status_code == 404  # excluded: no span either

    spans = exporter.get_finished_spans()
    assert [(s.name, s.kind) for s in spans] == [("POST /items/{item_id}", SpanKind.SERVER)]
    attributes = spans[0].attributes or {}
    assert attributes.get("http.response.status_code", attributes.get("http.status_code")) == 200


async def test_requests_the_router_never_sees_are_named_by_their_route_template() -> None:
    """The gateway answers proxied paths before its router: an SRE still sees
    "GET /proxied/{path}" in Jaeger, not a bare "GET"."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = FastAPI()

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

    def route_of(scope: dict[str, Any]) -> str | None:
        return "/proxied/{path}" if scope["path"].startswith("/proxied/") else None

    instrument_app(app, tracer_provider=provider, route_of=route_of)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/proxied/a/b")).text == "proxied"
        assert (await client.get("/own/x")).json() == {"name": "x"}

    spans = {s.name: s.attributes or {} for s in exporter.get_finished_spans()}
    assert set(spans) == {"GET /proxied/{path}", "GET /own/{name}"}
    assert spans["GET /proxied/{path}"]["http.route"] == "/proxied/{path}"
    assert spans["GET /own/{name}"]["http.route"] == "/own/{name}"
