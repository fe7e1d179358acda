"""The readable console summary of ``configure(console=True)``: a line per prediction, metrics now and then.

Two SDK exporters (this module is imported only by ``configure()``, never by ``import prodwrap``):

- :class:`ConsoleSpans` prints one line per finished ``predict {name}`` span::

      predict credit-risk 1.4.0  ok  1.84 ms  served_by=primary attempts=1 cost=$0.00012  trace=4bf92f35

  Attempt, fallback and the application's own spans are not printed: they are in the trace,
  and a line per prediction is what a person reads. ``console="raw"`` prints every span as
  the SDK's JSON instead.
- :class:`ConsoleMetrics` prints a block per metrics export (every ``export_interval`` and
  once more at ``shutdown()``): one line per metric and attribute set, counters as totals and
  histograms as count, mean and the bucket the 95th percentile falls in.

Both write to ``sys.stdout`` as it is when they write (so a redirected stdout is honoured),
under one lock, and never raise: a write that fails is counted and logged
(logger ``prodwrap.telemetry``, once per burst).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TextIO

from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    HistogramDataPoint,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from prodwrap._log import Throttle, logger

_faults = Throttle(logger("telemetry"))
_write_lock = threading.Lock()

PREFIX = "predict "  # the prediction span's name is "predict {model name}" (DESIGN §3, Telemetry)
MAX_METRIC_LINES = 60  # a block longer than this ends with "... N more"


def _stdout() -> TextIO:
    return sys.stdout


def _write(out: Callable[[], TextIO], text: str, what: str) -> bool:
    try:
        with _write_lock:
            stream = out()
            stream.write(text)
            stream.flush()
    except Exception as exc:
        _faults.warning(f"console:{what}", "the console %s summary could not be written: %r", what, exc)
        return False
    return True


def seconds(value: float) -> str:
    """A duration for a person: ``850 µs``, ``1.84 ms``, ``2.50 s``."""
    if value < 0.001:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1e3:.2f} ms"
    return f"{value:.2f} s"


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def span_line(span: ReadableSpan) -> str:
    """The one line printed for a finished prediction span."""
    attrs: Mapping[str, Any] = span.attributes or {}
    head = span.name
    version = attrs.get("prodwrap.model.version")
    if version:
        head += f" {version}"
    outcome = attrs.get("prodwrap.outcome")
    if outcome is None:
        outcome = "error" if span.status.status_code is StatusCode.ERROR else "ok"
    parts = [head, str(outcome)]
    if span.start_time is not None and span.end_time is not None:
        parts.append(seconds((span.end_time - span.start_time) / 1e9))
    details = []
    for key, label in (("error.type", "error"), ("prodwrap.served_by", "served_by"), ("prodwrap.attempts", "attempts")):
        if key in attrs:
            details.append(f"{label}={attrs[key]}")
    if attrs.get("prodwrap.cache.hit"):
        details.append("cache=hit")
    cost = attrs.get("prodwrap.cost.usd")
    if isinstance(cost, int | float) and cost:
        details.append(f"cost=${cost:.6g}")
    if details:
        parts.append(" ".join(details))
    if span.context is not None:
        parts.append(f"trace={span.context.trace_id:032x}"[: len("trace=") + 8])  # the trace id's first 8 hex digits
    return "  ".join(parts)


class ConsoleSpans(SpanExporter):
    """Prints one line per finished prediction span (behind a ``BatchSpanProcessor``)."""

    def __init__(self, out: Callable[[], TextIO] = _stdout) -> None:
        self._out = out

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = [span_line(span) for span in spans if span.name.startswith(PREFIX)]
        if not lines:
            return SpanExportResult.SUCCESS
        ok = _write(self._out, "".join(line + "\n" for line in lines), "span")
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _labels(attributes: Mapping[str, Any] | None) -> str:
    if not attributes:
        return ""
    inner = ", ".join(f"{key.removeprefix('prodwrap.')}={value}" for key, value in sorted(attributes.items()))
    return "{" + inner + "}"


def _histogram(point: HistogramDataPoint, unit: str) -> str:
    show = seconds if unit == "s" else (lambda v: f"{v:g} {unit}".rstrip())
    if not point.count:
        return "n=0"
    text = f"n={point.count} mean={show(point.sum / point.count)}"
    # The bucket the 95th percentile falls in, from the cumulative bucket counts.
    rank, seen = 0.95 * point.count, 0
    for index, count in enumerate(point.bucket_counts):
        seen += count
        if seen >= rank:
            bounds = point.explicit_bounds
            text += f" p95<={show(bounds[index])}" if index < len(bounds) else f" p95>{show(bounds[-1])}"
            break
    return text


def metric_lines(data: MetricsData) -> list[str]:
    """One line per metric and attribute set (unit-aware), prodwrap's own attribute prefix dropped."""
    lines: list[str] = []
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                points: Iterable[Any] = getattr(metric.data, "data_points", ())
                for point in points:
                    name = metric.name + _labels(point.attributes)
                    if isinstance(metric.data, Histogram) and isinstance(point, HistogramDataPoint):
                        lines.append(f"  {name} {_histogram(point, metric.unit or '')}")
                    elif isinstance(metric.data, Sum | Gauge) and isinstance(point, NumberDataPoint):
                        unit = f" {metric.unit}" if metric.unit and not metric.unit.startswith("{") else ""
                        lines.append(f"  {name} {_number(point.value)}{unit}")
    return lines


class ConsoleMetrics(MetricExporter):
    """Prints a metrics summary block per export (behind a ``PeriodicExportingMetricReader``)."""

    def __init__(self, service_name: str, out: Callable[[], TextIO] = _stdout) -> None:
        super().__init__()
        self._service = service_name
        self._out = out

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        lines = metric_lines(metrics_data)
        if not lines:
            return MetricExportResult.SUCCESS
        if len(lines) > MAX_METRIC_LINES:
            lines = [*lines[:MAX_METRIC_LINES], f"  ... {len(lines) - MAX_METRIC_LINES} more"]
        text = f"metrics for {self._service}:\n" + "".join(line + "\n" for line in lines)
        ok = _write(self._out, text, "metrics")
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None
