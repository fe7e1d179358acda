"""``prodwrap.testing.capture()``: what prodwrap emits during a block, in memory (issue 14, item 1)."""

from __future__ import annotations

import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import prodwrap as pw
from prodwrap import _scope
from prodwrap._scope import SCOPE, emit
from prodwrap.testing import Captured, Histogram, capture


def double(x: float) -> float:
    return 2 * x


def boom(x: float) -> float:
    raise ConnectionError("down")


def test_predictions_outcomes_served_by_and_cost() -> None:
    model = pw.ProductionModel(double, name="doubler", cost=pw.PerCall("0.25"), fallback=pw.Constant(0.0))
    broken = pw.ProductionModel(boom, name="broken", cost=pw.PerCall("0.25"), fallback=pw.Constant(0.0))
    with capture() as cap:
        model(1.0)  # the success path
        model.predict_detailed(2.0)
        broken(3.0)
    assert [p.value for p in cap.predictions] == [2.0, 4.0, 0.0]
    assert cap.outcomes() == {"ok": 2, "fallback": 1}
    assert cap.outcomes("broken") == {"fallback": 1}
    assert cap.served_by() == {"primary": 2, "constant": 1}
    assert cap.total_cost() == Decimal("0.75")
    assert cap.total_cost("doubler") == Decimal("0.50")
    assert [(c.model, c.served_by, c.amount) for c in cap.charges("doubler")] == [
        ("doubler", "primary", Decimal("0.25")),
        ("doubler", "primary", Decimal("0.25")),
    ]
    assert isinstance(cap.total_cost(), Decimal)


def test_the_total_counts_a_fallback_models_cost_once() -> None:
    backup = pw.ProductionModel(double, name="backup", cost=pw.PerCall("0.10"))
    model = pw.ProductionModel(boom, name="front", cost=pw.PerCall("0.25"), fallback=backup)
    with capture() as cap:
        assert model(1.0) == 2.0  # front's failed attempt (0.25), then backup's call (0.10)
        assert backup(2.0) == 4.0  # backup on its own (0.10)
    assert [p.model for p in cap.predictions] == ["backup", "front", "backup"]
    assert cap.total_cost("front") == Decimal("0.35")  # its own and its fallback's
    assert cap.total_cost("backup") == Decimal("0.20")  # both of its calls
    assert cap.total_cost() == Decimal("0.45")  # each call once: 0.35 + 0.10


def test_the_total_after_clear_counts_every_new_call() -> None:
    backup = pw.ProductionModel(double, name="backup2", cost=pw.PerCall("0.10"))
    front = pw.ProductionModel(boom, name="front2", cost=pw.PerCall("0.25"), fallback=backup)
    other = pw.ProductionModel(double, name="other", cost=pw.PerCall("1"))
    with capture() as cap:
        for _ in range(20):
            front(1.0)
        cap.clear()
        for _ in range(5):
            other(1.0)
    assert cap.total_cost() == Decimal("5")


def test_real_models_emit_predictions_spans_and_metrics_into_the_capture() -> None:
    model = pw.ProductionModel(double, name="doubler")
    with capture() as cap:
        model(1.0)  # the success path, no predict_detailed
        prediction = model.predict_detailed(2.0)
    assert [p.value for p in cap.predictions] == [2.0, 4.0] and cap.predictions[1] is prediction
    spans = cap.spans("predict doubler")
    assert len(spans) == 2 and spans[1].attributes["prodwrap.outcome"] == "ok"
    assert prediction.trace_id == f"{spans[1].context.trace_id:032x}"
    (point,) = cap.metrics()["prodwrap.predictions"]
    assert point.value == 2 and point.attributes["prodwrap.model.name"] == "doubler"
    model(3.0)  # after the block: nothing more arrives
    assert len(cap.predictions) == 2 and len(cap.spans()) == 2


def test_each_kind_lands_in_its_list_and_unknown_kinds_are_kept() -> None:
    with capture() as cap:
        for kind in ("drift", "shadow", "audit", "escalation", "rollback"):
            emit(kind, kind + "-item")
    assert cap.drift_alerts == ["drift-item"]
    assert cap.shadow_comparisons == ["shadow-item"]
    assert cap.audit_lines == ["audit-item"]  # type: ignore[comparison-overlap]
    assert cap.escalations == ["escalation-item"]  # type: ignore[comparison-overlap]
    assert cap.other == {"rollback": ["rollback-item"]}
    cap.clear()
    assert cap.drift_alerts == [] and cap.other == {}


def test_the_scope_is_installed_only_for_the_block_and_captures_nest() -> None:
    assert not SCOPE.on
    with capture() as outer:
        provider = SCOPE.tracer_provider
        assert SCOPE.on and type(provider).__name__ == "TracerProvider"
        with capture() as inner:
            assert SCOPE.tracer_provider is provider  # one provider, fanned out to each capture
            emit("drift", 1)
        assert SCOPE.tracer_provider is provider
        emit("drift", 2)
    assert not SCOPE.on and SCOPE.tracer_provider is None and SCOPE.captures == ()
    assert outer.drift_alerts == [1, 2] and inner.drift_alerts == [1]
    assert inner is not outer
    emit("drift", 3)  # outside every scope: nobody receives it
    assert outer.drift_alerts == [1, 2]


def test_nested_captures_each_get_every_span_and_metric_while_in_force() -> None:
    model = pw.ProductionModel(lambda x: 2 * x, name="doubler")
    with capture() as outer:
        model(0)
        with capture() as inner:
            model(1)
            model(2)
        model(3)
    assert len(inner.spans("predict doubler")) == 2 and len(outer.spans("predict doubler")) == 4
    assert [p.value for p in inner.metrics()["prodwrap.predictions"]] == [2]
    assert [p.value for p in outer.metrics()["prodwrap.predictions"]] == [4]
    (histogram,) = outer.metrics()["prodwrap.prediction.duration"]
    assert histogram.value.count == 4


def test_spans_from_the_scoped_tracer_provider_filtered_by_name() -> None:
    with capture() as cap:
        tracer = SCOPE.tracer_provider.get_tracer("test")
        with tracer.start_as_current_span("predict credit"), tracer.start_as_current_span("attempt credit"):
            pass
        with tracer.start_as_current_span("predict credit"):
            pass
    assert [s.name for s in cap.spans()] == ["attempt credit", "predict credit", "predict credit"]
    assert len(cap.spans("predict credit")) == 2 and cap.spans("nothing") == []
    child, parent = cap.spans()[:2]
    assert child.parent is not None and child.parent.span_id == parent.context.span_id


def test_metrics_are_name_to_points_and_stay_readable_after_the_block() -> None:
    with capture() as cap:
        meter = SCOPE.meter_provider.get_meter("test")
        counter = meter.create_counter("prodwrap.predictions")
        counter.add(2, {"prodwrap.outcome": "ok"})
        counter.add(1, {"prodwrap.outcome": "fallback"})
        counter.add(1, {"prodwrap.outcome": "ok"})
        assert cap.metrics()["prodwrap.predictions"] == [
            ({"prodwrap.outcome": "ok"}, 3),
            ({"prodwrap.outcome": "fallback"}, 1),
        ]
        meter.create_histogram("prodwrap.prediction.duration").record(0.3)
    (point,) = cap.metrics()["prodwrap.prediction.duration"]
    assert point.attributes == {}
    assert isinstance(point.value, Histogram) and (point.value.count, point.value.sum) == (1, 0.3)
    assert sum(point.value.bucket_counts) == 1
    assert cap.metrics()["prodwrap.predictions"][0].value == 3  # after the block: as it ended


def test_adds_from_many_threads_are_all_kept() -> None:
    threads, each = 8, 500
    start = threading.Barrier(threads)

    def run(t: int) -> None:
        start.wait()
        for i in range(each):
            emit("shadow", (t, i))

    with capture() as cap:
        workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    assert sorted(cap.shadow_comparisons) == [(t, i) for t in range(threads) for i in range(each)]


class Raising:
    def add(self, kind: str, item: Any) -> None:
        raise RuntimeError("capture broke")


def test_a_capture_that_raises_is_counted_never_passed_on() -> None:
    before = SCOPE.errors
    with _scope.scoped(Raising()), capture() as cap:
        emit("drift", "x")
    assert cap.drift_alerts == ["x"] and SCOPE.errors == before + 1


def test_the_drift_monitors_alerts_are_captured() -> None:
    rng = np.random.default_rng(0)
    monitor = pw.DriftMonitor(rng.normal(size=(500, 2)), window=200, background=False)
    model = pw.ProductionModel(lambda x: float(x[0]), name="m", drift=monitor)
    with capture() as cap:
        for row in rng.normal(size=(200, 2)) + np.array([0.0, 3.0]):
            model(list(row))
    assert [r.feature for r in cap.drift_alerts] == [1]
    assert cap.drift_alerts[0].drifted and cap.drift_alerts[0] is monitor.alerts[-1]
    model(list(rng.normal(size=2)))  # outside the block: nothing more arrives
    assert len(cap.drift_alerts) == 1


def test_audit_lines_are_captured_as_written_by_the_captures_of_their_call(tmp_path: Path) -> None:
    lines: list[dict[str, Any]] = []
    log = pw.AuditLog(lines.append, redact=["ssn"])
    model = pw.ProductionModel(lambda r: r["age"] / 100, name="credit", audit=log)
    assert model._engine.fast is not None
    with capture() as cap:
        model({"age": 40, "ssn": "123-45-6789"})
        assert log.flush(5)
    model({"age": 50, "ssn": "1"})  # a later call: not this capture's
    with capture() as later:
        assert log.flush(5)
    log.close()
    assert cap.audit_lines == [lines[0]]
    assert cap.audit_lines[0]["output"] == 0.4 and cap.audit_lines[0]["input"]["ssn"].startswith("redacted:")
    assert later.audit_lines == [] and len(lines) == 2


def test_a_line_the_sink_refused_is_not_captured() -> None:
    def refusing(line: dict[str, Any]) -> None:
        raise OSError("disk full")

    log = pw.AuditLog(refusing)
    model = pw.ProductionModel(double, name="m", audit=log)
    with capture() as cap:
        model(1.0)
        log.flush(5)
    log.close()
    assert cap.audit_lines == [] and log.stats().failed == 1


def test_importing_prodwrap_testing_loads_no_sdk_and_no_hypothesis() -> None:
    code = (
        "import sys, prodwrap.testing; "
        "assert 'opentelemetry.sdk' not in sys.modules, 'sdk'; "
        "assert 'hypothesis' not in sys.modules, 'hypothesis'; "
        "import prodwrap.testing._plugin; "
        "assert 'opentelemetry.sdk' not in sys.modules and 'hypothesis' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_fixture_gives_a_capture_in_force(prodwrap_capture: Captured) -> None:
    assert prodwrap_capture in SCOPE.captures
    emit("escalation", "p")
    assert prodwrap_capture.escalations == ["p"]  # type: ignore[comparison-overlap]


def test_captures_ending_out_of_order_leave_none_in_force() -> None:
    import asyncio

    seen: dict[str, Captured] = {}

    async def block(name: str, hold: float) -> None:
        with capture() as cap:
            seen[name] = cap
            await asyncio.sleep(hold)

    async def both() -> None:
        await asyncio.gather(block("a", 0.01), block("b", 0.05))  # a enters, b enters, a exits, b exits

    asyncio.run(both())
    assert not SCOPE.on and SCOPE.captures == () and SCOPE.tracer_provider is None
    pw.ProductionModel(lambda x: x, name="later")(1)
    assert seen["a"].predictions == [] and seen["b"].predictions == [] and seen["b"].spans() == []


def test_queries_take_a_model_or_its_name() -> None:
    inner = pw.ProductionModel(lambda x: "s", name="small", cost=pw.PerCall("0.001"))
    outer = pw.ProductionModel(lambda x: 1 / x, name="big", cost=pw.PerCall("0.01"), fallback=inner)
    with capture() as cap:
        outer(1)
        outer(0)
    assert cap.total_cost(inner) == cap.total_cost("small") == Decimal("0.001")
    assert cap.outcomes(outer) == {"ok": 1, "fallback": 1}
    assert cap.served_by(inner) == {"primary": 1}
    assert len(cap.charges(inner)) == 1
    with pytest.raises(TypeError, match="name or the model itself"):
        cap.outcomes(42)  # type: ignore[arg-type]
