"""pw.Escalate: exactly the matching predictions are marked and reach the sink, off the hot
path; a failing sink never costs a prediction."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import prodwrap as pw
from prodwrap import _finish
from prodwrap._record import CallRecord
from prodwrap.rollout.escalate import EscalationStage

WAIT = 10.0


def stage_of(model: Any) -> EscalationStage:
    return next(s for s in model._engine.stages if isinstance(s, EscalationStage))


def uncertain(out: float) -> bool:
    return 0.4 < out < 0.6


def score(x: int) -> float:
    return 0.5 if x % 10 == 3 else 0.9  # one output in ten is uncertain


def test_exactly_the_matching_tenth_is_escalated_and_reaches_the_sink(monkeypatch: pytest.MonkeyPatch) -> None:
    made = [0]
    original = CallRecord.__init__

    def counting(self: CallRecord, start: float) -> None:
        made[0] += 1
        original(self, start)

    monkeypatch.setattr(CallRecord, "__init__", counting)
    sink: list[pw.Prediction] = []
    model = pw.ProductionModel(score, escalate=pw.Escalate(when=uncertain, to=sink.append))
    assert model._engine.fast is not None
    values = [model(x) for x in range(1000)]
    assert values == [score(x) for x in range(1000)]
    assert made[0] == 100  # a record (and a Prediction) for the matching calls only
    assert stage_of(model).flush(WAIT)
    assert len(sink) == 100 and all(p.escalated and p.value == 0.5 for p in sink)
    assert all(p.outcome == "ok" and p.latency > 0 and p.attempts == 1 for p in sink)
    stats = model.stats().escalation
    assert (stats.calls, stats.escalated, stats.rate, stats.delivered) == (1000, 100, 0.1, 100)
    assert stats.reasons == {"escalated": 100}
    model.close()


def test_predict_detailed_says_escalated() -> None:
    sink: list[pw.Prediction] = []
    model = pw.ProductionModel(score, escalate=pw.Escalate(when=uncertain, to=sink.append))
    hit, miss = model.predict_detailed(3), model.predict_detailed(4)
    assert hit.escalated and not miss.escalated
    stage_of(model).flush(WAIT)
    assert sink == [hit]  # the same Prediction object the caller got
    model.close()


def test_a_raising_sink_leaves_every_prediction_intact() -> None:
    def down(p: pw.Prediction) -> None:
        raise ConnectionError("ticket system down")

    model = pw.ProductionModel(score, escalate=pw.Escalate(when=uncertain, to=down))
    assert [model(x) for x in range(100)] == [score(x) for x in range(100)]
    stage_of(model).flush(WAIT)
    stats = model.stats()
    assert (stats.escalation.escalated, stats.escalation.failed, stats.escalation.delivered) == (10, 10, 0)
    assert stats.observer_errors == 0 and stats.outcomes == {"ok": 100}
    model.close()


def test_a_raising_when_is_no_match_and_counted() -> None:
    def when(out: float) -> bool:
        raise ValueError("bad predicate")

    model = pw.ProductionModel(score, escalate=pw.Escalate(when=when, to=print))
    assert model(3) == 0.5 and model.predict_detailed(3).value == 0.5
    stats = model.stats().escalation
    assert (stats.escalated, stats.faults) == (0, 2)
    model.close()


def test_a_full_queue_counts_the_loss_and_close_hands_over_what_is_queued() -> None:
    entered, release = threading.Event(), threading.Event()
    got: list[Any] = []

    def slow(p: pw.Prediction) -> None:
        entered.set()
        release.wait(WAIT)
        got.append(p.value)

    model = pw.ProductionModel(lambda x: x, escalate=pw.Escalate(when=lambda out: True, to=slow, max_pending=2))
    model(1)
    assert entered.wait(WAIT)
    model(2)  # queued behind the first (two pending)
    model(3)  # dropped
    stats = model.stats().escalation
    assert (stats.escalated, stats.dropped, stats.pending) == (3, 1, 2)
    release.set()
    model.close()
    assert got == [1, 2]
    model(4)  # after close: escalated and counted as dropped
    assert model.stats().escalation.dropped == 2


def test_reasons_are_counted(captured: Any) -> None:
    model = pw.ProductionModel(
        lambda x: x,
        escalate=pw.Escalate(when=lambda out: out < 0.5, to=lambda p: None, reason=lambda o: f"low:{o < 0.2}"),
    )
    for x in (0.1, 0.3, 0.9, 0.15):
        model(x)
    assert model.stats().escalation.reasons == {"low:True": 2, "low:False": 1}
    assert [p.value for p in captured.of("escalation")] == [0.1, 0.3, 0.15]
    model.close()


def test_fallback_outputs_are_considered_and_errors_are_not() -> None:
    sink: list[pw.Prediction] = []

    def down(x: int) -> float:
        if x < 0:
            raise ConnectionError("down")
        if x == 0:
            raise KeyError("bug")
        return 0.9

    model = pw.ProductionModel(down, fallback=pw.Constant(0.5), escalate=pw.Escalate(when=uncertain, to=sink.append))
    assert model(-1) == 0.5  # the fallback's uncertain output goes to a person
    unserved = pw.ProductionModel(down, escalate=pw.Escalate(when=lambda out: True, to=sink.append))
    with pytest.raises(KeyError):
        unserved(0)
    stage_of(model).flush(WAIT)
    assert [(p.outcome, p.escalated) for p in sink] == [("fallback", True)]
    assert unserved.stats().escalation.calls == 0
    model.close()
    unserved.close()


def test_the_audit_line_and_other_observers_see_escalated() -> None:
    lines: list[dict[str, Any]] = []
    seen: list[pw.Prediction] = []
    log = pw.AuditLog(lines.append)
    model = pw.ProductionModel(
        score, audit=log, observers=[seen.append], escalate=pw.Escalate(when=uncertain, to=lambda p: None)
    )
    model(3)
    model(4)
    log.flush(WAIT)
    assert [line["escalated"] for line in lines] == [True, False]
    assert [p.escalated for p in seen] == [True, False]
    model.close()


async def test_an_async_model_escalates() -> None:
    sink: list[pw.Prediction] = []

    async def ascore(x: int) -> float:
        return score(x)

    model = pw.ProductionModel(ascore, escalate=pw.Escalate(when=uncertain, to=sink.append))
    assert model._engine.fast is not None
    assert [await model(x) for x in range(20)] == [score(x) for x in range(20)]
    stage_of(model).flush(WAIT)
    assert [p.value for p in sink] == [0.5, 0.5]
    model.close()


def test_the_finish_point_makes_no_record_without_an_asking_observer() -> None:
    model = pw.ProductionModel(score)
    assert model._engine.finisher.finish == model._engine.finisher._finish
    asking = pw.ProductionModel(score, escalate=pw.Escalate(when=uncertain, to=print))
    assert asking._engine.finisher.finish == asking._engine.finisher._finish_asking
    assert _finish.Finisher is type(asking._engine.finisher)
    asking.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"when": 3, "to": print}, "when"),
        ({"when": uncertain, "to": None}, "to"),
        ({"when": uncertain, "to": print, "reason": ""}, "reason"),
        ({"when": uncertain, "to": print, "max_pending": 0}, "max_pending"),
    ],
)
def test_nonsense_is_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(pw.ConfigurationError, match=message):
        pw.Escalate(**options)


def test_escalate_through_the_production_decorator() -> None:
    sink: list[pw.Prediction] = []

    @pw.production(escalate=pw.Escalate(when=uncertain, to=sink.append, reason="uncertain"))
    def predict(x: int) -> float:
        return score(x)

    predict(13)
    stage_of(predict).flush(WAIT)
    assert [p.value for p in sink] == [0.5]
    assert predict.describe()["escalate"]["reason"] == "uncertain"
    with pytest.raises(pw.ConfigurationError, match="escalate"):
        pw.ProductionModel(score, escalate=uncertain)  # type: ignore[arg-type]
    predict.close()


def test_the_reviewer_sees_the_output_as_it_was_served() -> None:
    seen: list[pw.Prediction] = []
    hold = threading.Event()

    def review(p: pw.Prediction) -> None:
        hold.wait(10)
        seen.append(p)

    model = pw.ProductionModel(lambda x: {"p": 0.5}, escalate=pw.Escalate(when=lambda out: out["p"] == 0.5, to=review))
    out = model(1)
    out["p"] = 0.99  # the caller changes what it was served before the reviewer runs
    hold.set()
    model.close()
    assert [p.value for p in seen] == [{"p": 0.5}]
