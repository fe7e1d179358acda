"""The retry budget (Finagle's rule): retries capped to a share of recent calls."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from typing import Any

import pytest

import prodwrap as pw
from prodwrap._stats import counted
from prodwrap.state import MemoryStore
from prodwrap.testing import FakeClock

NOW = pw.backoff(initial=0.0, jitter=False)  # retries without a wait: the fake clock stays put


class Failing:
    """A dependency that is down: every attempt raises ConnectionError (counted)."""

    def __init__(self) -> None:
        self.attempts = itertools.count()
        self.down = True

    def __call__(self, x: int) -> int:
        next(self.attempts)
        if self.down:
            raise ConnectionError("down")
        return x

    @property
    def made(self) -> int:
        return counted(self.attempts)


def budgeted(fn: Any, attempts: int = 3, **budget: Any) -> pw.ProductionModel[Any, Any, Any]:
    retry = pw.Retry(attempts=attempts, wait=NOW, budget=pw.RetryBudget(**budget))
    return pw.ProductionModel(fn, name="dep", retry=retry, fallback=pw.Constant(-1))


# -- the policy ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"ratio": -0.1}, "ratio"),
        ({"ratio": float("nan")}, "ratio"),
        ({"ratio": True}, "ratio"),
        ({"min_per_second": -1}, "min_per_second"),
        ({"window": 0}, "window"),
        ({"window": float("inf")}, "window"),
        ({"window": "10"}, "window"),
        ({"ratio": 0, "min_per_second": 0}, "allows no retry"),
        ({"store": object()}, "store"),
    ],
)
def test_nonsense_is_a_configuration_error_naming_the_setting(kwargs: dict[str, Any], setting: str) -> None:
    with pytest.raises(pw.ConfigurationError, match=setting):
        pw.RetryBudget(**kwargs)


@pytest.mark.parametrize("window", [1e-305, 0.5, 0.999])
def test_a_window_under_a_second_is_refused_saying_the_least(window: float) -> None:
    with pytest.raises(
        pw.ConfigurationError, match=r"^RetryBudget\.window must be a finite number of seconds >= 1, got"
    ):
        pw.RetryBudget(window=window)
    assert pw.RetryBudget(window=1).window == 1.0


def test_a_window_no_slice_of_the_store_holds_never_fails_a_prediction(clock: FakeClock) -> None:
    budget = pw.RetryBudget()
    object.__setattr__(budget, "window", 1e-305)  # (past validation: what a custom or older policy might hold)
    dep = Failing()
    dep.down = False
    model = pw.ProductionModel(dep, name="tiny-window", retry=pw.Retry(attempts=2, wait=NOW, budget=budget))
    assert [model(1), model(2)] == [1, 2]
    dep.down = True
    with pytest.raises(ConnectionError):
        model(3)  # the budget's store fails: the retry goes ahead, as without a budget
    assert dep.made == 4
    stats = model.stats().retry_budget
    assert stats is not None and stats.faults >= 1


def test_retry_takes_only_a_budget_and_describes_it() -> None:
    with pytest.raises(pw.ConfigurationError, match=r"Retry\.budget"):
        pw.Retry(budget=0.2)  # type: ignore[arg-type]
    budget = pw.RetryBudget(ratio=0.1, min_per_second=2, window=5)
    assert budget.floor == 10.0
    model = pw.ProductionModel(lambda x: x, retry=pw.Retry(budget=budget))
    assert model.describe()["retry"]["budget"] == {"ratio": 0.1, "min_per_second": 2.0, "window": 5.0, "store": None}
    assert "retry budget" in model.describe()["stages"]
    assert pw.ProductionModel(lambda x: x, retry=3).describe()["retry"]["budget"] is None


def test_the_success_path_is_kept_and_counts_every_call(clock: FakeClock) -> None:
    model = budgeted(lambda x: x)
    assert model._engine.fast is not None
    for i in range(7):
        assert model(i) == i
    assert model.stats().retry_budget == pw.policies.retry_budget.RetryBudgetStats(calls=7, retries=0, denied=0)
    assert pw.ProductionModel(lambda x: x).stats().retry_budget is None


def test_the_walk_counts_a_call_once_whatever_its_retries(clock: FakeClock) -> None:
    dep = Failing()
    model = budgeted(dep, attempts=3)
    p = model.predict_detailed(1)  # the general path, from the first attempt
    assert (p.outcome, p.attempts, dep.made) == ("fallback", 3, 3)
    stats = model.stats().retry_budget
    assert (stats.calls, stats.retries, stats.denied) == (1, 2, 0)


# -- the bound (acceptance) ----------------------------------------------------------------------


def test_total_attempts_stay_within_the_bound_under_a_dependency_that_always_fails(clock: FakeClock) -> None:
    threads, per_thread, ratio, floor = 8, 250, 0.2, 100  # floor: min_per_second 10 x window 10 s
    dep = Failing()
    model = budgeted(dep, attempts=3, ratio=ratio, min_per_second=10, window=10.0)
    start = threading.Barrier(threads)
    served: list[int] = []

    def caller() -> None:
        start.wait()
        served.extend(model(i) for i in range(per_thread))

    pool = [threading.Thread(target=caller) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    calls = threads * per_thread
    assert served == [-1] * calls  # every call ended at the fallback
    stats = model.stats().retry_budget
    assert stats.calls == calls
    assert dep.made == calls + stats.retries  # what the dependency saw: first attempts plus retries spent
    assert dep.made <= calls * (1 + ratio) + floor  # the bound
    # ... and the budget was used, not merely never reached: without it 3 x calls attempts were made.
    assert stats.retries >= floor + ratio * calls - threads * 2
    # A call asks until it is denied once or has its two retries.
    assert calls - stats.retries // 2 <= stats.denied <= calls
    assert model.stats().failures == {"exception": dep.made}


async def test_the_bound_holds_for_async_callers_too(clock: FakeClock) -> None:
    attempts = itertools.count()

    async def down(x: int) -> int:
        next(attempts)
        await asyncio.sleep(0)
        raise ConnectionError("down")

    model = budgeted(down, attempts=4, ratio=0.1, min_per_second=1, window=10.0)
    calls = 500
    assert await asyncio.gather(*(model(i) for i in range(calls))) == [-1] * calls
    made = counted(attempts)
    assert calls + 10 + 0.1 * calls - 3 <= made <= calls * 1.1 + 10


# -- the sliding window --------------------------------------------------------------------------


def test_calls_older_than_the_window_no_longer_pay_for_retries(clock: FakeClock) -> None:
    dep = Failing()
    dep.down = False
    model = budgeted(dep, attempts=3, ratio=0.5, min_per_second=0, window=10.0)
    for i in range(1000):
        model(i)  # an hour of good traffic would do the same: all counted, none folded by a retry
    clock.advance(25.0)  # two and a half windows later the dependency goes down
    dep.down = True
    before = dep.made
    for i in range(10):
        assert model(i) == -1
    assert dep.made - before == 10 + 5  # 0.5 retries per call of the last 10 s: 5, not 500
    assert model.stats().retry_budget.retries == 5


def test_recent_calls_fund_retries_and_the_budget_refills_as_the_window_slides(clock: FakeClock) -> None:
    dep = Failing()
    dep.down = False
    model = budgeted(dep, attempts=2, ratio=0.1, min_per_second=0, window=10.0)
    for i in range(100):
        model(i)
    dep.down = True
    for i in range(20):
        model(i)  # 120 calls in the window: 12 retries
    assert model.stats().retry_budget.retries == 12
    clock.advance(5.0)
    model(0)  # half a window on: the retries spent still count, one more call funds nothing
    assert model.stats().retry_budget.retries == 12
    clock.advance(10.0)  # everything before has slid out
    for i in range(30):
        model(i)
    assert model.stats().retry_budget.retries == 12 + 3


def test_exhaustion_and_recovery_are_logged_once_at_info(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    dep = Failing()
    model = budgeted(dep, attempts=2, ratio=0.0, min_per_second=0.2, window=10.0)  # 2 retries per 10 s
    with caplog.at_level(logging.INFO, logger="prodwrap.retry_budget"):
        for i in range(6):
            model(i)
        clock.advance(11.0)
        model(0)
    lines = [r.getMessage() for r in caplog.records if r.name == "prodwrap.retry_budget"]
    assert lines == [
        "dep: retry budget exhausted (2 retries in the last 10 s); no retry until it refills",
        "dep: retry budget available again",
    ]
    assert dep.made == 6 + 2 + 2  # six first attempts, two retries; then one call and its retry


# -- the store -----------------------------------------------------------------------------------


def test_the_state_is_kept_in_the_store_given_under_the_models_key(clock: FakeClock) -> None:
    store = MemoryStore()
    model = budgeted(Failing(), attempts=2, store=store)
    for i in range(5):
        model(i)
    now = clock.monotonic()
    assert store.add("dep:retry_budget:calls", 0, 10.0, now) == 5
    assert store.add("dep:retry_budget:retries", 0, 10.0, now) == 5


def test_two_models_sharing_a_store_and_a_name_share_one_budget(clock: FakeClock) -> None:
    store = MemoryStore()
    one, two = Failing(), Failing()
    first = budgeted(one, attempts=2, ratio=0.0, min_per_second=0.3, window=10.0, store=store)
    second = budgeted(two, attempts=2, ratio=0.0, min_per_second=0.3, window=10.0, store=store)
    for i in range(3):
        first(i)
        second(i)
    assert one.made + two.made == 6 + 3  # three retries between them, not three each


class BrokenStore(MemoryStore):
    def add(self, key: str, amount: float, window: float, now: float) -> float:
        raise OSError("store down")


def test_a_failing_store_never_costs_a_prediction(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    dep = Failing()
    model = budgeted(dep, attempts=2, store=BrokenStore())
    with caplog.at_level(logging.WARNING, logger="prodwrap.retry_budget"):
        assert [model(i) for i in range(3)] == [-1] * 3
    assert dep.made == 6  # the retries went ahead, as without a budget
    stats = model.stats()
    assert stats.retry_budget.faults >= 3 and stats.observer_errors == 0
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "store down" in warned[0].getMessage()  # once per burst


def test_a_call_handed_to_the_walk_by_a_later_stage_is_counted_once(clock: FakeClock) -> None:
    retry = pw.Retry(attempts=2, wait=NOW, budget=pw.RetryBudget())
    model = pw.ProductionModel(
        lambda x: x, retry=retry, rate_limit=pw.RateLimit(calls=1, per=60.0), fallback=pw.Constant(-1)
    )
    assert model._engine.fast is not None
    assert [model(1), model(2), model(3)] == [1, -1, -1]  # the rate limit's fast_admit said no twice
    assert model.stats().retry_budget.calls == 3


def test_the_retry_decorator_takes_a_budget(clock: FakeClock) -> None:
    dep = Failing()

    @pw.fallback(pw.Constant(0))
    @pw.retry(attempts=3, wait=NOW, budget=pw.RetryBudget(ratio=0.0, min_per_second=0.1, window=10.0))
    def predict(x: int) -> int:
        return dep(x)

    assert [predict(i) for i in range(3)] == [0, 0, 0]
    assert dep.made == 3 + 1
