"""The rate limit: token buckets of calls and tokens per period, on prodwrap's (fake) clock."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest

import prodwrap as pw
from prodwrap._compile import compile_engine
from prodwrap._engine import Engine, Target
from prodwrap._record import CallRecord
from prodwrap._stage import Build, Seam, Stage
from prodwrap._stats import counted
from prodwrap.cost import Usage
from prodwrap.policies.ratelimit import RateLimitStats
from prodwrap.state import MemoryStore
from prodwrap.testing import FakeClock

NOW = pw.backoff(initial=0.0, jitter=False)


def limited(fn: Any = lambda x: x, fallback: Any = -1, **limit: Any) -> pw.ProductionModel[Any, Any, Any]:
    options: dict[str, Any] = {"rate_limit": pw.RateLimit(**limit)}
    if fallback is not None:
        options["fallback"] = pw.Constant(fallback)
    return pw.ProductionModel(fn, name="api", **options)


# -- the policy ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({}, "calls= or tokens="),
        ({"calls": 0}, "calls"),
        ({"calls": 0.5}, "calls"),
        ({"calls": True}, "calls"),
        ({"calls": float("inf")}, "calls"),
        ({"tokens": -5}, "tokens"),
        ({"calls": 1, "per": 0}, "per"),
        ({"calls": 1, "per": "60"}, "per"),
        ({"calls": 1, "max_wait": -1}, "max_wait"),
        ({"calls": 1, "max_wait": float("nan")}, "max_wait"),
        ({"calls": 1, "by": ""}, "by"),
        ({"calls": 1, "by": 3}, "by"),
        ({"calls": 1, "store": {}}, "store"),
        ({"calls": 1, "estimate": 10}, "tokens= as well"),
        ({"tokens": 100, "estimate": -1}, "estimate"),
        ({"tokens": 100, "usage": "usage"}, "usage"),
    ],
)
def test_nonsense_is_a_configuration_error_naming_the_setting(kwargs: dict[str, Any], setting: str) -> None:
    with pytest.raises(pw.ConfigurationError, match=setting):
        pw.RateLimit(**kwargs)


def test_describe_shows_the_policy_and_its_place_in_the_pipeline() -> None:
    model = pw.ProductionModel(lambda x: x, rate_limit=pw.RateLimit(calls=500, per=60, tokens=1e5, max_wait=1))
    info = model.describe()
    assert info["rate_limit"] == {
        "calls": 500.0,
        "per": 60.0,
        "tokens": 100000.0,
        "max_wait": 1.0,
        "by": None,
        "store": None,
        "estimate": None,
        "usage": None,
    }
    assert info["stages"] == ["rate limit", "predict"]
    # calls and tokens are shown as given: an int as an int, a float as a float
    assert type(info["rate_limit"]["calls"]) is int and type(info["rate_limit"]["tokens"]) is float
    assert pw.RateLimit(calls=2).describe()["calls"] == 2 and pw.RateLimit(tokens=7).describe()["tokens"] == 7
    assert repr(pw.RateLimit(calls=2.5).describe()["calls"]) == "2.5"
    retried = pw.ProductionModel(lambda x: x, retry=pw.Retry(budget=pw.RetryBudget()), rate_limit=pw.RateLimit(calls=1))
    assert retried.describe()["stages"] == ["retry", "retry budget", "rate limit", "predict"]
    assert pw.ProductionModel(lambda x: x).stats().rate_limit is None


def test_rate_limited_is_a_refusal_never_retried() -> None:
    error = pw.RateLimitedError("no permit", scope="calls", wait=1.5)
    assert isinstance(error, pw.ProdwrapError) and (error.scope, error.wait) == ("calls", 1.5)
    assert not pw.Retry(on=Exception).retries(error) and not pw.Retry().retries(error)
    from prodwrap._target import reason_of

    assert reason_of(error) == "rate_limited"


# -- calls per period (acceptance) ---------------------------------------------------------------


def burst(model: pw.ProductionModel[Any, Any, Any], threads: int, per_thread: int) -> list[Any]:
    start = threading.Barrier(threads)
    served: list[Any] = []

    def caller() -> None:
        start.wait()
        served.extend(model(i) for i in range(per_thread))

    pool = [threading.Thread(target=caller) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return served


def test_ten_a_second_under_8_threads_admits_exactly_10_then_refills_at_10_a_second(clock: FakeClock) -> None:
    model = limited(calls=10, per=1.0)
    assert model._engine.fast is not None  # a calls-only limit keeps the success path
    served = burst(model, threads=8, per_thread=5)
    assert len(served) == 40 and served.count(-1) == 30  # exactly 10 admitted in the first second
    clock.advance(0.5)
    assert burst(model, threads=8, per_thread=2).count(-1) == 16 - 5  # half a second: 5 more
    clock.advance(0.1)
    assert burst(model, threads=8, per_thread=1).count(-1) == 8 - 1
    clock.advance(60.0)  # a long pause refills the bucket to its size, no further
    assert burst(model, threads=8, per_thread=3).count(-1) == 24 - 10
    stats = model.stats()
    assert stats.rate_limit == RateLimitStats(permits=26, waits=0, seconds_waited=0.0, refusals=30 + 11 + 7 + 14)
    assert stats.failures == {"rate_limited": 62} and stats.outcomes == {"fallback": 62, "ok": 26}


def test_an_attempt_waits_up_to_max_wait_on_the_clock_then_goes_on(clock: FakeClock) -> None:
    model = limited(calls=2, per=1.0, max_wait=0.5)
    assert [model(1), model(2)] == [1, 2]
    assert model(3) == 3  # the next token comes in 0.5 s: the walk sleeps, then takes it
    assert clock.sleeps == [0.5]
    assert model(4) == 4  # the next needs 0.5 s again: within max_wait, it waits too
    assert clock.sleeps == [0.5, 0.5]
    stats = model.stats().rate_limit
    assert (stats.permits, stats.waits, stats.seconds_waited, stats.refusals) == (4, 2, 1.0, 0)


class Stalls(FakeClock):
    """A fake clock whose sleeps move it ``moves`` seconds, then hang until cancelled (async)
    or raise KeyboardInterrupt (sync): a sleep the caller cuts short."""

    def __init__(self, moves: float) -> None:
        super().__init__()
        self.moves = moves

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(self.moves)
        raise KeyboardInterrupt

    async def asleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(self.moves)
        await asyncio.Event().wait()


async def test_seconds_waited_counts_what_a_cancelled_waiter_waited_not_what_it_planned() -> None:
    async def echo(x: int) -> int:
        return x

    with pw.testing.no_sleep(Stalls(moves=0.05)) as clock:
        model = limited(echo, calls=1, per=10.0, max_wait=20.0, fallback=None)
        assert await model.apredict(1) == 1
        task = asyncio.ensure_future(model.apredict(2))
        while not clock.sleeps:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert clock.sleeps == [10.0]
    stats = model.stats().rate_limit
    assert (stats.waits, stats.seconds_waited, stats.permits) == (1, pytest.approx(0.05), 1)


def test_seconds_waited_counts_what_an_interrupted_waiter_waited() -> None:
    with pw.testing.no_sleep(Stalls(moves=0.25)) as clock:
        model = limited(calls=1, per=10.0, max_wait=20.0, fallback=None)
        assert model(1) == 1
        with pytest.raises(KeyboardInterrupt):
            model(2)
    assert clock.sleeps == [10.0]
    assert model.stats().rate_limit.seconds_waited == pytest.approx(0.25)


def test_seconds_waited_counts_a_sleep_that_ran_long_as_it_ran() -> None:
    class Oversleeps(FakeClock):
        def sleep(self, seconds: float) -> None:
            super().sleep(seconds * 1.5)

    with pw.testing.no_sleep(Oversleeps()) as clock:
        model = limited(calls=1, per=1.0, max_wait=2.0)
        assert [model(1), model(2)] == [1, 2]
    assert clock.sleeps == [1.5]
    assert model.stats().rate_limit.seconds_waited == pytest.approx(1.5)


def test_a_wait_longer_than_max_wait_is_refused_at_once(clock: FakeClock) -> None:
    model = limited(calls=1, per=2.0, max_wait=1.5)
    assert model(1) == 1
    p = model.predict_detailed(2)  # the next token is 2 s away: no point waiting 1.5 s for it
    assert (p.value, p.outcome, p.attempts) == (-1, "fallback", 0)
    assert clock.sleeps == [] and isinstance(p.errors[0], pw.RateLimitedError)
    assert p.errors[0].wait == pytest.approx(2.0) and p.errors[0].scope == "calls"


def test_a_wait_longer_than_the_deadline_goes_to_the_fallback_at_once(clock: FakeClock) -> None:
    model = pw.ProductionModel(
        lambda x: x,
        rate_limit=pw.RateLimit(calls=1, per=1.0, max_wait=5.0),
        timeout=pw.Timeout(total=0.5),
        fallback=pw.Constant(-1),
    )
    assert model(1) == 1
    p = model.predict_detailed(2)
    assert (p.value, p.outcome) == (-1, "fallback") and clock.sleeps == []
    assert "within 0.5 s" in str(p.errors[0])
    clock.advance(0.75)  # the token is 0.25 s away now: within the deadline, the call waits for it
    assert model(3) == 3 and clock.sleeps == [0.25]


def test_without_a_fallback_the_caller_gets_rate_limited_and_it_is_logged_once(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    model = limited(calls=1, per=1.0, fallback=None)
    model(1)
    with caplog.at_level(logging.INFO, logger="prodwrap"), pytest.raises(pw.RateLimitedError, match="rate limited"):
        model(2)
    assert [r.getMessage() for r in caplog.records] == [
        "api: attempt 1 refused: no rate-limit permit (calls) within 0 s"
    ]
    caplog.clear()
    served = limited(calls=1, per=1.0)
    served(1)
    with caplog.at_level(logging.INFO, logger="prodwrap"):
        assert served(2) == -1
    assert [r.getMessage() for r in caplog.records] == ["api: served by fallback constant after rate_limited"]


def test_a_retry_takes_a_second_permit(clock: FakeClock) -> None:
    failures = iter([ConnectionError("once")])

    def flaky(x: int) -> int:
        for error in failures:
            raise error
        return x

    model = pw.ProductionModel(
        flaky,
        retry=pw.Retry(attempts=2, wait=NOW),
        rate_limit=pw.RateLimit(calls=2, per=10.0),
        fallback=pw.Constant(-1),
    )
    p = model.predict_detailed(1)
    assert (p.value, p.attempts) == (1, 2)
    assert model.stats().rate_limit.permits == 2
    assert model(2) == -1  # both tokens spent on one call's two attempts


def test_a_retry_without_a_permit_is_refused_not_retried(clock: FakeClock) -> None:
    attempts = itertools.count()

    def down(x: int) -> int:
        next(attempts)
        raise ConnectionError("down")

    model = pw.ProductionModel(
        down, retry=pw.Retry(attempts=5, wait=NOW), rate_limit=pw.RateLimit(calls=1, per=10.0), fallback=pw.Constant(0)
    )
    p = model.predict_detailed(1)
    assert (p.outcome, p.attempts, counted(attempts)) == ("fallback", 1, 1)
    assert model.stats().failures == {"exception": 1, "rate_limited": 1}


def test_fallbacks_take_no_permit(clock: FakeClock) -> None:
    model = pw.ProductionModel(lambda x: x, rate_limit=pw.RateLimit(calls=1, per=60.0), fallback=lambda x: -x)
    assert [model(1), model(2), model(3)] == [1, -2, -3]


def test_by_keeps_one_bucket_per_tag_value(clock: FakeClock) -> None:
    model = limited(calls=1, per=60.0, by="customer")
    with pw.context(customer="acme"):
        assert [model(1), model(2)] == [1, -1]
    with pw.context(customer="globex"):
        assert model(3) == 3
    assert [model(4), model(5)] == [4, -1]  # calls without the tag share one bucket
    with pw.context(customer="acme", request_id="r-1"):
        p = model.predict_detailed(6)
    assert p.value == -1 and p.errors[0].scope == "calls:customer=acme"


def test_by_a_tag_value_that_cannot_be_printed_never_breaks_a_call(
    clock: FakeClock, bad_tag: tuple[Callable[[], object], str]
) -> None:
    make, text = bad_tag
    model = limited(calls=1, per=60.0, by="customer")
    with pw.context(customer=make()):
        assert model(1) == 1
    with pw.context(customer=make()):  # every such value in one bucket: the limit still holds
        p = model.predict_detailed(2)
    assert p.value == -1 and p.errors[0].scope == f"calls:customer={text}"
    bare = limited(fallback=None, calls=5, per=60.0, by="customer")
    with pw.context(customer=make()):
        assert [bare(1), bare.predict_detailed(2).value] == [1, 2]
    assert model.stats().rate_limit.faults == bare.stats().rate_limit.faults == 0


def test_by_with_churning_tag_values_keeps_the_buckets_bounded(clock: FakeClock) -> None:
    store = MemoryStore()
    model = limited(calls=10, per=1.0, by="request_id", store=store)
    for i in range(5000):  # a request id never seen again: its bucket is full 0.1 s later
        with pw.context(request_id=f"r-{i}"):
            assert model(i) == i
        clock.advance(0.001)
        assert len(store._buckets) <= 1024
    assert model.stats().rate_limit.permits == 5000


def test_by_a_tag_value_whose_bucket_was_swept_out_is_limited_as_a_new_one(clock: FakeClock) -> None:
    store = MemoryStore()
    model = limited(calls=2, per=1.0, by="customer", store=store)
    with pw.context(customer="acme"):
        assert [model(1), model(2), model(3)] == [1, 2, -1]
    clock.advance(1.0)  # acme's bucket is full again
    for i in range(1100):  # new customers: the sweep at 1024 buckets drops acme's full one
        with pw.context(customer=f"c-{i}"):
            model(i)
    assert "api:rate_limit:calls:customer=acme" not in store._buckets
    with pw.context(customer="acme"):
        assert [model(4), model(5), model(6)] == [4, 5, -1]
        clock.advance(0.5)
        assert [model(7), model(8)] == [7, -1]


def test_a_shared_store_makes_one_limit(clock: FakeClock) -> None:
    store = MemoryStore()
    first, second = limited(calls=2, per=60.0, store=store), limited(calls=2, per=60.0, store=store)
    assert [first(1), second(2), first(3), second(4)] == [1, 2, -1, -1]


# -- tokens --------------------------------------------------------------------------------------


def reply(prompt: int, completion: int) -> dict[str, Any]:
    return {"text": "...", "usage": {"prompt_tokens": prompt, "completion_tokens": completion}}


def test_a_token_limit_settles_each_reservation_to_the_reported_usage(clock: FakeClock) -> None:
    store = MemoryStore()
    model = limited(lambda x: reply(200, 100), tokens=1000, per=60.0, estimate=100, store=store)
    assert model._engine.fast is None  # reading the output's usage takes the walk
    for _ in range(3):
        assert model(1) != -1
    stats = model.stats().rate_limit
    assert (stats.tokens_reserved, stats.tokens_settled, stats.permits) == (300, 900, 3)
    # 1000 - 3 x 300 = exactly 100 tokens left (the clock has not moved): 100 can be taken, 101 not.
    assert store.take("api:rate_limit:tokens", 101, 1000, 1000 / 60, clock.monotonic()) > 0
    assert store.take("api:rate_limit:tokens", 100, 1000, 1000 / 60, clock.monotonic()) == 0.0
    store.give("api:rate_limit:tokens", 100, 1000, 1000 / 60, clock.monotonic())
    assert model(1) != -1  # the 100 reserved fit; it used 300: the bucket owes 200
    p = model.predict_detailed(1)
    assert p.value == -1 and p.errors[0].scope == "tokens"
    assert p.errors[0].wait == pytest.approx(300 / (1000 / 60))  # 200 owed + 100 for this one


def test_without_an_estimate_the_running_mean_of_usage_is_reserved(clock: FakeClock) -> None:
    sizes = iter([(40, 20), (100, 20), (10, 10)])
    model = limited(lambda x: reply(*next(sizes)), tokens=10_000, per=60.0)
    model(1)  # nothing reported yet: reserves 0, settles 60
    model(2)  # reserves 60, settles 120
    model(3)  # reserves ceil(90), settles 20
    stats = model.stats().rate_limit
    assert (stats.tokens_reserved, stats.tokens_settled) == (0 + 60 + 90, 60 + 120 + 20)


def test_an_estimate_may_be_a_function_of_the_input(clock: FakeClock) -> None:
    model = limited(lambda x: reply(len(x), 5), tokens=10_000, per=60.0, estimate=lambda text: len(text) + 5)
    model("a prompt")
    stats = model.stats().rate_limit
    assert (stats.tokens_reserved, stats.tokens_settled) == (13, 13)


def test_the_usage_override_and_outputs_without_usage(clock: FakeClock) -> None:
    readers: list[Any] = [lambda out: 7, lambda out: Usage(3, 4, cached_tokens=2), lambda out: None]
    for reader, settled, unreported in zip(readers, (7, 7, 50), (0, 0, 1), strict=True):
        model = limited(lambda x: "text", tokens=1000, per=60.0, estimate=50, usage=reader)
        model(1)
        stats = model.stats().rate_limit
        assert (stats.tokens_settled, stats.unreported, stats.faults) == (settled, unreported, 0)


@pytest.mark.parametrize("reader", [lambda out: 1 / 0, lambda out: "many", lambda out: -3], ids=["raises", "str", "<0"])
def test_a_usage_reader_that_fails_is_a_fault_not_an_unreported_usage(reader: Any, clock: FakeClock) -> None:
    limit = pw.RateLimit(tokens=1000, per=60.0, estimate=50, usage=reader)
    model = pw.ProductionModel(lambda x: "text", name="reads-usage", rate_limit=limit)  # (its own log throttle)
    assert model(1) == "text"
    stats = model.stats().rate_limit
    assert (stats.tokens_settled, stats.unreported, stats.faults) == (50, 0, 1)  # the reservation stands


def test_a_failed_attempt_keeps_its_reservation(clock: FakeClock) -> None:
    def down(x: int) -> Any:
        raise ConnectionError("down")

    model = limited(down, tokens=1000, per=60.0, estimate=400)
    model(1)
    model(2)
    assert model(3) == -1
    stats = model.stats().rate_limit
    assert (stats.tokens_reserved, stats.tokens_settled, stats.refusals) == (800, 800, 1)
    assert model.stats().failures == {"exception": 2, "rate_limited": 1}


def test_calls_and_tokens_together_give_back_the_call_permit_when_tokens_are_short(clock: FakeClock) -> None:
    model = limited(lambda x: reply(60, 0), calls=10, tokens=100, per=60.0, estimate=60)
    assert model(1) != -1
    assert model(2) == -1  # 40 tokens left: refused on tokens...
    assert model.stats().rate_limit.permits == 1
    store_calls = model._engine.stages[0].store.take("api:rate_limit:calls", 9, 10, 10 / 60, clock.monotonic())
    assert store_calls == 0.0  # ... and its call permit went back: 9 are left


def test_faults_of_the_store_and_the_callbacks_never_cost_the_prediction(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(MemoryStore):
        def take(self, key: str, amount: float, capacity: float, rate: float, now: float) -> float:
            raise OSError("store down")

    with caplog.at_level(logging.WARNING, logger="prodwrap.rate_limit"):
        assert [limited(calls=1, store=Broken())(i) for i in range(3)] == [0, 1, 2]

        def bad_usage(out: Any) -> Any:
            raise KeyError("usage")

        model = limited(lambda x: x, tokens=100, per=1.0, estimate=lambda x: "many", usage=bad_usage)
        assert model(5) == 5
    assert model.stats().rate_limit.faults == 2
    assert any("store down" in r.getMessage() for r in caplog.records)


# -- the seam ------------------------------------------------------------------------------------


class Refuser(Stage):
    """An attempt stage inside the rate limit that refuses every other attempt."""

    name = "refuser"
    seam = Seam.ATTEMPT

    def __init__(self) -> None:
        self.n = 0

    def before_attempt(self, call: CallRecord, target: Target) -> Exception | None:
        self.n += 1
        return pw.BulkheadFullError("no") if self.n % 2 == 0 else None


def test_a_permit_is_given_back_when_a_later_stage_refuses_the_attempt(clock: FakeClock) -> None:
    model = pw.ProductionModel(lambda x: x, fallback=pw.Constant(-1))
    policy = pw.RateLimit(calls=2, per=60.0)
    stages = [*policy.stages(Build("api", None, False, model._settings)), Refuser()]
    plain = compile_engine(lambda x: x, model._settings)
    model._swap(Engine(fn=lambda x: x, name="api", fallbacks=plain.fallbacks, stages=stages))
    assert [model(1), model(2), model(3), model(4)] == [1, -1, 3, -1]  # 2 permits, 2 given back
    assert model(5) == -1 and model.stats().rate_limit.permits == 2  # ... and now none is left


async def test_async_waits_and_cancellation_give_back_the_permit(clock: FakeClock) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(x: int) -> int:
        if x == 0:
            started.set()
            await release.wait()
        return x

    for limit in (pw.RateLimit(calls=1, per=1.0, max_wait=2.0), pw.RateLimit(calls=1, tokens=1000, max_wait=2.0)):
        started.clear()
        model = limited(slow, fallback=None, **{k: getattr(limit, k) for k in ("calls", "tokens", "max_wait")})
        task = asyncio.ensure_future(model(0))
        await started.wait()
        task.cancel()  # the caller gives up mid-attempt: the permit goes back
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await model(1) == 1 and clock.sleeps == []  # no wait: the permit was there
        assert await model(2) == 2  # the next one waits 1 s on the (fake) clock
        assert clock.sleeps == [1.0]
        clock.sleeps.clear()


def test_the_rate_limit_decorator() -> None:
    with pytest.raises(pw.ConfigurationError, match=r"@pw\.rate_limit needs options"):
        pw.rate_limit(lambda x: x)  # type: ignore[arg-type]

    @pw.rate_limit(calls=1, per=60.0)
    def predict(x: int) -> int:
        return x

    @pw.fallback(pw.Constant(0))
    @pw.rate_limit(pw.RateLimit(calls=1, per=60.0))
    def other(x: int) -> int:
        return x

    assert predict(3) == 3 and other(1) == 1 and other(2) == 0
    with pytest.raises(pw.RateLimitedError):
        predict(4)
    assert predict.describe()["rate_limit"]["calls"] == 1.0


async def test_a_retry_cancelled_gives_back_no_permit_of_the_race_before_it() -> None:
    extra_started, round_two = asyncio.Event(), asyncio.Event()
    calls: list[int] = []

    async def predict(x: int) -> int:
        calls.append(x)
        if x == 0 and len(calls) == 1:  # round 1's first attempt fails once the hedge's extra has started
            await extra_started.wait()
            raise ConnectionError("first")
        if x == 0 and len(calls) == 2:  # round 1's extra attempt: it reached the dependency, and fails
            extra_started.set()
            raise ConnectionError("extra")
        if x == 0:  # round 2 (the retry) hangs until the caller gives up
            round_two.set()
            await asyncio.Event().wait()
        return x

    model = pw.ProductionModel(
        predict,
        hedge=pw.Hedge(after=0.001),
        retry=pw.Retry(attempts=3, wait=NOW),  # round 2 is the third attempt: it is not raced
        rate_limit=pw.RateLimit(calls=4, per=3600.0),
        fallback=pw.Constant(-1),
    )
    task = asyncio.ensure_future(model.apredict(0))
    await round_two.wait()
    assert model.stats().rate_limit.permits == 3
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert model.stats().rate_limit.permits == 2  # round 2's permit went back; round 1's two never do
    assert [await model.apredict(1), await model.apredict(2), await model.apredict(3)] == [1, 2, -1]
