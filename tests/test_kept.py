"""Whose state a policy keeps: what the primary's policies count outlives an engine rebuild."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest

import prodwrap as pw
from prodwrap.telemetry._stage import TelemetryStage
from prodwrap.testing import FakeClock


class Down:
    """A dependency that is down: every call fails (counted)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x: Any) -> Any:
        self.calls += 1
        raise ConnectionError("down")


def _guarded(fn: Any, **options: Any) -> pw.ProductionModel[Any, Any, Any]:
    return pw.ProductionModel(
        fn,
        name="m",
        version="1",
        circuit=pw.CircuitBreaker(window=2, open_for=3600),
        rate_limit=pw.RateLimit(calls=3, per=3600.0),
        fallback=pw.Constant(-1),
        **options,
    )


def test_stage_and_the_rollback_of_a_candidate_keep_the_primarys_circuit_and_quota(clock: FakeClock) -> None:
    down = Down()
    model = _guarded(down)
    handle = model.circuit
    assert [model(1), model(2)] == [-1, -1] and down.calls == 2
    assert model.circuit is not None and model.circuit.state == "open"
    for rebuild in (lambda: model.stage(lambda x: x, version="2", mode="shadow"), model.rollback):
        rebuild()
        assert model.circuit is handle  # the same breaker: open, one trip
        stats = model.stats()
        assert stats.circuit is not None and (stats.circuit.state, stats.circuit.trips) == ("open", 1)
        assert stats.rate_limit is not None and stats.rate_limit.permits == 2
        assert model(3) == -1 and down.calls == 2  # refused by the open circuit, not called
    handle.close()
    assert model(4) == -1 and down.calls == 3  # the third permit of the hour
    model.stage(lambda x: x, version="2", mode="shadow")
    assert model(5) == -1 and down.calls == 3  # no fourth: the quota spent before the swap stays spent
    stats = model.stats()
    assert stats.rate_limit is not None and (stats.rate_limit.permits, stats.rate_limit.refusals) == (3, 1)


def test_a_permit_held_in_flight_on_the_old_engine_is_the_new_engines_too() -> None:
    entered, release = threading.Event(), threading.Event()

    def slow(x: Any) -> Any:
        entered.set()
        assert release.wait(10)
        return x

    model = pw.ProductionModel(slow, bulkhead=pw.Bulkhead(1), fallback=pw.Constant(-1))
    first = threading.Thread(target=model, args=(1,))
    first.start()
    try:
        assert entered.wait(10)
        model.stage(lambda x: x, version="2", mode="shadow")
        assert model(2) == -1  # Bulkhead(1): the one permit is the call's in flight on the old engine
        stats = model.stats()
        assert stats.bulkhead is not None and (stats.bulkhead.in_use, stats.bulkhead.full) == (1, 1)
    finally:
        release.set()
        first.join()
    assert model(3) == 3


def test_the_retry_budget_the_budgets_and_the_cache_go_on_across_a_stage(clock: FakeClock) -> None:
    down = Down()
    retry = pw.Retry(
        attempts=2, wait=pw.backoff(initial=0, jitter=False), budget=pw.RetryBudget(ratio=0, min_per_second=0.1)
    )
    model = pw.ProductionModel(down, name="m", retry=retry, fallback=pw.Constant(-1))
    assert model(1) == -1 and down.calls == 2  # the floor: one retry per 10 s window
    model.stage(lambda x: x, mode="shadow")
    assert model(2) == -1 and down.calls == 3  # spent before the stage: denied
    stats = model.stats().retry_budget
    assert stats is not None and (stats.calls, stats.retries, stats.denied) == (2, 1, 1)

    priced = pw.ProductionModel(
        lambda x: x,
        name="p",
        cost=pw.PerCall("1"),
        budget=pw.Budget("2", per="day", action="fallback"),
        cache=pw.Cache(),
        fallback=pw.Constant(-1),
    )
    assert [priced(1), priced(2), priced(3)] == [1, 2, -1]
    priced.stage(lambda x: x, mode="shadow")
    assert [priced(1), priced(4)] == [1, -1]  # a cache hit (free), then the day's 2 USD are spent
    stats = priced.stats()
    assert stats.cache is not None and (stats.cache.hits, stats.cache.size) == (1, 2)
    assert stats.budget is not None and stats.budget[0].refusals == 2


def test_a_promoted_candidate_starts_afresh_but_the_models_budget_goes_on(clock: FakeClock) -> None:
    down = Down()
    model = _guarded(down, cost=pw.PerCall("1"), budget=pw.Budget("5", per="day", action="fallback"))
    assert [model(1), model(2)] == [-1, -1]
    calls = []
    model.stage(lambda x: calls.append(x) or x, version="2", mode="shadow")
    model.promote()
    stats = model.stats()
    assert stats.circuit is not None and (stats.circuit.state, stats.circuit.trips) == ("closed", 0)
    assert stats.rate_limit is not None and stats.rate_limit.permits == 0
    assert [model(3), model(4), model(5), model(6)] == [3, 4, 5, -1]  # another dependency: its own quota
    budget = model.stats().budget
    assert budget is not None and budget[0].spent == Decimal(5)  # 2 USD before the promotion, 3 after
    model.rollback()  # the primary it replaced is back, and so is its state
    stats = model.stats()
    assert stats.circuit is not None and (stats.circuit.state, stats.circuit.trips) == ("open", 1)
    assert stats.rate_limit is not None and stats.rate_limit.permits == 2
    assert model(7) == -1 and down.calls == 2


def test_with_options_makes_a_new_model_with_fresh_state(clock: FakeClock) -> None:
    model = _guarded(Down())
    model(1), model(2)
    other = model.with_options(version="2")
    assert other.circuit is not None and other.circuit.state == "closed"
    assert model.circuit is not None and model.circuit.state == "open"


def test_a_kept_breaker_reports_each_transition_to_telemetry_once(clock: FakeClock) -> None:
    model = _guarded(Down())
    for i in range(3):
        model.stage(lambda x: x, version=str(i + 2), mode="shadow")
    assert model.circuit is not None
    watching = [f for f in model.circuit.listeners if isinstance(getattr(f, "__self__", None), TelemetryStage)]
    assert watching == [model._engine.stages[-1].transition]  # type: ignore[attr-defined]


def test_a_transition_announced_while_a_stage_recompiles_telemetry_reaches_each_listener_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    heard: list[str] = []
    transition = TelemetryStage.transition

    def spied(self: TelemetryStage, t: Any) -> None:
        heard.append("telemetry")
        transition(self, t)

    monkeypatch.setattr(TelemetryStage, "transition", spied)
    model = pw.ProductionModel(lambda x: x, name="m", version="1", circuit=pw.CircuitBreaker(window=2))
    breaker = model.circuit
    assert breaker is not None
    entered, go = threading.Event(), threading.Event()

    def blocker(t: Any) -> None:
        heard.append("blocker")
        entered.set()
        assert go.wait(timeout=10)

    breaker.listeners.append(blocker)
    breaker.listeners.append(lambda t: heard.append("user"))
    announcing = threading.Thread(target=breaker.open)
    announcing.start()
    assert entered.wait(timeout=10)
    model.stage(lambda x: x, version="2", mode="shadow")  # telemetry recompiled mid-announcement
    go.set()
    announcing.join(timeout=10)
    assert heard == ["telemetry", "blocker", "user"]  # once each: none skipped, none twice
    assert len(breaker.listeners) == 3 and breaker.listeners[1] is blocker  # the new telemetry in the old's place


def test_only_the_primary_the_last_promotion_replaced_keeps_its_home() -> None:
    model = pw.ProductionModel(lambda x: x * 2, name="m", version="1", cache=pw.Cache(maxsize=100))
    for i in range(50):
        model(i)  # 50 entries in version 1's cache
    for version in range(2, 6):
        model.stage(lambda x: x * 2, version=str(version), mode="shadow")
        model.promote()
        for i in range(50):
            model(i)
    held = [kept.primary for _, _, kept in model._rollouts.previous]
    assert [bool(home) for home in held] == [False, False, False, True]  # one old home, not four
    model.rollback()  # to version 4: its cache is back, every entry a hit
    hits = model.stats().cache.hits  # type: ignore[union-attr]
    assert model.version == "4" and model(7) == 14 and model.stats().cache.hits == hits + 1  # type: ignore[union-attr]
    model.rollback()  # to version 3: a fresh home
    assert model.version == "3" and model(7) == 14 and model.stats().cache.misses == 1  # type: ignore[union-attr]
