"""Charging on the seam: every attempt, fallbacks at their own model, hedges, cache hits,
unpriced calls; the success path stays compiled."""

from __future__ import annotations

import asyncio
import logging
import pickle
import threading
from decimal import Decimal
from typing import Any

import pytest

import prodwrap as pw
from prodwrap import _clock, _race
from prodwrap.testing import no_sleep

RETRY2 = pw.Retry(attempts=2, on=ConnectionError, wait=pw.backoff(initial=0.0))
USAGE = {"usage": {"prompt_tokens": 1000, "completion_tokens": 100}}  # 0.0015 + 0.0015 at 1.50 / 15.00 per M
TOKENS = pw.PerToken(input="1.50", output="15.00")


def down(x: Any) -> Any:
    raise ConnectionError("down")


def test_a_million_calls_at_a_hundredth_of_a_cent_are_exactly_one_hundred_dollars() -> None:
    model = pw.ProductionModel(lambda x: x, name="m", cost=pw.PerCall("0.0001"))
    assert model._engine.fast is not None  # the compiled success path is kept
    for _ in range(1_000_000):
        model(1)
    assert model.stats().cost == Decimal("100.0000")
    assert model.ledger is not None and model.ledger.total() == Decimal("100.0000")
    assert model.ledger.calls() == 1_000_000


@pytest.mark.parametrize(
    "cost",
    [pw.PerCall("1"), pw.PerSecond("1"), pw.PerItem("1"), TOKENS, pw.PerCall("1") + pw.PerSecond("1") + TOKENS],
)
def test_every_cost_model_keeps_the_success_path(cost: Any) -> None:
    assert pw.ProductionModel(lambda x: x, cost=cost)._engine.fast is not None
    assert pw.ProductionModel(lambda x: x, cost=cost, cache=pw.Cache(), retry=2)._engine.fast is not None
    inner = pw.ProductionModel(lambda x: x, name="inner", cost=pw.PerCall("1"))
    assert pw.ProductionModel(lambda x: x, cost=cost, fallback=inner)._engine.fast is not None


def test_two_failed_attempts_then_a_priced_fallback_model() -> None:
    fallback = pw.ProductionModel(lambda x: -x, name="baseline", version="0.9", cost=pw.PerCall("0.05"))
    model = pw.ProductionModel(down, name="llm", version="2", retry=RETRY2, fallback=fallback, cost=pw.PerCall("0.01"))
    p = model.predict_detailed(3)
    assert (p.value, p.outcome, p.served_by, p.attempts) == (-3, "fallback", "baseline", 2)
    assert p.cost == 2 * Decimal("0.01") + Decimal("0.05")
    assert [(c.model, c.version, c.served_by, c.attempt, c.amount) for c in p.charges] == [
        ("llm", "2", "primary", 1, Decimal("0.01")),
        ("llm", "2", "primary", 2, Decimal("0.01")),
        ("baseline", "0.9", "baseline", 1, Decimal("0.05")),
    ]
    assert model.stats().cost == Decimal("0.07")  # what the model's calls cost, the fallback's part included
    assert fallback.stats().cost == Decimal("0.05")  # and the fallback's own ledger has its charge
    assert model.ledger is not None and model.ledger.total(by="model") == {
        "baseline": Decimal("0.05"),
        "llm": Decimal("0.02"),
    }
    assert model.ledger.total(by="outcome") == {"fallback": Decimal("0.07")}


def test_a_shared_ledger_counts_a_fallback_models_charge_once() -> None:
    ledger = pw.Ledger()
    fallback = pw.ProductionModel(lambda x: -x, name="baseline", cost=pw.PerCall("0.05"), ledger=ledger)
    model = pw.ProductionModel(
        down, name="llm", retry=RETRY2, fallback=fallback, cost=pw.PerCall("0.01"), ledger=ledger
    )
    assert model.predict_detailed(1).cost == Decimal("0.07")
    assert ledger.total() == Decimal("0.07")  # not 0.12
    assert ledger.total(by="model") == {"baseline": Decimal("0.05"), "llm": Decimal("0.02")}
    assert ledger.calls() == 1  # the call made: the fallback model's own call is part of it


def test_a_fallback_model_failing_too_is_charged_and_nested_fallbacks_are_attributed() -> None:
    last = pw.ProductionModel(lambda x: "last", name="last", cost=pw.PerCall("0.001"))
    middle = pw.ProductionModel(down, name="middle", cost=pw.PerCall("0.1"), fallback=last)
    failing = pw.ProductionModel(down, name="failing", cost=pw.PerCall("1"))
    model = pw.ProductionModel(down, name="top", cost=pw.PerCall("10"), fallback=[failing, middle])
    p = model.predict_detailed(0)
    assert p.value == "last"
    assert [(c.model, c.served_by, c.amount) for c in p.charges] == [
        ("top", "primary", Decimal("10.00")),
        ("failing", "failing", Decimal("1.00")),
        ("middle", "middle", Decimal("0.10")),
        ("last", "middle", Decimal("0.001")),  # charged inside the fallback "middle"
    ]
    assert p.cost == Decimal("11.101")
    assert middle.stats().cost == Decimal("0.101")


def test_callables_and_constants_cost_nothing() -> None:
    model = pw.ProductionModel(
        down, cost=pw.PerCall("0.01"), fallback=[down, lambda x: "cheap"], retry=RETRY2, name="m"
    )
    p = model.predict_detailed(1)
    assert p.served_by != "primary" and p.cost == Decimal("0.02") and len(p.charges) == 2
    constant = pw.ProductionModel(down, cost=pw.PerCall("0.01"), fallback=pw.Constant(0))
    assert constant.predict_detailed(1).cost == Decimal("0.01")
    # a model without a price of its own still reports what its priced fallback model cost
    priced = pw.ProductionModel(lambda x: x, name="priced", cost=pw.PerCall("0.5"))
    unpriced_primary = pw.ProductionModel(down, fallback=priced)
    p = unpriced_primary.predict_detailed(1)
    assert p.cost == Decimal("0.50") and [c.model for c in p.charges] == ["priced"]
    assert unpriced_primary.stats().unpriced == 0


def test_every_attempt_a_hedge_started_is_charged() -> None:
    release = threading.Event()
    calls: list[int] = []
    lock = threading.Lock()

    def slow_first(x: int) -> Any:
        with lock:
            calls.append(x)
            n = len(calls)
        if n == 1:
            release.wait(10)
        return {"usage": {"prompt_tokens": 1000, "completion_tokens": 100}, "n": n}

    model = pw.ProductionModel(slow_first, hedge=pw.Hedge(after=0.01), cost=pw.PerCall("0.01") + TOKENS)
    try:
        p = model.predict_detailed(1)
    finally:
        release.set()
    assert p.attempts == 2
    assert [(c.attempt, c.amount, c.unpriced) for c in p.charges] == [
        (1, Decimal("0.01"), True),  # the loser: started, so charged; its output was discarded, its tokens unknown
        (2, Decimal("0.013"), False),
    ]
    assert model.stats().unpriced == 1


def test_each_hedged_attempt_is_charged_its_own_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    ran = threading.Event()  # the first attempt has taken its 0.1 s (on the fake clock)
    release = threading.Event()
    lock = threading.Lock()
    calls: list[int] = []
    seen: list[float] = []

    def seconds(a: pw.Attempt) -> str:
        seen.append(a.seconds)
        return "0"

    with no_sleep() as clock:

        def slow_first(x: int) -> str:
            with lock:
                calls.append(x)
                n = len(calls)
            clock.advance(0.1 if n == 1 else 0.05)
            if n == 1:
                ran.set()
                release.wait(10)
            return f"attempt {n}"

        real = _race.may_race

        def once_the_first_ran(engine: Any, rec: Any, now: float) -> bool:
            ran.wait(10)  # (the hedge starts once the first attempt has taken its 0.1 s)
            return real(engine, rec, now)

        monkeypatch.setattr(_race, "may_race", once_the_first_ran)
        model = pw.ProductionModel(slow_first, hedge=pw.Hedge(after=0.01), cost=pw.PerSecond("1") + seconds)
        try:
            p = model.predict_detailed(1)
        finally:
            release.set()
    assert p.value == "attempt 2"
    # the loser ran from its start until it lost (0.15 s), the winner for its own 0.05 s
    assert [(c.attempt, float(c.amount)) for c in p.charges] == [(1, pytest.approx(0.15)), (2, pytest.approx(0.05))]
    assert seen == [pytest.approx(0.15), pytest.approx(0.05)]


async def test_each_async_hedged_attempt_is_charged_its_own_seconds() -> None:
    release = asyncio.Event()
    calls: list[int] = []
    with no_sleep() as clock:

        async def slow_first(x: int) -> str:
            calls.append(x)
            n = len(calls)
            clock.advance(0.1 if n == 1 else 0.05)
            if n == 1:
                await release.wait()  # cancelled when the hedge wins
            return f"attempt {n}"

        model = pw.ProductionModel(slow_first, hedge=pw.Hedge(after=0.01), cost=pw.PerSecond("1"))
        p = await model.apredict_detailed(1)
    assert p.value == "attempt 2"
    assert [(c.attempt, float(c.amount)) for c in p.charges] == [(1, pytest.approx(0.15)), (2, pytest.approx(0.05))]


def test_a_cache_hit_costs_nothing_and_records_the_saving() -> None:
    model = pw.ProductionModel(lambda x: dict(USAGE), cost=TOKENS, cache=pw.Cache(copy=False))
    assert model._engine.fast is not None
    model(1)  # the success path fills the entry: 0.003
    hit = model.predict_detailed(1)
    assert (hit.outcome, hit.cost, hit.charges) == ("cached", 0, ())
    model(1)  # a hit on the success path
    stats = model.stats()
    assert stats.cost == Decimal("0.003") and stats.cache.saved_cost == Decimal("0.006")
    assert model.ledger is not None and model.ledger.total(by="outcome") == {
        "ok": Decimal("0.003"),
        "cached": Decimal("0.00"),
    }
    assert model.ledger.calls() == 3


def test_cache_hits_on_the_success_path_are_recorded_with_their_tags_and_inside_a_calling_model() -> None:
    ledger = pw.Ledger()
    model = pw.ProductionModel(lambda x: x, name="inner", cost=pw.PerCall("0.01"), cache=pw.Cache(), ledger=ledger)
    model(1)
    model(1)  # a hit outside any context: the prebuilt entry
    with pw.context(team="search"):
        model(1)  # a hit with a tag: the hook records it
    assert ledger.calls() == 3 and ledger.total(by="team") == {None: Decimal("0.01"), "search": Decimal("0.00")}
    assert ledger.total(by="outcome") == {"ok": Decimal("0.01"), "cached": Decimal("0.00")}
    outer = pw.ProductionModel(lambda x: 1 / 0, name="outer", fallback=model, cost=pw.PerCall("0.02"), ledger=ledger)
    assert outer(1) == 1  # a hit inside a calling model sharing the ledger: its caller's entry counts the call
    assert ledger.calls() == 4 and ledger.total(by="outcome") == {
        "fallback": Decimal("0.02"),
        "ok": Decimal("0.01"),
        "cached": Decimal("0.00"),
    }
    assert model.stats().cache.hits == 3 and model.stats().outcomes == {"cached": 3, "ok": 1}


def test_the_saving_of_an_entry_filled_on_the_walk_is_what_that_call_cost() -> None:
    fails = iter([True, False])

    def once_down(x: int) -> int:
        if next(fails, False):
            raise ConnectionError("blip")
        return x

    model = pw.ProductionModel(once_down, retry=RETRY2, cost=pw.PerCall("0.01"), cache=pw.Cache())
    assert model.predict_detailed(5).cost == Decimal("0.02")  # two attempts fill the entry
    model(5)
    assert model.stats().cache.saved_cost == Decimal("0.02")


def test_unpriced_calls_are_counted_never_a_silent_zero(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "prodwrap.cost")
    model = pw.ProductionModel(lambda x: "no usage here", name="llm-without-usage", cost=TOKENS)
    model(1)
    p = model.predict_detailed(1)
    assert p.charges[0].unpriced and p.cost == 0
    assert model.stats().unpriced == 2
    assert "unpriced" in caplog.text
    text = model.report()
    assert "cost" in text and "unpriced               2" in text


def test_a_corrupt_usage_is_unpriced_and_logged_naming_its_field(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "prodwrap.cost")
    corrupt = {"usage": {"prompt_tokens": float("nan"), "completion_tokens": 1}}
    model = pw.ProductionModel(lambda x: corrupt, name="corrupt", cost=TOKENS)
    model(1)  # the success path
    p = model.predict_detailed(1)
    assert p.charges[0].unpriced and p.charges[0].tokens is None and p.cost == 0
    assert model.stats().unpriced == 2
    assert "corrupt: an attempt is unpriced: the output's usage has prompt_tokens=nan" in caplog.text
    assert "raised" not in caplog.text  # not a fault of the cost model
    floats = pw.ProductionModel(lambda x: {"prompt_tokens": 1000.0, "completion_tokens": 100.0}, cost=TOKENS)
    assert floats.predict_detailed(1).cost == Decimal("0.003") and floats.stats().unpriced == 0


def test_failed_attempts_of_a_token_priced_model_are_unpriced_the_rest_priced() -> None:
    model = pw.ProductionModel(down, retry=RETRY2, fallback=pw.Constant(0), cost=pw.PerCall("0.001") + TOKENS)
    p = model.predict_detailed(1)
    assert [(c.amount, c.unpriced) for c in p.charges] == [(Decimal("0.001"), True)] * 2
    assert p.cost == Decimal("0.002")
    assert model.stats().unpriced == 1  # calls, not attempts


def test_per_second_is_priced_on_prodwrap_clock() -> None:
    def takes(x: float) -> float:
        _clock.current.clock.advance(x)  # type: ignore[attr-defined]
        if x > 1:
            raise ConnectionError("slow and failed")
        return x

    model = pw.ProductionModel(takes, cost=pw.PerSecond("0.10"), retry=RETRY2, fallback=pw.Constant(0))
    with no_sleep():
        model(0.25)  # the success path: 0.025
        p = model.predict_detailed(1.5)  # two failed attempts of 1.5 s each: 0.30
        assert p.cost == Decimal("0.30")
        assert model.stats().cost == Decimal("0.325")


def test_a_record_on_the_success_path_is_charged_once_and_observers_see_the_cost() -> None:
    seen: list[pw.Prediction] = []
    model = pw.ProductionModel(lambda x: x, cost=pw.PerSecond("1") + pw.PerCall("0.5"), observers=[seen.append])
    assert model._engine.fast is not None
    with no_sleep():
        model(1)
    assert [p.cost for p in seen] == [Decimal("0.50")]
    assert seen[0].charges[0].served_by == "primary"
    assert model.stats().cost == Decimal("0.50")
    restored = pickle.loads(pickle.dumps(seen[0]))
    assert restored.charges == seen[0].charges and restored.cost == seen[0].cost


def test_a_cost_model_that_raises_is_counted_and_the_prediction_served(caplog: pytest.LogCaptureFixture) -> None:
    def broken(attempt: pw.Attempt) -> Decimal:
        raise RuntimeError("price list missing")

    model = pw.ProductionModel(lambda x: x + 1, name="broken-price", cost=broken)
    assert model(1) == 2
    assert model.predict_detailed(1).charges[0].unpriced
    assert model.stats().unpriced == 2
    assert "price list missing" in caplog.text


def test_a_cost_model_that_raises_is_asked_once_per_attempt(caplog: pytest.LogCaptureFixture) -> None:
    """The success path counts and logs the fault it met: it does not ask the cost model again
    (which ran a counting or billing cost model twice, and chained its error onto itself)."""
    asked: list[int] = []

    def broken(attempt: pw.Attempt) -> Decimal:
        asked.append(attempt.input)
        raise RuntimeError("price list missing")

    model = pw.ProductionModel(lambda x: x + 1, name="asked-once", cost=broken)
    assert model._engine.fast is not None  # (the success path prices the call)
    assert [model(i) for i in range(3)] == [1, 2, 3]
    assert asked == [0, 1, 2] and model.stats().unpriced == 3
    (record,) = [r for r in caplog.records if "asked-once: the cost model raised" in r.getMessage()]
    assert "During handling" not in logging.Formatter().format(record)


def test_a_timed_out_attempt_is_charged() -> None:
    release = threading.Event()

    def hangs(x: int) -> int:
        release.wait(10)
        return x

    model = pw.ProductionModel(hangs, timeout=0.01, fallback=pw.Constant(0), cost=pw.PerCall("0.01"))
    try:
        p = model.predict_detailed(1)
    finally:
        release.set()
    assert p.outcome == "fallback" and p.cost == Decimal("0.01")


async def test_async_models_are_charged_on_both_paths() -> None:
    fails = iter([True])

    async def answer(x: int) -> Any:
        await asyncio.sleep(0)
        if next(fails, False):
            raise ConnectionError("blip")
        return dict(USAGE)

    async def afallback(x: int) -> Any:
        return dict(USAGE)

    fallback = pw.ProductionModel(afallback, name="fb", cost=pw.PerCall("1"))
    model = pw.ProductionModel(answer, retry=RETRY2, cost=TOKENS, fallback=fallback)
    assert model._engine.fast is not None
    p = await model.predict_detailed(1)  # a failure (unpriced), then 0.003
    assert [c.unpriced for c in p.charges] == [True, False] and p.cost == Decimal("0.003")
    await model(1)  # the success path
    assert model.stats().cost == Decimal("0.006")

    async def adown(x: int) -> Any:
        raise ConnectionError("down")

    broken = pw.ProductionModel(adown, name="top", cost=pw.PerCall("0.1"), fallback=fallback)
    p = await broken.predict_detailed(1)
    assert [(c.model, c.served_by) for c in p.charges] == [("top", "primary"), ("fb", "fb")]
    assert p.cost == Decimal("1.10")


def test_metered_decorator_and_inspection() -> None:
    ledger = pw.Ledger()

    @pw.metered(cost=pw.PerCall("0.002"), ledger=ledger)
    @pw.retry(2)
    def predict(x: int) -> int:
        return x

    assert isinstance(predict, pw.ProductionModel) and predict.ledger is ledger
    predict(1)
    assert ledger.total() == Decimal("0.002")
    info = predict.describe()
    assert info["cost"] == {"per_call": "0.002"} and info["ledger"] == {"name": "ledger", "store": "MemoryStore"}
    assert "cost" in info["stages"]
    assert "0.002 USD, 0.002 USD per call" in predict.report()
    with pytest.raises(pw.ConfigurationError, match="metered"):
        pw.metered(lambda x: x)  # type: ignore[arg-type]
    with pytest.raises(pw.ConfigurationError, match="cost="):
        pw.metered()
    assert pw.ProductionModel(lambda x: x).ledger is None
    assert pw.ProductionModel(lambda x: x).stats().cost == 0


@pytest.mark.parametrize("entry", ["apredict", "apredict_detailed"], ids=["success path", "walk"])
async def test_an_attempt_cancelled_mid_way_is_charged_it_ran_all_the_same(entry: str) -> None:
    import asyncio

    started = asyncio.Event()

    async def slow(x: int) -> int:
        started.set()
        await asyncio.Event().wait()
        return x

    model = pw.ProductionModel(slow, cost=pw.PerCall("0.25"))
    task = asyncio.ensure_future(getattr(model, entry)(1))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert model.stats().cost == Decimal("0.25")
    assert model.ledger is not None and model.ledger.total() == Decimal("0.25")
    tokens = pw.ProductionModel(slow, cost=pw.PerToken(input="1", output="1"))
    started.clear()
    task = asyncio.ensure_future(getattr(tokens, entry)(1))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert tokens.stats().unpriced == 1  # a token price and no usage: counted, never a silent $0


@pytest.mark.parametrize("detailed", [False, True])
def test_a_custom_cost_model_that_gives_no_price_is_logged_once_for_what_it_did(
    caplog: pytest.LogCaptureFixture, detailed: bool
) -> None:
    """None from a cost callable is said to be that (not a missing token usage); a bad
    amount is the cost model's fault, one line naming it, with no second unpriced line."""
    caplog.set_level(logging.WARNING, "prodwrap.cost")
    nothing = pw.ProductionModel(lambda x: x, name=f"nothing-{detailed}", cost=lambda a: None)
    bad = pw.ProductionModel(lambda x: x, name=f"bad-{detailed}", cost=lambda a: "abc")
    for model in (nothing, bad):
        (model.predict_detailed if detailed else model)(1)
        assert model.stats().unpriced == 1
    lines = [r.getMessage() for r in caplog.records]
    assert [line for line in lines if line.startswith("nothing")] == [
        f"nothing-{detailed}: an attempt is unpriced: the cost model returned None for it (counted in stats().unpriced)"
    ]
    assert [line for line in lines if line.startswith("bad")] == [
        f"bad-{detailed}: the cost model raised ValueError: a cost model returned 'abc', not an amount of USD "
        "(the attempt is unpriced)"
    ]


def test_describe_shows_the_ledger_the_calls_go_to_the_models_own_too() -> None:
    own = pw.ProductionModel(lambda x: x, name="own", cost=pw.PerCall("0.1"))
    assert own.describe()["ledger"] == {"name": "own:ledger", "store": "MemoryStore"} == own.ledger.describe()  # type: ignore[union-attr]
    shared = pw.Ledger(name="shared")
    assert (
        pw.ProductionModel(lambda x: x, cost=pw.PerCall("0.1"), ledger=shared).describe()["ledger"]["name"] == "shared"
    )
    assert pw.ProductionModel(lambda x: x).describe().get("ledger") is None  # (no cost=: no ledger)
