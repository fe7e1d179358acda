"""Telemetry's cost per call, against baselines in the same process (DESIGN §4).

- No provider installed: a model (telemetry on, the default) against the same model with
  ``telemetry=False``: what the call-time check costs (the core rows must not move).
- An SDK tracer installed (a ``BatchSpanProcessor`` with an exporter that drops): a traced
  model against a hand-written SDK span around the bare call (target <= 1.2x), and against a
  hand-written span carrying the same attributes prodwrap sets.
- An SDK meter installed: a model against a hand-written counter and histogram.

    .venv/bin/python benchmarks/telemetry.py [--quick]
"""

from __future__ import annotations

import argparse
import gc
import statistics
from collections.abc import Callable
from time import perf_counter_ns
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import prodwrap as pw


class Drop(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def predict(x: int) -> int:
    return x + 1


TRACES = TracerProvider()
TRACES.add_span_processor(BatchSpanProcessor(Drop()))
TRACER = TRACES.get_tracer("bench")
METERS = MeterProvider(metric_readers=[InMemoryMetricReader()])
METER = METERS.get_meter("bench")
COUNTER = METER.create_counter("hand.predictions")
HISTOGRAM = METER.create_histogram("hand.duration", unit="s")

PLAIN_ON = pw.ProductionModel(predict, name="m")
PLAIN_OFF = pw.ProductionModel(predict, name="m", telemetry=False)
FULL = {"retry": pw.Retry(attempts=3, on=(ConnectionError,)), "fallback": pw.Constant(0), "cost": pw.PerCall("0.0001")}
FULL_ON = pw.ProductionModel(predict, name="m", **FULL)  # type: ignore[arg-type]
FULL_OFF = pw.ProductionModel(predict, name="m", telemetry=False, **FULL)  # type: ignore[arg-type]
TRACED = pw.ProductionModel(predict, name="m", tracer_provider=TRACES)
METERED = pw.ProductionModel(predict, name="m", meter_provider=METERS)
SAME = {"prodwrap.model.name": "m", "prodwrap.outcome": "ok", "prodwrap.served_by": "primary", "prodwrap.attempts": 1}
LABELS = {"prodwrap.model.name": "m", "prodwrap.outcome": "ok", "prodwrap.served_by": "primary"}


def hand_span(x: int) -> int:
    with TRACER.start_as_current_span("predict m"):
        return predict(x)


def hand_span_attrs(x: int) -> int:
    with TRACER.start_as_current_span("predict m") as span:
        out = predict(x)
        span.set_attributes(
            {
                "prodwrap.model.name": "m",
                "prodwrap.outcome": "ok",
                "prodwrap.served_by": "primary",
                "prodwrap.attempts": 1,
            }
        )
        return out


def hand_metrics(x: int) -> int:
    start = perf_counter_ns()
    out = predict(x)
    COUNTER.add(1, LABELS)
    HISTOGRAM.record((perf_counter_ns() - start) / 1e9, LABELS)
    return out


CASES: dict[str, Callable[[int], Any]] = {
    "bare": predict,
    "plain_off": PLAIN_OFF,
    "plain_on": PLAIN_ON,
    "full_off": FULL_OFF,
    "full_on": FULL_ON,
    "hand_span": hand_span,
    "hand_span_attrs": hand_span_attrs,
    "traced": TRACED,
    "hand_metrics": hand_metrics,
    "metered": METERED,
}


def run(fn: Callable[[int], Any], n: int) -> float:
    gc.disable()
    try:
        start = perf_counter_ns()
        for i in range(n):
            fn(i)
        return (perf_counter_ns() - start) / n / 1000
    finally:
        gc.enable()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    repeats = 3 if quick else 15
    sizes = dict.fromkeys(CASES, 2000 if quick else 20000)
    for k in ("bare", "plain_off", "plain_on", "full_off", "full_on"):
        sizes[k] *= 10
    samples: dict[str, list[float]] = {k: [] for k in CASES}
    for _ in range(repeats):  # interleaved: drift in machine speed hits every case alike
        for key, fn in CASES.items():
            samples[key].append(run(fn, sizes[key]))
    med = {k: statistics.median(v) for k, v in samples.items()}
    for key in CASES:
        print(f"  {key:<16} {med[key]:8.3f} µs/call")
    rows = [
        ("no provider: check, minimal model (µs)", f"{med['plain_on'] - med['plain_off']:+.3f}", "~0", None),
        ("no provider: check, row-3 pipeline (µs)", f"{med['full_on'] - med['full_off']:+.3f}", "~0", None),
        ("traced / hand-written span", f"{med['traced'] / med['hand_span']:.2f}x", "<= 1.2x", None),
        ("traced / hand-written span, same attributes", f"{med['traced'] / med['hand_span_attrs']:.2f}x", "", None),
        ("metered / hand-written counter+histogram", f"{med['metered'] / med['hand_metrics']:.2f}x", "", None),
    ]
    rows[2] = (*rows[2][:3], med["traced"] / med["hand_span"] <= 1.2)
    print()
    print(f"  {'row':<48} {'value':>9}  {'target':<10} ok")
    for name, value, target, ok in rows:
        mark = "" if ok is None else ("PASS" if ok else "FAIL")
        print(f"  {name:<48} {value:>9}  {target:<10} {mark}")
    TRACES.shutdown()
    METERS.shutdown()


if __name__ == "__main__":
    main()
