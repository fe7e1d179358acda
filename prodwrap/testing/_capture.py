"""``capture()``: what prodwrap emitted during a block, in memory, for asserts.

A :class:`Captured` is a ``prodwrap._scope.Capture``: while the block runs, the parts of
prodwrap hand it what they emit (predictions, drift alerts, shadow comparisons, audit lines,
escalations), and every model reads the in-memory OpenTelemetry providers it installs, so
spans and metrics land here too. The SDK is imported when ``capture()`` is entered, never by
``import prodwrap.testing``.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from prodwrap._scope import scoped

if TYPE_CHECKING:
    from prodwrap._model import ProductionModel
    from prodwrap._record import Prediction
    from prodwrap.cost import Charge

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Histogram:
    """A histogram point's value: ``count`` samples summing to ``sum``; ``bucket_counts[i]``
    samples at most ``bounds[i]`` (the last one: above every bound)."""

    count: int
    sum: float
    min: float
    max: float
    bounds: tuple[float, ...]
    bucket_counts: tuple[int, ...]


class Point(NamedTuple):
    """One metric point: its attributes and its value (a counter's total, a gauge's last
    value, or a :class:`Histogram`). Compares equal to a plain ``(attributes, value)`` tuple."""

    attributes: dict[str, Any]
    value: Any


class Captured:
    """What one ``capture()`` block collected. Adds are thread-safe; read it at any time.

    Attributes:
        predictions: every finished call's ``pw.Prediction``, in the order they ended.
        drift_alerts: every ``DriftResult`` that drifted (one per feature per check).
        shadow_comparisons: every shadow comparison record.
        audit_lines: every audit line (a dict), as the audit writer wrote it: call the log's
            ``flush()`` before reading them (the writer is a background thread).
        escalations: every escalated ``pw.Prediction``.
        other: anything else emitted, by kind.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.predictions: list[Prediction] = []
        self.drift_alerts: list[Any] = []
        self.shadow_comparisons: list[Any] = []
        self.audit_lines: list[dict[str, Any]] = []
        self.escalations: list[Prediction] = []
        self.other: dict[str, list[Any]] = {}
        self._lists: dict[str, list[Any]] = {
            "prediction": self.predictions,
            "drift": self.drift_alerts,
            "shadow": self.shadow_comparisons,
            "audit": self.audit_lines,
            "escalation": self.escalations,
        }
        self._spans: Any = None  # the InMemorySpanExporter, once entered
        self._reader: Any = None  # the InMemoryMetricReader, while the block runs
        self._final: dict[str, list[Point]] | None = None  # the metrics at the block's end
        self._meters: Any = None  # its own MeterProvider, while the block runs
        self._instruments: dict[Any, Any] = {}  # fan-out instrument -> this capture's
        self._nested: set[int] = set()  # ids of the predictions of fallback models (in their callers' cost)

    # -- what the fan-out providers hand it (prodwrap.testing._fanout) ------------------------

    def span_ended(self, span: Any) -> None:
        if self._spans is not None:
            self._spans.export((span,))

    def instrument(self, fanned: Any) -> Any:
        """This capture's instrument for a fan-out one (made on first record)."""
        real = self._instruments.get(fanned)
        if real is None:
            from prodwrap.testing._fanout import make_instrument

            with self._lock:
                real = self._instruments.get(fanned)
                if real is None:
                    real = self._instruments[fanned] = make_instrument(self._meters, fanned)
        return real

    # -- what prodwrap hands it ---------------------------------------------------------------

    def add(self, kind: str, item: Any) -> None:
        """Keep ``item`` under ``kind`` (called by ``prodwrap._scope.emit``, on the thread that
        finished the call)."""
        nested = kind == "prediction" and _in_a_callers_bill()
        with self._lock:
            target = self._lists.get(kind)
            if target is None:
                target = self.other.setdefault(kind, [])
            target.append(item)
            if nested:
                self._nested.add(id(item))

    # -- reading ------------------------------------------------------------------------------

    def _predictions(self, model: str | ProductionModel[Any, ..., Any] | None) -> list[Prediction]:
        name = _name_of(model)
        with self._lock:
            return [p for p in self.predictions if name is None or p.model == name]

    def outcomes(self, model: str | ProductionModel[Any, ..., Any] | None = None) -> Counter[str]:
        """Calls by outcome (``"ok"``, ``"fallback"``, ``"cached"``, ``"error"``), of every
        model or of the one named. A ``Counter`` compares equal to a plain dict."""
        return Counter(p.outcome for p in self._predictions(model))

    def served_by(self, model: str | ProductionModel[Any, ..., Any] | None = None) -> Counter[str]:
        """Calls by who served them (``"primary"``, a fallback's name, ``"cache"``, ...)."""
        return Counter(p.served_by for p in self._predictions(model))

    def total_cost(self, model: str | ProductionModel[Any, ..., Any] | None = None) -> Decimal:
        """The sum of the captured predictions' ``cost`` (USD), of every model or of one.

        A model called as another model's fallback ends its own prediction too, and its cost
        is also in its caller's: the total of every model counts it once (in its caller's),
        the total of that model alone counts its own calls.
        """
        if model is not None:
            return sum((p.cost for p in self._predictions(model)), _ZERO)
        with self._lock:
            return sum((p.cost for p in self.predictions if id(p) not in self._nested), _ZERO)

    def charges(self, model: str | ProductionModel[Any, ..., Any] | None = None) -> list[Charge]:
        """Every ``pw.Charge`` of the captured predictions, in order."""
        return [charge for p in self._predictions(model) for charge in p.charges]

    def spans(self, name: str | None = None) -> list[Any]:
        """Finished spans (SDK ``ReadableSpan``), in the order they ended; only those named
        ``name`` when given (``cap.spans("predict credit-risk")``)."""
        if self._spans is None:
            return []
        finished = list(self._spans.get_finished_spans())
        return finished if name is None else [s for s in finished if s.name == name]

    def metrics(self) -> dict[str, list[Point]]:
        """Every metric recorded so far: name -> its points, each ``(attributes, value)``.

        ``cap.metrics()["prodwrap.predictions"] == [({"prodwrap.outcome": "ok", ...}, 3)]``;
        a histogram's value is a :class:`Histogram`. After the block, the metrics as they
        stood when it ended.
        """
        if self._final is not None:
            return {name: list(points) for name, points in self._final.items()}
        if self._reader is None:
            return {}
        return _points(self._reader.get_metrics_data())

    def clear(self) -> None:
        """Forget everything collected so far (spans included)."""
        with self._lock:
            for items in self._lists.values():
                items.clear()
            self.other.clear()
            self._nested.clear()  # (ids of predictions no longer held: they may be reused)
        if self._spans is not None:
            self._spans.clear()

    def __repr__(self) -> str:
        counts = ", ".join(f"{kind}={len(items)}" for kind, items in self._lists.items() if items)
        return f"<Captured {counts or 'nothing'}>"


def _name_of(model: object) -> str | None:
    """The name of the model a query asks about: a name, or the model itself."""
    if model is None or isinstance(model, str):
        return model
    name = getattr(model, "name", None)
    from prodwrap._model import ProductionModel  # (the testing package loads without a model)

    if isinstance(model, ProductionModel) and isinstance(name, str):
        return name
    raise TypeError(f"a capture is queried by a model's name or the model itself, got {model!r}")


def _points(data: Any) -> dict[str, list[Point]]:
    out: dict[str, list[Point]] = {}
    if data is None:
        return out
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points = out.setdefault(metric.name, [])
                for point in metric.data.data_points:
                    points.append(Point(dict(point.attributes or {}), _value(point)))
    return out


def _value(point: Any) -> Any:
    if hasattr(point, "bucket_counts"):
        return Histogram(
            point.count,
            point.sum,
            point.min,
            point.max,
            tuple(point.explicit_bounds),
            tuple(point.bucket_counts),
        )
    return point.value


@contextmanager
def capture() -> Iterator[Captured]:
    """Collect what every model emits until the block ends: predictions, spans, metrics,
    charges, drift alerts, shadow comparisons, audit lines and escalations.

    In-memory OpenTelemetry SDK providers are installed for the block only (the models'
    own ``tracer_provider=``/``meter_provider=`` still win); captures nest, and each one in
    force receives everything, spans and metrics included (``prodwrap.testing._fanout``).
    Process-wide, like ``no_sleep()``: calls on other threads are captured too.
    """
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from prodwrap.testing._fanout import providers

    captured = Captured()
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    captured._spans, captured._reader, captured._meters = InMemorySpanExporter(), reader, meter_provider
    tracer_provider, meters = providers()  # shared: each capture in force gets every item
    try:
        with scoped(captured, tracer_provider=tracer_provider, meter_provider=meters):
            yield captured
    finally:
        captured._final = _points(reader.get_metrics_data())
        captured._reader = None
        meter_provider.shutdown()


def _in_a_callers_bill() -> bool:
    """Whether the call finishing here is a fallback model's whose charges its calling model
    collects (its cost is in the caller's prediction too)."""
    charges = sys.modules.get("prodwrap.cost._stage")  # (not loaded: no model has a cost)
    return charges is not None and charges.COLLECT.get() is not None
