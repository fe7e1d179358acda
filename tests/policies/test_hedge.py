"""Hedged attempts: a slow attempt gets company; the first success wins, sync and async."""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal
from typing import Any

import pytest

import prodwrap as pw
from prodwrap._record import CallRecord
from prodwrap._stage import Seam, Stage
from prodwrap.policies.hedge import HedgeStage
from prodwrap.testing import no_sleep

AFTER = 0.01  # real seconds: the hedge's wait is what is tested (the outcome never depends on it)


class Slow:
    """The first call hangs until released; every later one answers at once."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.finished: list[int] = []

    def __call__(self, x: int) -> str:
        with self.lock:
            self.calls += 1
            n = self.calls
        if n == 1:
            self.release.wait(10)
        self.finished.append(n)
        return f"attempt {n}"


class ASlow:
    """The async twin: the first call hangs (cancellable); later ones answer at once."""

    def __init__(self) -> None:
        self.calls = 0
        self.cancelled: list[int] = []
        self.release = asyncio.Event()

    async def __call__(self, x: int) -> str:
        self.calls += 1
        n = self.calls
        try:
            if n == 1:
                await self.release.wait()
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            self.cancelled.append(n)
            raise
        return f"attempt {n}"


def test_a_slow_first_attempt_is_hedged_and_the_hedge_wins() -> None:
    slow = Slow()
    seen: list[pw.Prediction] = []
    model = pw.ProductionModel(slow, hedge=pw.Hedge(after=AFTER), observers=[seen.append])
    p = model.predict_detailed(1)
    assert (p.value, p.outcome, p.served_by, p.attempts) == ("attempt 2", "ok", "primary", 2)
    assert seen == [p]  # one result, one prediction: the loser's is dropped
    assert model.stats().hedge == {"after": AFTER, "hedged_calls": 1, "extra_attempts": 1, "won_by_extra": 1}
    slow.release.set()  # the discarded attempt ends on its thread; nobody hears of it
    assert model(2) == "attempt 3"  # a fast call: no hedge
    assert model.stats().hedge["extra_attempts"] == 1
    assert model.stats().calls == 2


async def test_async_the_slow_attempt_is_cancelled_when_the_hedge_wins() -> None:
    slow = ASlow()
    model = pw.ProductionModel(slow, hedge=pw.Hedge(after=AFTER))
    p = await model.predict_detailed(1)
    assert (p.value, p.attempts) == ("attempt 2", 2)
    assert slow.cancelled == [1]  # the loser was cancelled before the call returned


def test_a_fast_first_attempt_starts_no_hedge() -> None:
    calls: list[int] = []
    model = pw.ProductionModel(lambda x: calls.append(x) or x, hedge=pw.Hedge(after=5.0))
    assert [model(i) for i in range(3)] == [0, 1, 2]
    assert calls == [0, 1, 2]
    assert model.stats().hedge["hedged_calls"] == 0


def test_a_failure_starts_no_hedge_the_retry_policy_decides() -> None:
    calls: list[int] = []

    def broken(x: int) -> int:
        calls.append(x)
        raise ValueError("a bug, not slowness")

    model = pw.ProductionModel(broken, hedge=pw.Hedge(after=5.0, max_extra=3), fallback=pw.Constant(0))
    p = model.predict_detailed(1)
    assert (p.value, p.outcome, p.attempts, len(calls)) == (0, "fallback", 1, 1)


def test_max_extra_bounds_the_attempts_and_every_one_is_counted() -> None:
    release = threading.Event()
    calls: list[int] = []
    lock = threading.Lock()

    def stuck_then_fine(x: int) -> str:
        with lock:
            calls.append(x)
            n = len(calls)
        if n <= 3:
            release.wait(10)
            return f"late {n}"
        return f"attempt {n}"

    model = pw.ProductionModel(
        stuck_then_fine, hedge=pw.Hedge(after=AFTER, max_extra=2), timeout=pw.Timeout(0.3), fallback=pw.Constant("fb")
    )
    p = model.predict_detailed(1)  # three attempts hang: the attempt timeout ends each of them
    release.set()
    assert (p.value, p.outcome, p.attempts) == ("fb", "fallback", 3)
    assert [type(e).__name__ for e in p.errors] == ["PredictionTimeout"] * 3
    assert len(calls) == 3  # never a fourth


def test_the_losers_errors_are_kept_when_an_attempt_wins() -> None:
    release, first_failed = threading.Event(), threading.Event()
    lock = threading.Lock()
    calls: list[int] = []

    def first_slow_then_fails(x: int) -> str:
        with lock:
            calls.append(x)
            n = len(calls)
        if n == 1:
            release.wait(10)
            first_failed.set()
            raise ConnectionError("the first attempt failed late")
        release.set()  # the hedge lets the first one fail, then answers after it did
        first_failed.wait(10)
        return "hedge"

    model = pw.ProductionModel(first_slow_then_fails, hedge=pw.Hedge(after=AFTER))
    p = model.predict_detailed(1)
    assert p.value == "hedge"
    assert [type(e).__name__ for e in p.errors] == ["ConnectionError"]


class Spend(Stage):
    """A retry budget's shape: allows ``n`` more retries or hedges."""

    name = "budget"
    seam = Seam.ATTEMPT

    def __init__(self, n: int) -> None:
        self.n = n
        self.spend = self.one

    def one(self, now: float) -> bool:
        self.n -= 1
        return self.n >= 0


def test_a_hedge_is_paid_for_from_the_retry_budget() -> None:
    from prodwrap._compile import compile_engine
    from prodwrap._engine import Engine

    slow = Slow()
    fn: Any = slow
    plain = compile_engine(fn, pw.ProductionModel(fn)._settings)
    for allowed, attempts in ((0, 1), (1, 2)):
        slow.calls = 0
        slow.release.clear()
        hedge = HedgeStage(pw.Hedge(after=AFTER))
        engine = Engine(fn=fn, name=plain.name, stages=[Spend(allowed), hedge])
        model = pw.ProductionModel(fn)
        model._swap(engine)
        if allowed == 0:
            threading.Timer(0.05, slow.release.set).start()  # no hedge: the first attempt must end
        p = model.predict_detailed(1)
        slow.release.set()
        assert p.attempts == attempts
        assert p.value == ("attempt 1" if allowed == 0 else "attempt 2")


async def test_cancelling_a_hedged_call_cancels_every_attempt_and_retries_nothing() -> None:
    slow = ASlow()
    calls_before_cancel = asyncio.Event()

    async def both_hang(x: int) -> str:
        slow.calls += 1
        if slow.calls == 2:
            calls_before_cancel.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            slow.cancelled.append(slow.calls)
            raise
        return "never"

    model = pw.ProductionModel(both_hang, hedge=pw.Hedge(after=AFTER), retry=pw.Retry(attempts=3, on=(Exception,)))
    task = asyncio.ensure_future(model.apredict(1))
    await calls_before_cancel.wait()  # both attempts are running
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(slow.cancelled) == 2  # neither keeps running on the loop
    assert slow.calls == 2  # nothing retried
    assert model.stats().failures.get("cancelled", 0) + model.stats().outcomes.get("error", 0) >= 1


def test_p95_hedges_only_once_enough_samples_are_in() -> None:
    stage = HedgeStage(pw.Hedge(after="p95", min_samples=20))
    call: Any = CallRecord(0.0)
    call.raced, call.won = 1, 0
    for i in range(19):
        stage.after_attempt(call, None, None, 0.001 * (i + 1))  # type: ignore[arg-type]
        assert stage.threshold(call) is None
    stage.after_attempt(call, None, None, 0.020)  # type: ignore[arg-type]
    assert stage.threshold(call) == pytest.approx(0.019)  # the 95th of 1..20 ms


def test_a_learned_p95_is_never_below_a_millisecond() -> None:
    stage = HedgeStage(pw.Hedge(after="p95", min_samples=5))
    call: Any = CallRecord(0.0)
    call.raced, call.won = 1, 0
    for _ in range(5):
        stage.after_attempt(call, None, None, 0.0)  # type: ignore[arg-type]
    assert stage.threshold(call) == 0.001
    assert stage.stats()["after"] == 0.001


def test_under_no_sleep_a_p95_hedge_waits_a_millisecond_not_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    """Attempts take 0 s on the fake clock: without the floor the p95 was 0 and every call
    after the first ``min_samples`` hedged at once (the race itself waits in real time)."""
    asked: list[float | None] = []
    threshold = HedgeStage.threshold

    def spied(self: HedgeStage, call: CallRecord) -> float | None:
        asked.append(threshold(self, call))
        return asked[-1]

    monkeypatch.setattr(HedgeStage, "threshold", spied)
    with no_sleep():
        model = pw.ProductionModel(lambda x: x, hedge=pw.Hedge(after="p95", min_samples=5))
        assert [model(i) for i in range(25)] == list(range(25))
    assert asked == [None] * 5 + [0.001] * 20
    assert model.stats().hedge["after"] == 0.001


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"after": 0}, "after must be a finite number of seconds > 0"),
        ({"after": "p99"}, "after must be a finite number of seconds > 0"),
        ({"after": float("nan")}, "after must be a finite number of seconds > 0"),
        ({"after": 0.1, "max_extra": 0}, "max_extra must be an int >= 1"),
        ({"after": 0.1, "max_extra": 17}, "^Hedge.max_extra must be at most 16 extra attempts, got 17$"),
        ({"after": 0.1, "max_extra": 10**6}, "max_extra must be at most 16 extra attempts"),
        ({"after": 0.1, "min_samples": 0}, "min_samples must be an int >= 1"),
    ],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(pw.ConfigurationError, match=message):
        pw.Hedge(**kwargs)


def test_max_extra_may_be_sixteen() -> None:
    assert pw.Hedge(after=0.1, max_extra=16).max_extra == 16


def test_describe_shows_the_hedge() -> None:
    model = pw.ProductionModel(lambda x: x, hedge=pw.Hedge(after=0.2, max_extra=2))
    assert model.describe()["hedge"] == {"after": 0.2, "max_extra": 2, "min_samples": 20}


async def test_a_sync_predict_awaited_is_hedged_on_workers() -> None:
    slow = Slow()
    model = pw.ProductionModel(slow, hedge=pw.Hedge(after=AFTER))
    p = await model.apredict_detailed(1)
    slow.release.set()
    assert (p.value, p.attempts) == ("attempt 2", 2)


def test_a_hedged_model_takes_the_walk_and_says_so() -> None:
    model = pw.ProductionModel(lambda x: x, hedge=pw.Hedge(after=0.1))
    assert model._engine.fast is None  # a race needs the walk: documented in docs/hedge.md
    assert "hedge" in model.describe()["stages"]


def test_each_raced_attempt_takes_a_rate_limit_permit_and_the_winner_settles_its_tokens() -> None:
    release = threading.Event()
    lock = threading.Lock()
    calls: list[int] = []

    def llm(x: int) -> dict[str, Any]:
        with lock:
            calls.append(x)
            n = len(calls)
        if n == 1:
            release.wait(10)
        return {"usage": {"prompt_tokens": 30, "completion_tokens": 10}, "n": n}

    limit = pw.RateLimit(calls=100, tokens=10_000, per=60.0, estimate=100.0)
    model = pw.ProductionModel(llm, hedge=pw.Hedge(after=AFTER), rate_limit=limit)
    p = model.predict_detailed(1)
    release.set()
    assert (p.value["n"], p.attempts) == (2, 2)
    stats = model.stats().rate_limit
    assert stats.permits == 2  # the hedge took a permit of its own
    assert stats.tokens_reserved == 200  # two reservations of 100
    assert stats.tokens_settled == 100 + 40  # the winner settled to its usage; the other stands


def test_no_hedge_when_the_rate_limit_has_no_permit_for_it_and_nothing_leaks() -> None:
    slow = Slow()
    limit = pw.RateLimit(calls=1, per=3600.0)  # one permit an hour: the first attempt takes it
    model = pw.ProductionModel(slow, hedge=pw.Hedge(after=AFTER), rate_limit=limit, timeout=pw.Timeout(0.2))
    threading.Timer(0.1, slow.release.set).start()  # the first attempt ends in its own time
    p = model.predict_detailed(1)
    assert (p.value, p.attempts) == ("attempt 1", 1)
    stats = model.stats().rate_limit
    assert (stats.permits, stats.refusals) == (1, 0)  # no permit for a hedge: none started, none refused
    assert model.stats().hedge["extra_attempts"] == 0 and model.stats().failures == {}


def test_under_a_slow_dependency_extra_attempts_stay_within_the_retry_budget() -> None:
    """Each call's first attempt answers only once its extra attempt has started, or after
    0.05 s when the budget refused that one: a generous slack over the hedge's 0.001 s, so
    every call asks for a hedge however loaded the machine is."""
    started: dict[int, threading.Event] = {}
    lock = threading.Lock()

    def always_slow(x: int) -> int:
        with lock:
            first = x not in started
            hedged = started.setdefault(x, threading.Event())
        if first:
            hedged.wait(0.05)
        else:
            hedged.set()  # the extra attempt: the first may answer now
        return x

    budget = pw.RetryBudget(ratio=0.2, min_per_second=0.5, window=60.0)  # floor: 30 in the window
    model = pw.ProductionModel(always_slow, hedge=pw.Hedge(after=0.001), retry=pw.Retry(attempts=2, budget=budget))
    calls = 60
    assert [model(i) for i in range(calls)] == list(range(calls))
    extra = model.stats().hedge["extra_attempts"]
    assert 0 < extra <= 0.5 * 60.0 + 0.2 * calls  # the budget's bound: its floor plus its ratio
    assert model.stats().retry_budget.denied > 0  # it did run out


async def test_an_awaited_sync_race_keeps_its_bulkhead_permit_until_every_discarded_attempt_ends() -> None:
    gates = [threading.Event(), threading.Event()]
    lock = threading.Lock()
    calls: list[int] = []
    ended: list[int] = []

    def two_hang(x: int) -> str:
        with lock:
            n = len(calls)
            calls.append(n)
        if n < 2:
            gates[n].wait(10)
            ended.append(n)
        return f"attempt {n}"

    model = pw.ProductionModel(two_hang, hedge=pw.Hedge(after=AFTER, max_extra=2), bulkhead=pw.Bulkhead(4))
    p = await model.apredict_detailed(1)
    assert (p.value, p.attempts) == ("attempt 2", 3)
    assert model.stats().bulkhead.in_use == 1  # two discarded attempts still run on their threads
    from prodwrap._workers import POOL

    busy = POOL.counts().busy
    gates[1].set()  # the later one ends first: the permit stays with the one still running
    for _ in range(2000):  # until its worker is idle again (its end's callbacks have run by then)
        if ended == [1] and POOL.counts().busy < busy:
            break
        await asyncio.sleep(0.001)
    assert ended == [1]
    assert model.stats().bulkhead.in_use == 1
    gates[0].set()
    for _ in range(2000):
        if model.stats().bulkhead.in_use == 0:
            break
        await asyncio.sleep(0.001)
    assert model.stats().bulkhead.in_use == 0


async def test_cancelling_a_hedged_call_gives_back_every_rate_limit_permit_and_counts_the_extras() -> None:
    started = asyncio.Event()
    calls: list[int] = []

    async def hangs(x: int) -> int:
        calls.append(x)
        if len(calls) == 3:
            started.set()
        await asyncio.Event().wait()
        return x

    model = pw.ProductionModel(
        hangs, hedge=pw.Hedge(after=AFTER, max_extra=2), rate_limit=pw.RateLimit(calls=10, per=3600.0)
    )
    task = asyncio.ensure_future(model.apredict(1))
    await started.wait()
    assert model.stats().rate_limit.permits == 3
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert model.stats().rate_limit.permits == 0
    assert model.stats().hedge["extra_attempts"] == 2


def test_a_timed_out_sync_race_keeps_its_bulkhead_permit_until_its_threads_end() -> None:
    release = threading.Event()

    def stuck(x: int) -> int:
        release.wait(10)
        return x

    model = pw.ProductionModel(
        stuck, timeout=pw.Timeout(attempt=0.05), hedge=pw.Hedge(after=5.0), bulkhead=pw.Bulkhead(1)
    )
    with pytest.raises(pw.PredictionTimeout):
        model(1)
    assert model.stats().bulkhead.in_use == 1  # the timed-out attempt runs on, holding it
    from prodwrap._workers import POOL

    busy = POOL.counts().busy
    release.set()
    for _ in range(2000):
        if model.stats().bulkhead.in_use == 0 and POOL.counts().busy < busy:
            break
        time.sleep(0.001)
    assert model.stats().bulkhead.in_use == 0


async def test_a_call_cancelled_mid_race_counts_and_charges_every_attempt_it_started() -> None:
    started = asyncio.Event()
    calls: list[int] = []

    async def hangs(x: int) -> int:
        calls.append(x)
        if len(calls) == 2:
            started.set()
        await asyncio.Event().wait()
        return x

    seen: list[pw.Prediction] = []
    model = pw.ProductionModel(hangs, hedge=pw.Hedge(after=AFTER), cost=pw.PerCall("0.5"), observers=[seen.append])
    task = asyncio.ensure_future(model.apredict(1))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (p,) = seen
    assert p.attempts == 2
    assert [c.attempt for c in p.charges] == [1, 2] and p.cost == Decimal("1.0")


def test_no_thread_for_a_hedge_means_no_hedge_never_a_failed_call(monkeypatch: pytest.MonkeyPatch) -> None:
    from prodwrap import _workers

    slow = Slow()
    model = pw.ProductionModel(slow, hedge=pw.Hedge(after=AFTER), fallback=pw.Constant("fallback"))
    model(0)  # (a worker for the first attempt exists and is idle again)
    slow.calls = 0
    real_start = _workers.Pool.start
    starts: list[int] = []

    def start(self: Any, *args: Any, **kwargs: Any) -> Any:
        starts.append(1)
        if len(starts) > 1:
            raise RuntimeError("can't start new thread")
        return real_start(self, *args, **kwargs)

    monkeypatch.setattr(_workers.Pool, "start", start)
    threading.Timer(0.1, slow.release.set).start()  # the first attempt ends in its own time
    p = model.predict_detailed(1)
    assert (p.value, p.outcome, p.attempts) == ("attempt 1", "ok", 1)
    assert model.stats().observer_errors == 1  # the fault is counted and logged


@pytest.mark.parametrize(("attempts", "expected"), [(3, [2, 1]), (4, [2, 2])])
async def test_hedged_attempts_count_toward_the_retry_attempts_and_a_call_is_hedged_once(
    attempts: int, expected: list[int]
) -> None:
    """Each round's first attempt fails only once an extra attempt has started, or (the last
    attempt ``attempts`` allows, which no extra may join) after 0.5 s of real time, a
    generous slack over the hedge's 0.01 s: ``attempts`` bounds the attempts in all."""
    started: list[int] = []
    hedged: dict[int, asyncio.Event] = {}
    rounds: list[int] = []

    async def down(x: int) -> int:
        n = len(started) + 1
        started.append(n)
        if n in hedged:  # an extra attempt: its round's first may fail now
            hedged[n].set()
            raise ConnectionError(f"extra {n}")
        rounds.append(1)
        hedged[n + 1] = asyncio.Event()
        try:
            await asyncio.wait_for(hedged[n + 1].wait(), 10 if n < attempts else 0.5)
            rounds[-1] = 2
        except TimeoutError:
            del hedged[n + 1]
        raise ConnectionError(f"first {n}")

    model = pw.ProductionModel(
        down,
        hedge=pw.Hedge(after=AFTER),
        retry=pw.Retry(attempts=attempts, wait=pw.backoff(initial=0.0)),
        fallback=pw.Constant(0),
    )
    p = await model.apredict_detailed(1)
    assert (p.value, p.outcome, p.attempts, len(started)) == (0, "fallback", attempts, attempts)
    assert rounds == expected
    assert model.stats().hedge["hedged_calls"] == 1
    assert model.stats().hedge["extra_attempts"] == expected.count(2)
