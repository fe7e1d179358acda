"""Budgets: reservation before the call, settlement after, calendar windows, actions, scopes."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import prodwrap as pw
from prodwrap.state import MemoryStore
from prodwrap.testing import FakeClock, no_sleep

CENT = pw.PerCall("0.01")
NY = ZoneInfo("America/New_York")


def wall(*when: int, tz: Any = UTC) -> float:
    return datetime(*when, tzinfo=tz).timestamp()  # type: ignore[misc]


class Colour(str, Enum):  # noqa: UP042 (not a StrEnum, whose text is its value: this one prints otherwise)
    RED = "red"  # equal to "red", its text "Colour.RED"


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    """A fake clock whose wall time is 2026-03-07 12:00 UTC."""
    with no_sleep(FakeClock(wall=wall(2026, 3, 7, 12))) as fake:
        yield fake


def budgeted(name: str, *budgets: pw.Budget, fn: Callable[[Any], Any] = lambda x: x, **options: Any) -> Any:
    options.setdefault("cost", CENT)
    return pw.ProductionModel(fn, name=name, budget=list(budgets), **options)


def calls_until_refused(model: Any, most: int = 1000) -> int:
    for n in range(most):
        try:
            model(n)
        except pw.BudgetExceededError:
            return n
    raise AssertionError("never refused")


def run_threads(n: int, target: Callable[[], None]) -> None:
    threads = [threading.Thread(target=target) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
        assert not t.is_alive()


# -- the acceptance bullets ---------------------------------------------------------------------


@pytest.mark.parametrize("action", ["raise", "fallback"])
def test_a_dollar_a_day_at_a_cent_a_call_under_eight_threads_allows_exactly_100(clock: FakeClock, action: str) -> None:
    options: dict[str, Any] = {"fallback": pw.Constant("cheap")} if action == "fallback" else {}
    model = budgeted(f"day-{action}", pw.Budget("1.00", per="day", action=action), **options)  # type: ignore[arg-type]
    assert model._engine.fast is not None  # the compiled success path is kept
    start = threading.Barrier(8)
    served: list[Any] = []
    refused: list[pw.BudgetExceededError] = []

    def work() -> None:
        start.wait()
        for i in range(25):
            try:
                served.append(model(i))
            except pw.BudgetExceededError as exc:
                refused.append(exc)

    run_threads(8, work)
    stats = model.stats()
    assert stats.cost == Decimal("1.00")
    (budget,) = stats.budget
    assert (budget.spent, budget.reserved, budget.refusals) == (Decimal("1.00"), Decimal("0.00"), 100)
    if action == "raise":
        assert len(served) == 100 and len(refused) == 100
        error = refused[0]
        assert (error.scope, error.limit, error.spent) == ("day-raise", Decimal("1.00"), Decimal("1.00"))
        assert error.resets_at == datetime(2026, 3, 8, tzinfo=UTC) and error.resets_at.tzinfo is not None
        assert "day-raise" in str(error) and "1.00" in str(error) and "2026-03-08T00:00:00+00:00" in str(error)
    else:
        assert not refused and served.count("cheap") == 100 and len(served) == 200
        assert stats.outcomes["fallback"] == 100 and stats.failures["budget"] == 100


def test_the_day_resets_at_utc_midnight(clock: FakeClock) -> None:
    clock.advance(wall(2026, 3, 7, 23, 59) - clock.time())
    model = budgeted("utc", pw.Budget("0.05", per="day"))
    assert calls_until_refused(model) == 5
    clock.advance(59.0)  # 23:59:59
    with pytest.raises(pw.BudgetExceededError):
        model(1)
    clock.advance(1.0)  # midnight: a new day
    assert calls_until_refused(model) == 5
    (budget,) = model.stats().budget
    assert (budget.window_start, budget.resets_at) == (
        datetime(2026, 3, 8, tzinfo=UTC),
        datetime(2026, 3, 9, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("day", "hours", "begins", "ends"),
    [
        ((2026, 3, 8), 23, datetime(2026, 3, 8, 5, tzinfo=UTC), datetime(2026, 3, 9, 4, tzinfo=UTC)),  # EST -> EDT
        ((2026, 11, 1), 25, datetime(2026, 11, 1, 4, tzinfo=UTC), datetime(2026, 11, 2, 5, tzinfo=UTC)),  # EDT -> EST
    ],
)
def test_a_new_york_day_on_a_dst_change_is_the_local_calendar_day(
    day: tuple[int, int, int], hours: int, begins: datetime, ends: datetime
) -> None:
    clock = FakeClock(wall=wall(*day, 0, 30, tz=NY))  # half past midnight, local
    with no_sleep(clock):
        model = budgeted("ny", pw.Budget("0.03", per="day", tz="America/New_York"))
        assert calls_until_refused(model) == 3
        (budget,) = model.stats().budget
        assert (budget.window_start, budget.resets_at) == (begins, ends)
        assert budget.resets_at - budget.window_start == timedelta(hours=hours)  # type: ignore[operator]
        clock.advance(datetime(*day, tzinfo=UTC).timestamp() + 86400 - clock.time())  # UTC midnight: not local
        with pytest.raises(pw.BudgetExceededError) as refused:
            model(1)
        assert refused.value.resets_at == ends
        clock.advance(ends.timestamp() - 1 - clock.time())  # 23:59:59 local
        with pytest.raises(pw.BudgetExceededError):
            model(1)
        clock.advance(1.0)  # local midnight
        assert calls_until_refused(model) == 3
        assert model.stats().budget[0].window_start == ends


def test_hour_and_month_windows(clock: FakeClock) -> None:
    hourly = budgeted("hourly", pw.Budget("0.02", per="hour"))
    monthly = budgeted("monthly", pw.Budget("0.02", per="month", tz="Europe/Paris"))
    assert calls_until_refused(hourly) == calls_until_refused(monthly) == 2
    (hour,) = hourly.stats().budget
    assert (hour.window_start, hour.resets_at) == (
        datetime(2026, 3, 7, 12, tzinfo=UTC),
        datetime(2026, 3, 7, 13, tzinfo=UTC),
    )
    (month,) = monthly.stats().budget  # March in Paris: from CET midnight to CEST midnight
    assert (month.window_start, month.resets_at) == (
        datetime(2026, 2, 28, 23, tzinfo=UTC),
        datetime(2026, 3, 31, 22, tzinfo=UTC),
    )
    clock.advance(3600)
    assert calls_until_refused(hourly) == 2
    with pytest.raises(pw.BudgetExceededError):
        monthly(1)


def test_a_lifetime_budget_never_resets(clock: FakeClock) -> None:
    model = budgeted("life", pw.Budget("0.02"))
    assert calls_until_refused(model) == 2
    clock.advance(400 * 86400)
    with pytest.raises(pw.BudgetExceededError) as refused:
        model(1)
    assert refused.value.resets_at is None and "resets never" in str(refused.value)
    (budget,) = model.stats().budget
    assert (budget.window_start, budget.resets_at, budget.per) == (None, None, None)


def test_sixteen_overlapping_calls_against_a_budget_for_ten_admit_ten(clock: FakeClock) -> None:
    release = threading.Event()
    lock = threading.Lock()
    arrived = threading.Event()
    seen = {"inside": 0, "refused": 0}

    def arrive(key: str) -> None:
        with lock:
            seen[key] += 1
            if seen["inside"] + seen["refused"] == 16:
                arrived.set()

    def slow(x: Any) -> Any:
        arrive("inside")
        assert release.wait(10)
        return x

    model = budgeted("overlap", pw.Budget("0.10", per="day"), fn=slow)

    def work() -> None:
        try:
            model(1)
        except pw.BudgetExceededError:
            arrive("refused")

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    assert arrived.wait(10)  # every call is either inside the predict or refused
    (budget,) = model.stats().budget
    assert (seen["inside"], seen["refused"]) == (10, 6)
    assert (budget.spent, budget.reserved) == (Decimal("0.10"), Decimal("0.10"))  # reserved, not yet settled
    release.set()
    for t in threads:
        t.join(10)
    (budget,) = model.stats().budget
    assert (budget.spent, budget.reserved, budget.refusals) == (Decimal("0.10"), Decimal("0.00"), 6)


async def test_overlapping_async_calls_admit_what_the_budget_holds(clock: FakeClock) -> None:
    release = asyncio.Event()
    inside = 0

    async def slow(x: Any) -> Any:
        nonlocal inside
        inside += 1
        await release.wait()
        return x

    model = budgeted("async-overlap", pw.Budget("0.10", per="day"), fn=slow)
    assert model._engine.async_fast is not None
    tasks = [asyncio.ensure_future(model.apredict(i)) for i in range(16)]
    while inside + sum(t.done() for t in tasks) < 16:
        await asyncio.sleep(0)
    assert inside == 10 and model.stats().budget[0].reserved == Decimal("0.10")
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert sum(isinstance(r, pw.BudgetExceededError) for r in results) == 6
    assert model.stats().budget[0].spent == Decimal("0.10")


# -- reservation and settlement -------------------------------------------------------------------


def test_a_worst_case_estimate_is_reserved_then_settled_to_the_actual_cost(clock: FakeClock) -> None:
    # the worst case: 10 input tokens + 90 output tokens at $1 per 100 tokens = $1.00; actual $0.20
    cost = pw.PerToken(input="1", output="1", per=100, max_output_tokens=90, count_input=lambda s: 10)
    release = threading.Event()
    entered = threading.Barrier(3)

    def llm(prompt: Any) -> Any:
        entered.wait(10)
        assert release.wait(10)
        return {"usage": {"prompt_tokens": 10, "completion_tokens": 10}}

    model = budgeted("tokens", pw.Budget("2.50", per="day"), fn=llm, cost=cost)
    assert model._engine.fast is not None
    threads = [threading.Thread(target=model, args=("hi",)) for _ in range(2)]
    for t in threads:
        t.start()
    entered.wait(10)  # two calls inside: $2.00 reserved; a third worst case does not fit in $2.50
    with pytest.raises(pw.BudgetExceededError) as refused:
        model("hi")
    assert refused.value.spent == Decimal("2.00")
    assert model.stats().budget[0].reserved == Decimal("2.00")
    release.set()
    for t in threads:
        t.join(10)
    (budget,) = model.stats().budget
    assert (budget.spent, budget.reserved) == (Decimal("0.40"), Decimal("0.00"))  # settled: 2 x $0.20
    entered = threading.Barrier(1)  # from here calls do not wait for each other
    # each call is admitted while what is committed plus its worst case fits: 0.40, 0.60, ... 1.60
    assert calls_until_refused(model) == 6
    assert model.stats().budget[0].spent == Decimal("1.60")


def test_without_an_estimate_the_running_mean_is_reserved(clock: FakeClock) -> None:
    def compute(x: Any) -> Any:
        clock.advance(2.0)  # two seconds at $0.01 a second
        return x

    model = budgeted("mean", pw.Budget("0.05", per="day"), fn=compute, cost=pw.PerSecond("0.01"))
    assert model._engine.fast is not None
    model(1)  # nothing seen yet: 0 reserved; it cost $0.02
    assert model.stats().budget[0].spent == Decimal("0.02")
    model(1)  # $0.02 reserved (the mean), $0.02 spent
    with pytest.raises(pw.BudgetExceededError):
        model(1)  # $0.04 + $0.02 projected > $0.05
    assert model.stats().budget[0].spent == Decimal("0.04")


def test_a_spent_window_admits_nothing_even_a_call_projected_at_zero(clock: FakeClock) -> None:
    def compute(x: Any) -> Any:
        clock.advance(x)
        return x

    model = budgeted("spent", pw.Budget("0.05"), fn=compute, cost=pw.PerSecond("0.01"))
    model(6)  # nothing could be projected: admitted, and it cost $0.06, past the limit
    with pytest.raises(pw.BudgetExceededError) as refused:
        model(0)
    assert refused.value.spent == Decimal("0.06")
    zero = budgeted("zero", pw.Budget("0"))
    with pytest.raises(pw.BudgetExceededError):
        zero(1)


def test_a_failed_call_settles_to_what_its_attempts_were_charged(clock: FakeClock) -> None:
    def down(x: Any) -> Any:
        raise ConnectionError("down")

    retry = pw.Retry(attempts=3, on=ConnectionError, wait=pw.backoff(initial=0.0))
    model = budgeted("failing", pw.Budget("0.10", per="day"), fn=down, retry=retry)
    for _ in range(4):  # each costs 3 attempts, $0.03; the 4th is admitted at $0.09 + $0.01 reserved
        with pytest.raises(ConnectionError):
            model(1)
    with pytest.raises(pw.BudgetExceededError):
        model(1)
    assert model.stats().budget[0].spent == Decimal("0.12") == model.stats().cost


def test_the_budget_counts_a_priced_fallback_model(clock: FakeClock) -> None:
    def down(x: Any) -> Any:
        raise ConnectionError("down")

    baseline = pw.ProductionModel(lambda x: x, name="baseline", cost=pw.PerCall("0.02"))
    model = budgeted("with-fallback", pw.Budget("0.10", per="day"), fn=down, fallback=baseline)
    p = model.predict_detailed(1)
    assert p.cost == Decimal("0.03") == model.stats().budget[0].spent


def test_a_cache_hit_spends_nothing(clock: FakeClock) -> None:
    model = budgeted("cached", pw.Budget("0.02", per="day"), cache=pw.Cache(maxsize=10))
    assert model._engine.fast is not None
    assert model.describe()["stages"][:2] == ["cache", "budget"]
    for _ in range(5):
        model(1)
    model(2)
    assert model.stats().budget[0].spent == Decimal("0.02")
    with pytest.raises(pw.BudgetExceededError):
        model(3)
    assert model(1) == 1  # still served from the cache


def test_a_later_stage_saying_no_gives_the_reservation_back(clock: FakeClock) -> None:
    release, inside = threading.Event(), threading.Event()

    def slow(x: Any) -> Any:
        inside.set()
        assert release.wait(10)
        return x

    model = budgeted("bulkhead", pw.Budget("0.05", per="day"), fn=slow, bulkhead=pw.Bulkhead(max_concurrent=1))
    assert model._engine.fast is not None
    first = threading.Thread(target=model, args=(1,))
    first.start()
    assert inside.wait(10)
    with pytest.raises(pw.BulkheadFullError):
        model(2)  # the bulkhead refuses the attempt: nothing charged, the reservation given back
    (budget,) = model.stats().budget
    assert (budget.spent, budget.reserved) == (Decimal("0.01"), Decimal("0.01"))
    release.set()
    first.join(10)
    assert model.stats().budget[0].spent == Decimal("0.01")


@pytest.mark.parametrize("entry", ["apredict", "apredict_detailed"], ids=["success path", "walk"])
async def test_a_cancelled_call_settles_to_what_its_attempt_was_charged(entry: str, clock: FakeClock) -> None:
    inside = asyncio.Event()

    async def hang(x: Any) -> Any:
        inside.set()
        await asyncio.Event().wait()

    model = budgeted("cancelled", pw.Budget("0.05", per="day"), fn=hang)
    task = asyncio.ensure_future(getattr(model, entry)(1))
    await inside.wait()
    assert model.stats().budget[0].reserved == Decimal("0.01")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (budget,) = model.stats().budget
    # the attempt ran: it is charged, and the budget counts what was charged (the ledger agrees)
    assert (budget.spent, budget.reserved) == (Decimal("0.01"), Decimal("0.00"))
    assert model.stats().cost == Decimal("0.01")


def test_the_general_path_settles_too(clock: FakeClock) -> None:
    model = budgeted("detailed", pw.Budget("0.02", per="day"))
    assert model.predict_detailed(1).cost == Decimal("0.01")
    assert model.predict_detailed(1).cost == Decimal("0.01")
    with pytest.raises(pw.BudgetExceededError):
        model.predict_detailed(1)
    assert model.stats().budget[0].spent == Decimal("0.02")


# -- actions, scopes, several budgets --------------------------------------------------------------


def test_raise_is_raised_even_with_fallbacks(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    used: list[Any] = []
    model = budgeted("hard", pw.Budget("0.01", per="day"), fallback=used.append)
    model(1)
    with caplog.at_level(logging.INFO, logger="prodwrap"), pytest.raises(pw.BudgetExceededError):
        model(2)
    assert not used
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("prodwrap.model", logging.INFO, "hard: refused (budget)")  # logged once, by the finish point
    ]
    assert model.stats().outcomes["error"] == 1


def test_fallback_routes_refused_calls_to_the_chain(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    cheap = pw.ProductionModel(lambda x: "cheap", name="cheap", cost=pw.PerCall("0.001"))
    model = budgeted("soft", pw.Budget("0.01", per="day", action="fallback"), fallback=cheap)
    assert model(1) == 1
    with caplog.at_level(logging.INFO, logger="prodwrap"):
        p = model.predict_detailed(2)
    assert (p.value, p.outcome, p.served_by) == ("cheap", "fallback", "cheap")
    assert isinstance(p.errors[0], pw.BudgetExceededError)
    assert [r.getMessage() for r in caplog.records if r.name == "prodwrap.model"] == [
        "soft: served by fallback cheap after budget"
    ]
    assert model.stats().budget[0].spent == Decimal("0.01")  # a refused call is not counted


def test_warn_lets_calls_go_over_and_logs_once_per_burst(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    model = budgeted("warned", pw.Budget("0.02", per="day", action="warn"))
    with caplog.at_level(logging.INFO, logger="prodwrap"):
        for i in range(7):
            assert model(i) == i
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].name == "prodwrap.budget"
    assert "warned: over budget (warned, 0.02 USD per day)" in warnings[0].getMessage()
    (budget,) = model.stats().budget
    assert (budget.spent, budget.warnings, budget.refusals) == (Decimal("0.07"), 5, 0)
    assert "5 over it (warned)" in model.report()


def test_by_a_tag_keeps_one_window_per_value(clock: FakeClock) -> None:
    model = budgeted("tenants", pw.Budget("0.02", per="day", by="customer"))
    with pw.context(customer="acme"):
        assert calls_until_refused(model) == 2
        with pytest.raises(pw.BudgetExceededError) as refused:
            model(1)
    assert refused.value.scope == "customer=acme"
    with pw.context(customer="initech"):
        model(1)
    assert calls_until_refused(model) == 2  # untagged calls share a window of their own
    (budget,) = model.stats().budget
    assert budget.spent == Decimal("0.05")
    assert budget.scopes == {
        "customer=acme": Decimal("0.02"),
        "customer=None": Decimal("0.02"),
        "customer=initech": Decimal("0.01"),
    }


def test_by_a_tag_value_that_cannot_be_hashed_or_printed_is_a_scope_of_its_text(
    clock: FakeClock, bad_tag: tuple[Callable[[], object], str]
) -> None:
    make, text = bad_tag
    model = budgeted("tenants", pw.Budget("0.02", per="day", by="customer"))
    with pw.context(customer=make()):
        assert model(1) == 1  # the success path
    with pw.context(customer=make()):
        assert model.predict_detailed(2).value == 2  # the walk
    with pw.context(customer=make()), pytest.raises(pw.BudgetExceededError) as refused:
        model(3)  # every such value in one window: the budget still holds
    assert refused.value.scope == f"customer={text}"
    (budget,) = model.stats().budget
    assert budget.scopes == {f"customer={text}": Decimal("0.02")} and budget.faults == 0


def test_tag_values_of_one_text_share_a_window_counted_once(clock: FakeClock) -> None:
    model = budgeted("tenants", pw.Budget("0.03", per="day", by="customer"))
    for customer in (1, "1", ["x"], ["x"]):  # 1 and "1" are one scope, as are the two lists
        with pw.context(customer=customer):
            model(0)
    (budget,) = model.stats().budget
    assert budget.scopes == {"customer=1": Decimal("0.02"), "customer=['x']": Decimal("0.02")}
    assert budget.spent == Decimal("0.04")  # each window once


@pytest.mark.parametrize("order", [(1, True, 1.0, "red", Colour.RED), (Colour.RED, 1.0, True, "red", 1)])
def test_equal_tag_values_of_other_texts_never_share_a_window_whichever_comes_first(
    clock: FakeClock, order: tuple[Any, ...]
) -> None:
    model = budgeted("tenants", pw.Budget("1", per="day", by="customer"))
    for customer in order:
        with pw.context(customer=customer):
            model(0)
    (budget,) = model.stats().budget
    texts = ("1", "True", "1.0", "red", "Colour.RED")
    assert budget.scopes == {f"customer={text}": Decimal("0.01") for text in texts}
    assert model.ledger is not None and set(model.ledger.total(by="customer")) == set(texts)  # (as the ledger's)


def test_several_budgets_reserve_all_or_nothing(clock: FakeClock) -> None:
    model = budgeted("two", pw.Budget("0.03", per="hour"), pw.Budget("0.05", per="day"))
    assert model._engine.fast is not None
    assert calls_until_refused(model) == 3  # the hour refuses the 4th...
    hour, day = model.stats().budget
    assert (hour.spent, day.spent, hour.refusals, day.refusals) == (Decimal("0.03"), Decimal("0.03"), 1, 0)
    clock.advance(3600)
    assert calls_until_refused(model) == 2  # ...and the day, the 6th
    hour, day = model.stats().budget
    assert (hour.spent, day.spent, day.refusals) == (Decimal("0.02"), Decimal("0.05"), 1)


def test_a_warning_budget_beside_a_hard_one(clock: FakeClock) -> None:
    model = budgeted("tiers", pw.Budget("0.02", per="day", action="warn"), pw.Budget("0.04", per="day"))
    assert calls_until_refused(model) == 4
    soft, hard = model.stats().budget
    assert (soft.spent, soft.warnings, hard.spent) == (Decimal("0.04"), 2, Decimal("0.04"))


def test_replicas_sharing_a_store_enforce_one_budget(clock: FakeClock) -> None:
    shared = MemoryStore()
    budget = pw.Budget("0.05", per="day", store=shared)
    a, b = budgeted("replicated", budget), budgeted("replicated", budget)
    a(1), b(1), a(1), b(1), a(1)
    with pytest.raises(pw.BudgetExceededError):
        b(1)
    assert a.stats().budget[0].spent == b.stats().budget[0].spent == Decimal("0.05")


# -- faults ---------------------------------------------------------------------------------------------


class BrokenStore(MemoryStore):
    def get(self, key: str) -> Any:
        raise OSError("store down")


def test_a_failing_store_never_costs_the_prediction(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    model = budgeted("broken", pw.Budget("0.01", per="day", store=BrokenStore()))
    with caplog.at_level(logging.WARNING, logger="prodwrap"):
        assert [model(i) for i in range(3)] == [0, 1, 2]
    (budget,) = model.stats().budget
    assert budget.faults >= 3  # (stats() read the store too)
    faults = [r for r in caplog.records if r.name == "prodwrap.budget"]
    assert len(faults) == 1 and "store down" in faults[0].getMessage()


def test_an_estimate_that_raises_is_a_fault_and_the_call_goes_on(clock: FakeClock) -> None:
    class Guess:
        def price(self, attempt: pw.Attempt) -> Decimal:
            return Decimal("0.01")

        def estimate(self, input: Any) -> Decimal:
            raise ValueError("cannot tell")

    model = budgeted("guess", pw.Budget("0.02", per="day"), cost=Guess())
    assert model(1) == 1 and model(2) == 2
    with pytest.raises(pw.BudgetExceededError):
        model(3)
    assert model.stats().budget[0].faults >= 3


# -- configuration, decorator, describe and report -------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"limit": "-1"}, "Budget.limit"),
        ({"limit": "lots"}, "Budget.limit"),
        ({"limit": None}, "Budget.limit"),
        ({"limit": "1", "per": "week"}, "Budget.per"),
        ({"limit": "1", "action": "ignore"}, "Budget.action"),
        ({"limit": "1", "tz": "Mars/Olympus_Mons"}, "Budget.tz"),
        ({"limit": "1", "tz": ""}, "Budget.tz"),
        ({"limit": "1", "by": ""}, "Budget.by"),
        ({"limit": "1", "store": object()}, "Budget.store"),
    ],
)
def test_nonsense_is_refused_naming_the_setting(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(pw.ConfigurationError, match=match):
        pw.Budget(**kwargs)


def test_a_float_limit_warns_like_a_float_price() -> None:
    with pytest.warns(pw.ConfigurationWarning, match="Budget.limit"):
        budget = pw.Budget(0.1)  # type: ignore[arg-type]
    assert budget.limit == Decimal("0.1")


def test_a_budget_needs_what_it_counts() -> None:
    with pytest.raises(pw.ConfigurationError, match="budget= counts what cost= charges"):
        pw.ProductionModel(lambda x: x, budget=pw.Budget("1"))
    with pytest.raises(pw.ConfigurationError, match="give fallback="):
        pw.ProductionModel(lambda x: x, cost=CENT, budget=pw.Budget("1", action="fallback"))
    with pytest.raises(pw.ConfigurationError, match=r"takes a pw\.Budget"):
        pw.ProductionModel(lambda x: x, cost=CENT, budget="1.00")  # type: ignore[arg-type]
    with pytest.raises(pw.ConfigurationError, match="two budgets"):
        pw.ProductionModel(lambda x: x, cost=CENT, budget=[pw.Budget("1", per="day"), pw.Budget("2", per="day")])


def test_metered_takes_a_budget_and_describe_and_report_show_it(clock: FakeClock) -> None:
    @pw.metered(cost=CENT, budget=pw.Budget("0.02", per="day", by="customer", tz="Europe/Paris"))
    def score(x: int) -> int:
        return x

    assert score(1) == 1 and score(2) == 2
    with pytest.raises(pw.BudgetExceededError):
        score(3)
    info = score.describe()
    assert info["budget"] == [
        {"limit": "0.02", "per": "day", "by": "customer", "action": "raise", "tz": "Europe/Paris", "store": None}
    ]
    assert info["stages"] == ["budget", "predict", "cost"]
    report = score.report()
    assert "budget per day by customer  0.02 of 0.02 USD" in report
    assert "resets 2026-03-07 23:00 UTC; 1 refused" in report
    assert "refused by a cost budget" in report


def test_stacked_decorators_keep_the_budget(clock: FakeClock) -> None:
    @pw.retry(2)
    @pw.metered(cost=CENT, budget=pw.Budget("0.01", per="day"))
    def score(x: int) -> int:
        return x

    assert score(1) == 1
    with pytest.raises(pw.BudgetExceededError):
        score(2)


def test_a_derived_model_starts_an_empty_window_unless_the_store_is_shared() -> None:
    with no_sleep(FakeClock(wall=1772884800)):
        own = pw.ProductionModel(lambda x: x, cost=pw.PerCall("0.01"), budget=pw.Budget("0.03"))
        shared = pw.ProductionModel(lambda x: x, cost=pw.PerCall("0.01"), budget=pw.Budget("0.03", store=MemoryStore()))
        for model in (own, shared):
            for i in range(3):
                model(i)
        assert own.with_options(retry=2)(1) == 1  # its own, empty window
        with pytest.raises(pw.BudgetExceededError):
            shared.with_options(retry=2)(1)  # the same window, spent
