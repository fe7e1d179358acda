"""The bulkhead (``pw.Bulkhead``): at most ``max_concurrent`` attempts of the primary at once."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import prodwrap as pw
from prodwrap._engine import Engine, Target
from prodwrap._gates import Flight
from prodwrap._record import CallRecord
from prodwrap._stage import Build, Pause, Seam, Stage, Wait
from prodwrap.policies.bulkhead import BulkheadStage
from prodwrap.testing import FakeClock

LONG = 10.0  # a bound no passing test comes near: reaching it is a failure, not a wait


def stage_of(model: pw.ProductionModel[Any, Any, Any]) -> BulkheadStage:
    (stage,) = [s for s in model._engine.stages if isinstance(s, BulkheadStage)]
    return stage


def until(condition: Callable[[], bool]) -> None:
    """Wait for a condition another thread makes true (fails after LONG seconds)."""
    end = time.monotonic() + LONG
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("the condition never came true")
        threading.Event().wait(0.001)


async def auntil(condition: Callable[[], bool]) -> None:
    end = time.monotonic() + LONG
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("the condition never came true")
        await asyncio.sleep(0.001)


class Gauge:
    """A counter inside predict: how many run now, and the most that ever ran at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.most = self.calls = 0

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.calls += 1
            self.most = max(self.most, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


# -- the policy ------------------------------------------------------------------------------


def test_bulkhead_validates_its_settings() -> None:
    for bad in (0, -1, 1.5, True, "4", None):
        with pytest.raises(pw.ConfigurationError, match="max_concurrent"):
            pw.Bulkhead(bad)  # type: ignore[arg-type]
    for wait in (-0.1, math.nan, True, "1", None):
        with pytest.raises(pw.ConfigurationError, match="max_wait"):
            pw.Bulkhead(4, max_wait=wait)  # type: ignore[arg-type]
    assert pw.Bulkhead(4, max_wait=1).max_wait == 1.0
    assert pw.Bulkhead(4, max_wait=math.inf).describe() == {"max_concurrent": 4, "max_wait": None}
    with pytest.raises(pw.ConfigurationError, match="bulkhead= takes a prodwrap policy"):
        pw.ProductionModel(lambda x: x, bulkhead=4)  # type: ignore[arg-type]


def test_describe_shows_the_bulkhead_outermost_on_the_attempt_seam() -> None:
    model = pw.ProductionModel(
        lambda x: x, bulkhead=pw.Bulkhead(16, max_wait=0.5), retry=3, timeout=pw.Timeout(attempt=1, total=2)
    )
    info = model.describe()
    assert info["bulkhead"] == {"max_concurrent": 16, "max_wait": 0.5}
    assert info["stages"] == ["total deadline", "bulkhead", "retry", "attempt timeout", "predict"]
    assert pw.ProductionModel(lambda x: x).stats().bulkhead is None


@pytest.mark.parametrize("timeout", [None, 5.0], ids=["inline", "timed"])
def test_the_success_path_stays_compiled_and_gives_every_permit_back(timeout: float | None) -> None:
    model = pw.ProductionModel(lambda x: x + 1, bulkhead=pw.Bulkhead(2), timeout=timeout)
    assert model._engine.fast is not None
    assert [model(i) for i in range(5)] == [1, 2, 3, 4, 5]
    stats = model.stats().bulkhead
    assert (stats.in_use, stats.peak, stats.waits, stats.full) == (0, 1, 0, 0)


async def test_the_async_success_path_stays_compiled() -> None:
    async def predict(x: int) -> int:
        return x * 2

    model = pw.ProductionModel(predict, bulkhead=pw.Bulkhead(1))
    assert model._engine.fast is not None
    assert await model(3) == 6 and await model.apredict(4) == 8
    assert model.stats().bulkhead.in_use == 0


# -- the acceptance bullet: 50 callers, never more than 4 at once -----------------------------


def test_50_threads_never_run_more_than_4_predicts_at_once() -> None:
    gauge, release = Gauge(), threading.Event()

    def predict(x: int) -> int:
        gauge.enter()
        try:
            release.wait(LONG)  # the first ones hold their permits until every caller queues
            return x
        finally:
            gauge.leave()

    model = pw.ProductionModel(predict, bulkhead=pw.Bulkhead(4, max_wait=math.inf))
    stage = stage_of(model)
    start = threading.Barrier(50)
    results: list[int] = []

    def caller(i: int) -> None:
        start.wait()
        results.append(model(i))

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    until(lambda: stage.permits.waiting == 46)  # 4 run, the other 46 really wait
    assert gauge.now == 4 and stage.permits.in_use == 4
    release.set()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(50)) and gauge.calls == 50
    assert gauge.most == 4
    stats = model.stats().bulkhead
    assert (stats.in_use, stats.peak, stats.waiting, stats.full) == (0, 4, 0, 0) and stats.waits >= 46


async def test_50_tasks_never_run_more_than_4_async_predicts_at_once() -> None:
    gauge, release = Gauge(), asyncio.Event()

    async def predict(x: int) -> int:
        gauge.enter()
        try:
            await release.wait()
            return x
        finally:
            gauge.leave()

    model = pw.ProductionModel(predict, bulkhead=pw.Bulkhead(4, max_wait=math.inf))
    stage = stage_of(model)
    tasks = [asyncio.create_task(model.apredict(i)) for i in range(50)]
    await auntil(lambda: stage.permits.waiting == 46)
    assert gauge.now == 4
    release.set()
    assert await asyncio.gather(*tasks) == list(range(50))
    assert gauge.most == 4 and gauge.calls == 50 and stage.permits.in_use == 0


async def test_50_tasks_never_run_more_than_4_sync_predicts_on_workers() -> None:
    gauge, release = Gauge(), threading.Event()

    def predict(x: int) -> int:
        gauge.enter()
        try:
            release.wait(LONG)
            return x
        finally:
            gauge.leave()

    model = pw.ProductionModel(predict, bulkhead=pw.Bulkhead(4, max_wait=math.inf))
    stage = stage_of(model)
    tasks = [asyncio.create_task(model.apredict(i)) for i in range(50)]
    await auntil(lambda: stage.permits.waiting == 46 and gauge.now == 4)
    release.set()
    assert await asyncio.gather(*tasks) == list(range(50))
    assert gauge.most == 4 and gauge.calls == 50 and stage.permits.in_use == 0


# -- full: fallback or BulkheadFullError ----------------------------------------------------------


def held(model: pw.ProductionModel[Any, Any, Any]) -> BulkheadStage:
    """Take every permit of the model's bulkhead, as running attempts would."""
    stage = stage_of(model)
    while stage.permits.take():
        pass
    return stage


def test_full_goes_to_the_fallback_at_once_and_is_never_retried(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []
    model = pw.ProductionModel(
        calls.append,
        bulkhead=pw.Bulkhead(1),
        retry=pw.Retry(attempts=3, on=Exception),
        fallback=pw.Constant("fallback"),
    )
    stage = held(model)
    with caplog.at_level(logging.INFO, logger="prodwrap.bulkhead"):
        p = model.predict_detailed(1)
    assert (p.value, p.outcome, p.served_by, p.attempts) == ("fallback", "fallback", "constant", 0)
    assert [type(e) for e in p.errors] == [pw.BulkheadFullError] and calls == []
    assert model.stats().failures == {"bulkhead_full": 1}
    (line,) = [r for r in caplog.records if r.name == "prodwrap.bulkhead"]
    assert line.levelno == logging.INFO and line.reason == "bulkhead_full"  # type: ignore[attr-defined]
    stats = model.stats().bulkhead
    assert (stats.full, stats.waits, stats.in_use) == (1, 0, 1)
    stage.permits.give()
    assert model(2) is None and calls == [2]


def test_full_without_a_fallback_raises_bulkhead_full_error() -> None:
    model = pw.ProductionModel(lambda x: x, bulkhead=pw.Bulkhead(2), retry=3)
    held(model)
    with pytest.raises(pw.BulkheadFullError, match="bulkhead full"):
        model(1)


def test_fallbacks_run_outside_the_bulkhead() -> None:
    """A fallback needs no permit, and takes none, while the primary's are all held."""
    seen: list[int] = []

    def fallback(x: int) -> str:
        seen.append(stage.permits.in_use)
        return "fb"

    model = pw.ProductionModel(lambda x: x, bulkhead=pw.Bulkhead(1), fallback=fallback)
    stage = held(model)
    assert model(1) == "fb" and seen == [1] and stage.permits.in_use == 1


def test_a_failed_attempt_gives_its_permit_back_and_each_retry_takes_one(clock: FakeClock) -> None:
    inside: list[int] = []

    def predict(x: int) -> int:
        inside.append(stage.permits.in_use)
        if len(inside) < 3:
            raise ConnectionError("flaky")
        return x

    model = pw.ProductionModel(predict, bulkhead=pw.Bulkhead(1), retry=3)
    stage = stage_of(model)
    assert model(5) == 5  # a failed first attempt on the success path, then two on the walk
    assert inside == [1, 1, 1] and stage.permits.in_use == 0


# -- max_wait ---------------------------------------------------------------------------------------


def test_a_waiting_attempt_gets_the_permit_given_back() -> None:
    entered, release = threading.Event(), threading.Event()

    def predict(x: int) -> int:
        if x == 0:
            entered.set()
            release.wait(LONG)
        return x

    model = pw.ProductionModel(predict, bulkhead=pw.Bulkhead(1, max_wait=LONG))
    stage = stage_of(model)
    first = threading.Thread(target=model, args=(0,))
    first.start()
    entered.wait(LONG)
    got: list[int] = []
    second = threading.Thread(target=lambda: got.append(model(1)))
    second.start()
    until(lambda: stage.permits.waiting == 1)
    assert got == []
    release.set()
    second.join()
    first.join()
    assert got == [1]
    stats = model.stats().bulkhead
    assert (stats.waits, stats.full, stats.in_use, stats.peak) == (1, 0, 0, 1)


async def test_an_async_waiting_attempt_gets_the_permit_given_back() -> None:
    release = asyncio.Event()

    async def predict(x: int) -> int:
        if x == 0:
            await release.wait()
        return x

    model = pw.ProductionModel(predict, bulkhead=pw.Bulkhead(1, max_wait=LONG))
    stage = stage_of(model)
    first = asyncio.create_task(model.apredict(0))
    await auntil(lambda: stage.permits.in_use == 1)
    second = asyncio.create_task(model.apredict(1))
    await auntil(lambda: stage.permits.waiting == 1)
    release.set()
    assert await asyncio.gather(first, second) == [0, 1]
    assert model.stats().bulkhead.waits == 1 and stage.permits.in_use == 0


@pytest.mark.parametrize("how", ["sync", "async"])
async def test_the_wait_never_passes_the_calls_deadline(how: str) -> None:
    async def apredict(x: int) -> int:
        return x

    fn: Any = apredict if how == "async" else (lambda x: x)
    model = pw.ProductionModel(fn, bulkhead=pw.Bulkhead(1, max_wait=LONG), timeout=pw.Timeout(total=0.05))
    held(model)
    began = time.monotonic()
    with pytest.raises(pw.BulkheadFullError, match="none became free in time"):
        await model.apredict(1) if how == "async" else model(1)
    assert time.monotonic() - began < LONG / 2  # the total deadline (0.05 s), not max_wait
    stats = model.stats().bulkhead
    assert (stats.waits, stats.full, stats.waiting) == (1, 1, 0)


def test_a_wait_that_runs_out_goes_to_the_fallback() -> None:
    model = pw.ProductionModel(lambda x: x, bulkhead=pw.Bulkhead(1, max_wait=0.01), fallback=pw.Constant(-1))
    held(model)
    p = model.predict_detailed(1)
    assert (p.value, p.outcome) == (-1, "fallback") and isinstance(p.errors[0], pw.BulkheadFullError)


# -- abandoned attempts keep their permits until their threads end ---------------------------------


@pytest.mark.parametrize("how", ["success path", "walk", "apredict"])
async def test_an_abandoned_sync_attempt_keeps_its_permit_until_its_thread_ends(how: str) -> None:
    release, ended = threading.Event(), threading.Event()

    def predict(x: int) -> int:
        if x == 0:
            try:
                release.wait(LONG)
            finally:
                ended.set()
        return x

    model = pw.ProductionModel(predict, bulkhead=pw.Bulkhead(1), timeout=0.05)
    stage = stage_of(model)
    with pytest.raises(pw.PredictionTimeout):
        if how == "success path":
            model(0)
        elif how == "walk":
            model.predict_detailed(0)
        else:
            await model.apredict(0)
    stats = model.stats().bulkhead
    assert (stats.in_use, stats.held_by_abandoned) == (1, 1)  # its thread still runs
    with pytest.raises(pw.BulkheadFullError):
        model(1)  # so the bulkhead is still full
    release.set()
    ended.wait(LONG)
    until(lambda: stage.permits.in_use == 0)  # given back once the thread is done
    assert model.stats().bulkhead.held_by_abandoned == 0
    assert model(2) == 2


async def test_a_cancelled_sync_attempt_on_a_worker_keeps_its_permit_until_its_thread_ends() -> None:
    entered, release = threading.Event(), threading.Event()

    def predict(x: int) -> int:
        entered.set()
        release.wait(LONG)
        return x

    model = pw.ProductionModel(predict, bulkhead=pw.Bulkhead(1))
    stage = stage_of(model)
    task = asyncio.create_task(model.apredict(0))
    await auntil(entered.is_set)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stage.permits.in_use == 1 and model.stats().bulkhead.held_by_abandoned == 1
    release.set()
    await auntil(lambda: stage.permits.in_use == 0)
    assert model.stats().outcomes == {"error": 1} and model.stats().failures == {"cancelled": 1}


# -- cancellation ---------------------------------------------------------------------------------


async def test_cancelling_a_call_waiting_on_the_bulkhead_gives_nothing_away() -> None:
    async def predict(x: int) -> int:
        return x

    model = pw.ProductionModel(predict, bulkhead=pw.Bulkhead(1, max_wait=LONG))
    stage = held(model)
    task = asyncio.create_task(model.apredict(1))
    await auntil(lambda: stage.permits.waiting == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (stage.permits.waiting, stage.permits.in_use) == (0, 1)  # only the permit held before
    stage.permits.give()
    assert stage.permits.in_use == 0 and await model.apredict(2) == 2
    assert model.stats().failures == {"cancelled": 1}


async def test_a_call_cancelled_just_as_it_is_handed_the_permit_leaks_nothing() -> None:
    async def predict(x: int) -> int:
        return x

    model = pw.ProductionModel(predict, bulkhead=pw.Bulkhead(1, max_wait=LONG))
    stage = held(model)
    task = asyncio.create_task(model.apredict(1))
    await auntil(lambda: stage.permits.waiting == 1)
    stage.permits.give()  # handed to the waiter; it has not run yet
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stage.permits.in_use == 0


async def test_cancelling_an_async_attempt_gives_its_permit_back() -> None:
    started = asyncio.Event()

    async def predict(x: int) -> int:
        started.set()
        await asyncio.Event().wait()
        return x

    model = pw.ProductionModel(predict, bulkhead=pw.Bulkhead(1))
    stage = stage_of(model)
    for call in (model.apredict, model.apredict_detailed):  # the success path, then the walk
        started.clear()
        task = asyncio.create_task(call(1))
        await started.wait()
        assert stage.permits.in_use == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert stage.permits.in_use == 0


# -- with other stages on the attempt seam -----------------------------------------------------


class Inner(Stage):
    """An attempt stage inside the bulkhead that refuses, pauses or waits, as told."""

    name = "inner"
    seam = Seam.ATTEMPT

    def __init__(self, decide: Callable[[], Any]) -> None:
        self.decide = decide
        self.fast_admit = lambda value, args, kwargs: False  # the walk decides every call

    def before_attempt(self, call: CallRecord, target: Target) -> Any:
        return self.decide()


def with_inner(fn: Any, decide: Callable[[], Any], **policy: Any) -> tuple[pw.ProductionModel[Any, Any, Any], Any]:
    build = Build("m", None, asyncio.iscoroutinefunction(fn), None)
    (bulkhead,) = pw.Bulkhead(1, **policy).stages(build)
    model = pw.ProductionModel(fn)
    model._swap(Engine(fn=fn, name="m", stages=[bulkhead, Inner(decide)]))
    return model, bulkhead


def test_a_later_stage_refusing_the_attempt_gets_the_permit_given_back() -> None:
    model, bulkhead = with_inner(lambda x: x, lambda: ValueError("inner says no"))
    for _ in range(3):  # on the success path, fast_undo; on the walk, undo_attempt
        with pytest.raises(ValueError, match="inner says no"):
            model(1)
        assert bulkhead.permits.in_use == 0


@pytest.mark.parametrize("decision", ["pause", "wait"])
async def test_a_call_cancelled_while_a_later_stage_waits_gives_the_permit_back(decision: str) -> None:
    def decide() -> Any:
        return Pause(LONG) if decision == "pause" else Wait(Flight(), LONG, ValueError("never"))

    async def predict(x: int) -> int:
        return x

    model, bulkhead = with_inner(predict, decide)
    task = asyncio.create_task(model.apredict(1))
    await auntil(lambda: bulkhead.permits.in_use == 1)
    await asyncio.sleep(0)  # the inner stage's pause or wait is under way
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert bulkhead.permits.in_use == 0


def test_a_refused_retry_after_an_abandoned_attempt_gives_its_own_permit_back_at_once(clock: FakeClock) -> None:
    release = threading.Event()
    decisions = iter([None, ValueError("inner says no")])

    def predict(x: int) -> int:
        release.wait(LONG)
        return x

    build = Build("m", None, False, None)
    (bulkhead,) = pw.Bulkhead(2).stages(build)
    model = pw.ProductionModel(predict)
    engine = Engine(
        fn=predict,
        name="m",
        stages=[bulkhead, Inner(lambda: next(decisions))],
        timeout=pw.Timeout(attempt=0.05),
        retry=pw.Retry(attempts=2),
    )
    model._swap(engine)
    with pytest.raises(ValueError, match="inner says no"):
        model(1)  # attempt 1 abandoned at its timeout; the retry refused by the inner stage
    stats = model.stats().bulkhead
    assert (stats.in_use, stats.held_by_abandoned) == (1, 1)  # the retry's permit is not the abandoned one's
    release.set()
    until(lambda: bulkhead.permits.in_use == 0)


def test_a_hedged_race_holds_its_one_permit_until_its_discarded_attempts_end() -> None:
    """Outside the hedge, the bulkhead sees a race as one attempt: one permit, held until the
    discarded attempts' threads have ended too."""
    release = threading.Event()
    first = threading.Lock()

    def predict(x: int) -> int:
        if first.acquire(blocking=False):  # the first attempt is slow: the hedge wins
            release.wait(LONG)
        return x

    model = pw.ProductionModel(predict, bulkhead=pw.Bulkhead(1), hedge=pw.Hedge(after=0.01, max_extra=1))
    stage = stage_of(model)
    p = model.predict_detailed(1)
    assert (p.value, p.attempts) == (1, 2)
    stats = model.stats().bulkhead
    assert (stats.in_use, stats.held_by_abandoned, stats.peak) == (1, 1, 1)
    release.set()
    until(lambda: stage.permits.in_use == 0)
    assert model.stats().bulkhead.held_by_abandoned == 0


def test_a_huge_bulkhead_is_built_at_once_and_holds_memory_for_its_permits_in_use() -> None:
    model = pw.ProductionModel(lambda x: x, bulkhead=pw.Bulkhead(10**12))
    stage = next(s for s in model._engine.stages if s.section == "bulkhead")
    assert len(stage.permits._free) <= 1024  # type: ignore[attr-defined]
    assert model(3) == 3
    stats = model.stats().bulkhead
    assert stats is not None and (stats.max_concurrent, stats.in_use, stats.peak) == (10**12, 0, 1)
