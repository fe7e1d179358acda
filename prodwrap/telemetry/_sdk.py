"""The SDK pieces ``configure()`` builds from its settings: providers, exporters, the ``/metrics`` server.

Imported only when ``configure()`` runs: this is the module that imports the OpenTelemetry
SDK and the optional exporters (``prodwrap[otlp]``, ``prodwrap[prometheus]``).

- Spans go through a ``BatchSpanProcessor`` per exporter, so an exporter that is slow or
  hangs delays nothing but its own queue (the console one flushes every
  ``CONSOLE_SCHEDULE_MILLIS``, OTLP on the SDK's schedule, 5 s or 512 spans).
- Metrics are pushed by a ``PeriodicExportingMetricReader`` per pushing exporter (console,
  OTLP) and pulled by Prometheus through a ``PrometheusMetricReader`` registered in
  ``prometheus_client``'s default registry, served by ``prometheus_client``'s own HTTP server.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from typing import TYPE_CHECKING, Any

from prodwrap.errors import ConfigurationError
from prodwrap.telemetry._buckets import BY_INSTRUMENT
from prodwrap.telemetry._settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader, PeriodicExportingMetricReader
    from opentelemetry.sdk.metrics.view import View
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

CONSOLE_SCHEDULE_MILLIS = 200  # console lines appear within this long of a prediction ending

EXTRA_MODULES = {
    "otlp": (
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    ),
    "prometheus": ("opentelemetry.exporter.prometheus", "prometheus_client"),
}


def require(extra: str) -> None:
    """Import the extra's modules now, so a missing one fails before anything is built or started.

    Raises:
        ConfigurationError: a module of the extra cannot be imported; the message says what to install.
    """
    for module in EXTRA_MODULES[extra]:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            setting = "otlp_endpoint=" if extra == "otlp" else "prometheus_port="
            missing = exc.name or module
            raise ConfigurationError(
                f"{setting} needs the optional dependency {extra!r} ({missing} is missing): "
                f'pip install "prodwrap[{extra}]"'
            ) from exc


def advisory_supported() -> bool:
    """Whether the installed SDK honours ``explicit_bucket_boundaries_advisory`` on histograms."""
    from opentelemetry.sdk.metrics import Meter

    return "explicit_bucket_boundaries_advisory" in inspect.signature(Meter.create_histogram).parameters


def histogram_views() -> list[View]:
    """Views giving prodwrap's and the GenAI histograms their boundaries, where the SDK ignores the advisory.

    Only those three instruments, by exact name: a wildcard would also put seconds buckets
    on a histogram that is not a duration.
    """
    if advisory_supported():
        return []
    from opentelemetry.sdk.metrics import Histogram
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

    return [
        View(instrument_type=Histogram, instrument_name=name, aggregation=ExplicitBucketHistogramAggregation(bounds))
        for name, bounds in BY_INSTRUMENT.items()
    ]


def resource(service_name: str) -> Resource:
    """The SDK's default resource (``OTEL_RESOURCE_ATTRIBUTES`` merged in) with ``service.name``."""
    from opentelemetry.sdk.resources import Resource

    return Resource.create({"service.name": service_name})


def serve_metrics(port: int, addr: str) -> tuple[Any, threading.Thread]:
    """Start ``prometheus_client``'s HTTP server for its default registry: (server, its thread).

    Raises:
        ConfigurationError: the port cannot be bound (taken, or a privileged port).
    """
    from prometheus_client import start_http_server

    try:
        server, thread = start_http_server(port, addr=addr)
    except OSError as exc:
        raise ConfigurationError(f"prometheus_port={port}: cannot listen on {addr}:{port}: {exc}") from exc
    return server, thread


def tracer_provider(settings: Settings, where: Resource) -> TracerProvider:
    """A ``TracerProvider`` with a batching processor per span exporter the settings name."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=where, shutdown_on_exit=False)  # the handle shuts it down, at exit too
    exporters: list[tuple[SpanExporter, int | None]] = []
    if settings.console == "raw":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        exporters.append((ConsoleSpanExporter(), CONSOLE_SCHEDULE_MILLIS))
    elif settings.console:
        from prodwrap.telemetry._console import ConsoleSpans

        exporters.append((ConsoleSpans(), CONSOLE_SCHEDULE_MILLIS))
    if settings.otlp_endpoint is not None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporters.append((OTLPSpanExporter(endpoint=settings.otlp_endpoint + "/v1/traces"), None))
    for exporter, delay in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=delay))
    return provider


def meter_provider(
    settings: Settings, where: Resource, service_name: str
) -> tuple[MeterProvider, list[PeriodicExportingMetricReader]]:
    """A ``MeterProvider`` with a reader per metrics destination the settings name, and its pushing readers.

    The pushing readers are what a flush may push. Prometheus' reader is left out on purpose: a
    collection outside a scrape queues a second copy of every series in the exporter, and the
    next scrape would show each sample twice.
    """
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader

    interval = None if settings.export_interval is None else settings.export_interval * 1000
    pushed: list[MetricExporter] = []
    if settings.console == "raw":
        pushed.append(ConsoleMetricExporter())
    elif settings.console:
        from prodwrap.telemetry._console import ConsoleMetrics

        pushed.append(ConsoleMetrics(service_name))
    if settings.otlp_endpoint is not None:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        pushed.append(OTLPMetricExporter(endpoint=settings.otlp_endpoint + "/v1/metrics"))
    pushing = [PeriodicExportingMetricReader(e, export_interval_millis=interval) for e in pushed]
    readers: list[MetricReader] = list(pushing)
    if settings.prometheus_port is not None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader

        readers.append(PrometheusMetricReader())
    provider = MeterProvider(metric_readers=readers, resource=where, views=histogram_views(), shutdown_on_exit=False)
    return provider, pushing
