"""Spans leave in small batches, so encoding one never holds the GIL for long."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from taskmesh_common.telemetry import BSP_MAX_EXPORT_BATCH_SIZE, span_processor


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
