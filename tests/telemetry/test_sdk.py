"""The SDK pieces configure() builds: histogram boundaries where the SDK ignores the advisory, batching."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from prodwrap.telemetry import _sdk
from prodwrap.telemetry._buckets import DURATION, GENAI_DURATION, GENAI_TOKENS
from prodwrap.telemetry._settings import Settings


def bounds_by_name(provider: MeterProvider, reader: InMemoryMetricReader) -> dict[str, list[float]]:
    meter = provider.get_meter("prodwrap")
    for name in (
        "prodwrap.prediction.duration",
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.duration",
        "other",
    ):
        meter.create_histogram(name).record(1)  # no advisory: as an SDK that ignores it would see them
    data = reader.get_metrics_data()
    assert data is not None
    found = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                (point,) = metric.data.data_points
                assert isinstance(point, HistogramDataPoint)
                found[metric.name] = list(point.explicit_bounds)
    return found


def test_the_installed_sdk_honours_the_advisory() -> None:
    assert _sdk.advisory_supported() is True
    assert _sdk.histogram_views() == []


def test_where_the_advisory_is_ignored_views_give_the_documented_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sdk, "advisory_supported", lambda: False)
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], views=_sdk.histogram_views())
    try:
        found = bounds_by_name(provider, reader)
    finally:
        provider.shutdown()
    assert found["prodwrap.prediction.duration"] == list(DURATION)
    assert found["gen_ai.client.token.usage"] == list(GENAI_TOKENS)
    assert found["gen_ai.client.operation.duration"] == list(GENAI_DURATION)
    default = [0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0, 10000.0]
    assert found["other"] == default  # the views name their instruments exactly; others keep the SDK's


def test_every_span_exporter_sits_behind_a_batching_processor() -> None:
    provider = _sdk.tracer_provider(Settings(console=True, otlp_endpoint="http://127.0.0.1:9"), _sdk.resource("svc"))
    try:
        processors = provider._active_span_processor._span_processors  # the SDK keeps no public list
        assert len(processors) == 2
        assert all(isinstance(p, BatchSpanProcessor) for p in processors)
        assert provider.resource.attributes["service.name"] == "svc"
    finally:
        provider.shutdown()


def test_the_resource_keeps_other_resource_attributes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging,service.name=ignored")
    attributes = _sdk.resource("given").attributes
    assert attributes["deployment.environment"] == "staging"
    assert attributes["service.name"] == "given"
