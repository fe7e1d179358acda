"""Telemetry of the rollout stages: linked shadow spans, comparison, canary and escalation metrics."""

from __future__ import annotations

import threading
from typing import Any

import prodwrap as pw


def test_shadow_runs_are_linked_to_the_primary_not_children(traces: Any, metrics: Any) -> None:
    done = threading.Semaphore(0)

    def candidate(x: int) -> int:
        done.release()
        return x if x % 2 else -x  # agrees on odd inputs

    model = pw.ProductionModel(
        lambda x: x,
        name="m",
        shadow=pw.Shadow(candidate, name="next"),
        tracer_provider=traces.provider,
        meter_provider=metrics.provider,
    )
    for i in range(1, 5):
        model(i)
    for _ in range(4):
        assert done.acquire(timeout=10)
    model.shadow_report(wait=None)
    model.close()
    primaries = traces.spans("predict m")
    shadows = traces.spans("shadow next")
    assert len(primaries) == 4 and len(shadows) == 4
    primary_ids = {s.context.span_id for s in primaries}
    for span in shadows:
        assert span.parent is None  # its own trace, not a child of the call
        assert len(span.links) == 1 and span.links[0].context.span_id in primary_ids
        assert span.context.trace_id not in {p.context.trace_id for p in primaries}
    counts = {p.attributes["prodwrap.shadow.agree"]: p.value for p in metrics.points("prodwrap.shadow.comparisons")}
    assert counts == {"true": 2, "false": 2}


def test_a_canary_rollback_is_an_event_and_a_metric(traces: Any, metrics: Any) -> None:
    def candidate(x: int) -> int:
        raise RuntimeError("broken candidate")

    guard = pw.Guard(max_error_rate=0.5, min_calls=1000, max_consecutive_failures=3)
    model = pw.ProductionModel(
        lambda x: x,
        name="shop",
        fallback=pw.Constant(0),
        canary=pw.Canary(candidate, 1.0, guard=guard),
        tracer_provider=traces.provider,
        meter_provider=metrics.provider,
    )
    for i in range(6):
        model(i)
    assert model.stats().canary.state == "rolled_back"
    events = [e for s in traces.spans() for e in s.events if e.name == "prodwrap.canary"]
    assert [e.attributes["prodwrap.canary.event"] for e in events] == ["rolled_back"]
    (point,) = metrics.points("prodwrap.canary.events")
    assert point.attributes["prodwrap.canary.event"] == "rolled_back" and point.value == 1
    served = [s.attributes["prodwrap.served_by"] for s in traces.spans("predict shop")]
    assert served == ["constant"] * 3 + ["primary"] * 3


def test_escalations_are_counted(metrics: Any) -> None:
    seen: list[Any] = []
    arrived = threading.Semaphore(0)

    def review(p: pw.Prediction) -> None:
        seen.append(p)
        arrived.release()

    model = pw.ProductionModel(
        lambda x: x,
        name="m",
        escalate=pw.Escalate(when=lambda out: out % 10 == 0, to=review),
        meter_provider=metrics.provider,
    )
    for i in range(100):
        model(i)
    for _ in range(10):
        assert arrived.acquire(timeout=10)
    model.close()
    (point,) = metrics.points("prodwrap.escalations")
    assert point.value == 10 and len(seen) == 10
