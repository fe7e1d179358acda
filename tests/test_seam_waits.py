"""The seam's waits and give-backs: Wait, Pause, undo_attempt, fast_undo, the retry budget's
spend hook, and an abandoned attempt's job telling when its thread really ends."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import prodwrap as pw
from prodwrap._compile import compile_engine
from prodwrap._engine import Engine, Target
from prodwrap._record import CallRecord
from prodwrap._stage import Decision, Observers, Pause, Seam, Serve, Stage, Wait
from prodwrap.testing import FakeClock


def engine_with(fn: Any, stages: list[Stage], **options: Any) -> Engine:
    plain = compile_engine(fn, pw.ProductionModel(fn, **options)._settings)
    return Engine(
        fn=fn,
        name=plain.name,
        retry=plain.retry,
        timeout=pw.Timeout.coerce(options.get("timeout")),
        fallbacks=plain.fallbacks,
        stages=stages,
    )


def model_of(engine: Engine) -> pw.ProductionModel[Any, Any, Any]:
    model = pw.ProductionModel(engine.primary.fn)
    model._swap(engine)
    return model


class Gate:
    """A permit that is given (or not) as the test says, recording each wait."""

    def __init__(self, give: bool) -> None:
        self.give = give
        self.waits: list[float] = []

    def acquire(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return self.give

    async def aacquire(self, seconds: float) -> bool:
        self.waits.append(seconds)
        await asyncio.sleep(0)
        return self.give


class Waiting(Stage):
    """Attempt seam: asks the driver to wait on its gate before every attempt."""

    name = "waiting"
    seam = Seam.ATTEMPT
    fast = False

    def __init__(self, gate: Gate, seconds: float = 2.0) -> None:
        self.gate, self.seconds = gate, seconds
        self.events: list[str] = []

    def before_attempt(self, call: CallRecord, target: Target) -> Decision | None:
        self.events.append("asked")
        return Wait(self.gate, self.seconds, RuntimeError("no permit"))

    def after_attempt(self, call: CallRecord, target: Target, error: Exception | None, seconds: float) -> None:
        self.events.append("after")

    def undo_attempt(self, call: CallRecord, target: Target) -> None:
        self.events.append("undo")


class Refusing(Stage):
    """Attempt seam: refuses every attempt (after the stages outside it let it through)."""

    name = "refusing"
    seam = Seam.ATTEMPT

    def __init__(self) -> None:
        self.fast_admit = lambda value, args, kwargs: False

    def before_attempt(self, call: CallRecord, target: Target) -> Decision | None:
        return ValueError("refused by the inner stage")


def double(x: int) -> int:
    return x * 2


async def adouble(x: int) -> int:
    await asyncio.sleep(0)
    return x * 2


@pytest.mark.parametrize("fn", [double, adouble], ids=["sync", "async"])
async def test_a_wait_that_gets_its_permit_lets_the_attempt_go_on(fn: Any, clock: FakeClock) -> None:
    gate = Gate(give=True)
    stage = Waiting(gate, seconds=2.0)
    model = model_of(engine_with(fn, [stage], timeout=pw.Timeout(total=1.5)))
    result = model(4)
    assert (await result if asyncio.iscoroutine(result) else result) == 8
    assert gate.waits == [1.5]  # cut to what is left of the call's deadline
    assert stage.events == ["asked", "after"]


@pytest.mark.parametrize("fn", [double, adouble], ids=["sync", "async"])
async def test_a_wait_without_its_permit_refuses_the_attempt(fn: Any, clock: FakeClock) -> None:
    stage = Waiting(Gate(give=False))
    model = model_of(engine_with(fn, [stage], fallback=pw.Constant(-1)))
    result = model.predict_detailed(4)
    p = await result if asyncio.iscoroutine(result) else result
    assert (p.value, p.outcome, p.attempts) == (-1, "fallback", 0)  # a refused attempt is not one made
    assert [type(e).__name__ for e in p.errors] == ["RuntimeError"]
    assert stage.events == ["asked"]  # nothing was taken: nothing to give back


def test_a_later_refusal_makes_the_earlier_stages_give_back(clock: FakeClock) -> None:
    outer = Waiting(Gate(give=True))
    model = model_of(engine_with(double, [outer, Refusing()], fallback=pw.Constant(-1)))
    p = model.predict_detailed(4)
    assert (p.value, p.outcome) == (-1, "fallback")
    assert str(p.errors[0]) == "refused by the inner stage"
    assert outer.events == ["asked", "undo"]


class Pausing(Stage):
    """Attempt seam: a rate limit's shape — no permit until the clock has moved on."""

    name = "pausing"
    seam = Seam.ATTEMPT
    fast = False

    def __init__(self, clock: FakeClock, until: float) -> None:
        self.clock, self.until = clock, until
        self.asked: list[float] = []

    def before_attempt(self, call: CallRecord, target: Target) -> Decision | None:
        now = self.clock.monotonic()
        self.asked.append(now)
        return None if now >= self.until else Pause(self.until - now)


def test_a_pause_sleeps_on_the_clock_then_asks_again(clock: FakeClock) -> None:
    stage = Pausing(clock, until=clock.monotonic() + 0.25)
    model = model_of(engine_with(double, [stage]))
    assert model(4) == 8
    assert clock.sleeps == [0.25]
    assert len(stage.asked) == 2


class Admitting(Stage):
    """Admission: waits on a gate once, then serves."""

    name = "admitting"
    seam = Seam.ADMISSION
    fast = False

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.asked = 0

    def admit(self, call: CallRecord, value: Any) -> Any:
        self.asked += 1
        if self.asked == 1:
            return Wait(self.gate, 3.0, RuntimeError("unused"))
        return Serve(f"served after {'a given' if call.ok else 'a refused'} wait", "cached", "cache")


@pytest.mark.parametrize("give", [True, False])
def test_admission_may_wait_and_is_asked_again(give: bool, clock: FakeClock) -> None:
    gate = Gate(give)
    stage = Admitting(gate)
    p = model_of(engine_with(double, [stage])).predict_detailed(4)
    assert p.value == f"served after {'a given' if give else 'a refused'} wait"
    assert (p.outcome, p.served_by, stage.asked, gate.waits) == ("cached", "cache", 2, [3.0])


class Taking(Stage):
    """Attempt seam on the success path: takes a permit in fast_admit, gives it back after."""

    name = "taking"
    seam = Seam.ATTEMPT

    def __init__(self) -> None:
        self.held = 0
        self.fast_admit = self.take
        self.fast_undo = self.give
        self.fast_attempt = lambda seconds: self.give()

    def take(self, value: Any, args: Any, kwargs: Any) -> bool:
        self.held += 1
        return True

    def give(self) -> None:
        self.held -= 1

    def before_attempt(self, call: CallRecord, target: Target) -> Decision | None:
        self.held += 1
        return None

    def after_attempt(self, call: CallRecord, target: Target, error: Exception | None, seconds: float) -> None:
        self.held -= 1

    def undo_attempt(self, call: CallRecord, target: Target) -> None:
        self.held -= 1


def test_a_later_fast_admit_saying_no_makes_the_earlier_give_back(clock: FakeClock) -> None:
    taking = Taking()
    engine = engine_with(double, [taking, Refusing()], fallback=pw.Constant(-1))
    assert engine.fast is not None
    assert model_of(engine)(4) == -1
    assert taking.held == 0  # given back on the success path (fast_undo) and on the walk (undo)


def test_permits_taken_on_the_success_path_are_given_back_on_every_path(clock: FakeClock) -> None:
    taking = Taking()

    def sometimes(x: int) -> int:
        if x < 0:
            raise ConnectionError("down")
        return x

    model = model_of(engine_with(sometimes, [taking], retry=pw.Retry(attempts=2), fallback=pw.Constant(0)))
    assert model._engine.fast is not None
    assert [model(1), model(-1), model(2)] == [1, 0, 2]
    assert taking.held == 0


async def test_a_cancelled_attempt_gives_back_what_its_stages_took() -> None:
    taking, started = Taking(), asyncio.Event()

    async def hang(x: int) -> int:
        started.set()
        await asyncio.Event().wait()
        return x

    for fast in (True, False):  # the success path, and the walk (a caller's deadline)
        model = model_of(engine_with(hang, [taking]))
        call = model.apredict if fast else model.apredict_detailed
        task = asyncio.ensure_future(call(1))
        await started.wait()
        assert taking.held == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert taking.held == 0, fast
        started.clear()


class Budget(Stage):
    """A retry budget's shape: ``spend`` says whether one more retry may be spent."""

    name = "budget"
    seam = Seam.ATTEMPT

    def __init__(self, allow: int | None) -> None:
        self.allow = allow
        self.asked: list[float] = []
        self.spend = self.spend_one

    def spend_one(self, now: float) -> bool:
        self.asked.append(now)
        if self.allow is None:
            raise RuntimeError("the budget's store is down")
        self.allow -= 1
        return self.allow >= 0


def always_down(x: int) -> int:
    raise ConnectionError("down")


def test_the_retry_budget_is_asked_before_every_retry(clock: FakeClock) -> None:
    budget = Budget(allow=1)
    model = model_of(engine_with(always_down, [budget], retry=pw.Retry(attempts=5), fallback=pw.Constant(0)))
    p = model.predict_detailed(1)
    assert (p.value, p.attempts) == (0, 2)  # one retry allowed, then straight to the fallback
    assert len(budget.asked) == 2


def test_a_budget_that_raises_lets_the_retry_go_ahead_and_is_counted(clock: FakeClock) -> None:
    budget = Budget(allow=None)
    model = model_of(engine_with(always_down, [budget], retry=pw.Retry(attempts=3), fallback=pw.Constant(0)))
    p = model.predict_detailed(1)
    assert p.attempts == 3
    assert model.stats().observer_errors == 2


class Abandoning(Stage):
    """Attempt seam: notes the job of an attempt its caller gave up on."""

    name = "abandoning"
    seam = Seam.ATTEMPT

    def __init__(self) -> None:
        self.ended = threading.Event()
        self.jobs: list[Any] = []
        self.fast_admit = lambda value, args, kwargs: True
        self.fast_attempt = lambda seconds: None

    def after_attempt(self, call: CallRecord, target: Target, error: Exception | None, seconds: float) -> None:
        if call.late is not None:
            self.jobs.append(call.late)
            call.late.then(self.ended.set)


@pytest.mark.parametrize("path", ["fast", "walk", "async"])
async def test_an_abandoned_attempt_tells_when_its_thread_really_ends(path: str) -> None:
    stage, release = Abandoning(), threading.Event()

    def stuck(x: int) -> int:
        release.wait(10)
        return x

    engine = engine_with(stuck, [stage], timeout=0.01, fallback=pw.Constant(-1))
    model = model_of(engine)
    if path == "fast":
        assert engine.fast is not None
        assert model(1) == -1
    elif path == "walk":
        assert model.predict_detailed(1).value == -1
    else:
        assert await model.apredict(1) == -1
    assert len(stage.jobs) == 1
    assert not stage.ended.is_set()  # the caller moved on; the thread still runs
    release.set()
    assert stage.ended.wait(5)
    stage.jobs[0].then(lambda: stage.jobs.append("at once"))  # ended already: runs now
    assert stage.jobs[-1] == "at once"


class Hitting(Stage):
    """Admission on the success path: serves even inputs at once, as a cache hit."""

    name = "hitting"
    seam = Seam.ADMISSION

    def __init__(self) -> None:
        self.fast_admit = lambda value, args, kwargs: (
            Serve(f"hit {value}", "cached", "cache") if value % 2 == 0 else True
        )

    def admit(self, call: CallRecord, value: Any) -> Any:
        return None


@pytest.mark.parametrize("fn", [double, adouble], ids=["sync", "async"])
async def test_a_fast_admit_may_serve_the_call_on_the_success_path(fn: Any) -> None:
    seen: list[Any] = []
    engine = engine_with(fn, [Hitting(), Observers((seen.append,))])
    assert engine.fast is not None
    model = model_of(engine)
    results = [model(x) for x in (2, 3)]
    results = [await r if asyncio.iscoroutine(r) else r for r in results]
    assert results == ["hit 2", 6]
    assert [(p.outcome, p.served_by, p.value) for p in seen] == [("cached", "cache", "hit 2"), ("ok", "primary", 6)]


def test_fast_done_runs_after_a_success_without_a_clock_read(clock: FakeClock) -> None:
    class Done(Stage):
        name = "done"
        seam = Seam.ATTEMPT

        def __init__(self) -> None:
            self.done: list[str] = []
            self.fast_admit = lambda value, args, kwargs: True
            self.fast_done = lambda: self.done.append("fast")

        def after_attempt(self, call: CallRecord, target: Target, error: Exception | None, seconds: float) -> None:
            self.done.append("walk")

    stage = Done()
    engine = engine_with(double, [stage])
    assert engine.fast is not None and engine.fast.done and not engine.fast.attempted
    model = model_of(engine)
    assert model(2) == 4 and model.predict_detailed(3).value == 6
    assert stage.done == ["fast", "walk"]


@pytest.mark.parametrize("is_async", [False, True])
def test_an_attempt_left_no_time_by_admission_says_so(is_async: bool, clock: FakeClock) -> None:
    """A cache's key that takes longer than ``Timeout(total=)`` (admission counts toward the
    deadline): the first attempt fails at once, its error saying no time was left, not that
    it ran out of it."""

    def slow_key(x: int) -> int:
        clock.advance(0.3)
        return x

    async def adouble(x: int) -> int:
        return 2 * x

    model = pw.ProductionModel(
        adouble if is_async else (lambda x: 2 * x),
        cache=pw.Cache(key=slow_key),
        timeout=pw.Timeout(total=0.2),
        fallback=pw.Constant(-1),
        telemetry=False,
    )
    p = asyncio.run(model.apredict_detailed(1)) if is_async else model.predict_detailed(1)
    assert (p.value, p.outcome) == (-1, "fallback")
    (error,) = p.errors
    assert isinstance(error, pw.PredictionTimeout) and error.timeout == 0.0
    assert "no time was left for primary attempt 1: the deadline had passed" in str(error)
