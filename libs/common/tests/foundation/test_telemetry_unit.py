"""Spans leave in small batches, so encoding one never holds the GIL for long; a request
makes one server span."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
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
