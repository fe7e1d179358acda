"""The console summary: a line per prediction span, a block of metrics; a failing stdout is logged, never raised."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from prodwrap.telemetry import _console
from prodwrap.telemetry._buckets import DURATION
from prodwrap.telemetry._console import ConsoleMetrics, ConsoleSpans, metric_lines, seconds, span_line


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()  # local: never the global
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def finished(provider: TracerProvider, exporter: InMemorySpanExporter, name: str, **attrs: Any) -> ReadableSpan:
    status = attrs.pop("status", None)
    with provider.get_tracer("t").start_as_current_span(name, attributes=attrs) as span:
        if status is not None:
            span.set_status(status)
    return exporter.get_finished_spans()[-1]


def test_a_prediction_line_reads_as_a_sentence(spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    span = finished(
        *spans,
        "predict credit-risk",
        **{
            "prodwrap.model.version": "1.4.0",
            "prodwrap.outcome": "fallback",
            "prodwrap.served_by": "constant",
            "prodwrap.attempts": 3,
            "error.type": "PredictionTimeout",
            "prodwrap.cost.usd": 0.0025,
        },
    )
    line = span_line(span)
    head, outcome, took, details, trace_id = line.split("  ")
    assert (head, outcome) == ("predict credit-risk 1.4.0", "fallback")
    assert took.endswith(("µs", "ms"))
    assert details == "error=PredictionTimeout served_by=constant attempts=3 cost=$0.0025"
    assert trace_id == f"trace={span.context.trace_id:032x}"[:14]


def test_without_an_outcome_the_status_says_ok_or_error(spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    ok = finished(*spans, "predict m")
    failed = finished(*spans, "predict m", status=Status(StatusCode.ERROR, "boom"))
    cached = finished(*spans, "predict m", **{"prodwrap.cache.hit": True, "prodwrap.cost.usd": 0.0})
    assert span_line(ok).split("  ")[:2] == ["predict m", "ok"]
    assert span_line(failed).split("  ")[:2] == ["predict m", "error"]
    assert span_line(cached).split("  ")[3] == "cache=hit"  # a zero cost is not printed


def test_only_prediction_spans_are_printed(spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    for name in ("attempt m", "predict m", "fallback constant", "GET /score"):
        finished(*spans, name)
    out = io.StringIO()
    assert ConsoleSpans(lambda: out).export(spans[1].get_finished_spans()) is SpanExportResult.SUCCESS
    assert [line.split("  ")[0] for line in out.getvalue().splitlines()] == ["predict m"]


class Broken(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError("stdout is closed")


def test_a_failing_stdout_is_logged_once_per_burst_never_raised(
    spans: tuple[TracerProvider, InMemorySpanExporter],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_console, "_faults", _console.Throttle(logging.getLogger("prodwrap.telemetry")))
    finished(*spans, "predict m")
    exporter = ConsoleSpans(Broken)
    with caplog.at_level(logging.WARNING, logger="prodwrap.telemetry"):
        results = [exporter.export(spans[1].get_finished_spans()) for _ in range(3)]
    assert results == [SpanExportResult.FAILURE] * 3
    (record,) = caplog.records
    assert record.name == "prodwrap.telemetry" and "stdout is closed" in record.getMessage()


@pytest.fixture
def meters() -> Iterator[tuple[MeterProvider, InMemoryMetricReader]]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])  # local: never the global
    yield provider, reader
    provider.shutdown()


def test_metric_lines_give_totals_and_histogram_summaries(meters: tuple[MeterProvider, InMemoryMetricReader]) -> None:
    provider, reader = meters
    meter = provider.get_meter("prodwrap")
    meter.create_counter("prodwrap.predictions", unit="{prediction}").add(5, {"prodwrap.outcome": "ok"})
    meter.create_counter("prodwrap.cost", unit="USD").add(0.25)
    duration = meter.create_histogram(
        "prodwrap.prediction.duration", unit="s", explicit_bucket_boundaries_advisory=DURATION
    )
    for value in [0.002] * 19 + [0.2]:
        duration.record(value)
    tokens = meter.create_histogram(
        "gen_ai.client.token.usage", unit="{token}", explicit_bucket_boundaries_advisory=[10, 100]
    )
    tokens.record(500)
    data = reader.get_metrics_data()
    assert data is not None
    assert sorted(metric_lines(data)) == sorted(
        [
            "  prodwrap.predictions{outcome=ok} 5",
            "  prodwrap.cost 0.25 USD",
            "  prodwrap.prediction.duration n=20 mean=11.90 ms p95<=5.00 ms",
            "  gen_ai.client.token.usage n=1 mean=500 {token} p95>100 {token}",
        ]
    )


def test_a_metrics_block_is_headed_and_capped(meters: tuple[MeterProvider, InMemoryMetricReader]) -> None:
    provider, reader = meters
    counter = provider.get_meter("prodwrap").create_counter("prodwrap.predictions")
    for i in range(_console.MAX_METRIC_LINES + 5):
        counter.add(1, {"prodwrap.model.name": f"m{i}"})
    data = reader.get_metrics_data()
    assert data is not None
    out = io.StringIO()
    assert ConsoleMetrics("svc", lambda: out).export(data) is MetricExportResult.SUCCESS
    lines = out.getvalue().splitlines()
    assert lines[0] == "metrics for svc:" and lines[-1] == "  ... 5 more"
    assert len(lines) == 1 + _console.MAX_METRIC_LINES + 1


def test_nothing_recorded_prints_nothing(meters: tuple[MeterProvider, InMemoryMetricReader]) -> None:
    out = io.StringIO()
    data = meters[1].get_metrics_data()
    if data is not None:
        ConsoleMetrics("svc", lambda: out).export(data)
    assert out.getvalue() == ""


@pytest.mark.parametrize(
    ("value", "text"), [(0.00085, "850 µs"), (0.00184, "1.84 ms"), (0.5, "500.00 ms"), (2.5, "2.50 s")]
)
def test_seconds_for_a_person(value: float, text: str) -> None:
    assert seconds(value) == text
