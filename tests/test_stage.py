"""The seam: a stage and an observer defined only here plug into every path, unchanged drivers."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import prodwrap as pw
from prodwrap._compile import compile_engine
from prodwrap._context import within_deadline
from prodwrap._engine import Engine, Target
from prodwrap._record import CallRecord, Prediction
from prodwrap._stage import Refuse, Seam, Serve, Stage
from prodwrap.testing import FakeClock


def within(seconds_left: float) -> Any:
    """Run as though called from a caller's attempt with a generous deadline (the walk)."""
    import time

    return within_deadline(time.monotonic() + 60 + seconds_left)


class Refusals(Stage):
    """Admission: refuses negative inputs, serves 0 from a 'cache'."""

    name = "refusals"
    seam = Seam.ADMISSION

    def __init__(self) -> None:
        self.fast_admit = lambda value, args, kwargs: value > 0  # the success path takes positive inputs only

    def admit(self, call: CallRecord, value: Any) -> Serve | Refuse | None:
        if value == 0:
            return Serve("cached-zero", "cached", "cache")
        if value < 0:
            return Refuse(ValueError("negative"), "refused")
        return None


class Timing(Stage):
    """Attempt seam: records every attempt's outcome and duration."""

    name = "timing"
    seam = Seam.ATTEMPT

    def __init__(self) -> None:
        self.fast_seconds: list[float] = []
        self.general: list[tuple[str, str | None, float]] = []
        self.fast_attempt = self.fast_seconds.append

    def after_attempt(self, call: CallRecord, target: Target, error: Exception | None, seconds: float) -> None:
        self.general.append((target.name, None if error is None else type(error).__name__, seconds))


class Seen(Stage):
    """Observer: what the success path hands it, and every record on the general path."""

    name = "seen"
    seam = Seam.OBSERVER

    def __init__(self) -> None:
        self.fast_values: list[tuple[Any, Any]] = []
        self.records: list[tuple[str, str, Any]] = []
        self.fast_observe = lambda value, out: self.fast_values.append((value, out))

    def observe(self, call: CallRecord) -> None:
        self.records.append((call.outcome, call.served_by, call.value))


def engine_with(fn: Any, stages: list[Stage], **options: Any) -> Engine:
    model = pw.ProductionModel(fn, **options)
    plain = compile_engine(fn, model._settings)
    return Engine(
        fn=fn,
        name=plain.name,
        validate_input=plain.validate_input,
        validate_output=plain.validate_output,
        retry=plain.retry,
        fallbacks=plain.fallbacks,
        stages=stages,
    )


def flaky(x: int) -> int:
    if x == 13:
        raise ConnectionError("unlucky")
    return x * 2


async def aflaky(x: int) -> int:
    await asyncio.sleep(0)
    return flaky(x)


@pytest.mark.parametrize("fn", [flaky, aflaky], ids=["sync", "async"])
async def test_a_test_only_stage_runs_on_fast_and_general_paths(fn: Any, clock: FakeClock) -> None:
    refusals, timing, seen = Refusals(), Timing(), Seen()
    engine = engine_with(fn, [refusals, timing, seen], retry=pw.Retry(attempts=2), fallback=pw.Constant(-1))
    model = pw.ProductionModel(fn)
    model._swap(engine)

    async def call(x: int) -> Any:
        return model(x) if not engine.is_async else await model(x)

    assert engine.fast is not None  # every stage has its success-path hooks
    assert await call(3) == 6  # success path
    assert timing.fast_seconds == [0.0] and seen.fast_values == [(3, 6)] and seen.records == []
    assert await call(0) == "cached-zero"  # admission serves (general path)
    assert await call(-5) == -1  # admission refuses: the fallback serves, no attempt made
    assert await call(13) == -1  # two failed attempts (retried), then the fallback
    assert [r[:2] for r in seen.records] == [("cached", "cache"), ("fallback", "constant"), ("fallback", "constant")]
    assert [(name, err) for name, err, _ in timing.general] == [("primary", "ConnectionError")] * 2
    stats = model.stats()
    assert stats.calls == 4
    assert stats.outcomes == {"cached": 1, "fallback": 2, "ok": 1}
    assert stats.failures == {"exception": 2, "refused": 1}


def test_a_final_refusal_reaches_the_caller_past_the_fallbacks() -> None:
    class Final(Stage):
        name = "final"
        seam = Seam.ADMISSION

        def admit(self, call: CallRecord, value: Any) -> Refuse | None:
            return Refuse(ValueError("no"), "refused", final=value < 0) if value <= 0 else None

    engine = engine_with(lambda x: x, [Final()], retry=pw.Retry(attempts=3), fallback=pw.Constant(-1))
    model = pw.ProductionModel(lambda x: x)
    model._swap(engine)
    assert model(0) == -1  # refused: the fallbacks serve
    with pytest.raises(ValueError, match="no"):
        model(-1)  # refused for good: no retry, no fallback
    stats = model.stats()
    assert stats.outcomes == {"fallback": 1, "error": 1} and stats.failures == {"refused": 2}


def test_a_stage_can_keep_every_call_off_the_success_path() -> None:
    class Everywhere(Seen):
        fast = False

    seen = Everywhere()
    engine = engine_with(lambda x: x, [seen])
    assert engine.fast is None
    model = pw.ProductionModel(lambda x: x)
    model._swap(engine)
    assert model(5) == 5
    assert seen.records == [("ok", "primary", 5)] and seen.fast_values == []


def test_observer_without_a_success_hook_gets_a_record_on_the_success_path() -> None:
    class RecordsOnly(Stage):
        name = "records"

        def __init__(self) -> None:
            self.records: list[tuple[Any, Any, int]] = []

        def observe(self, call: CallRecord) -> None:
            self.records.append((call.input, call.value, call.attempts))

    stage = RecordsOnly()
    model = pw.ProductionModel(lambda x: x + 1)
    model._swap(engine_with(lambda x: x + 1, [stage]))
    assert model(1) == 2
    assert stage.records == [(1, 2, 1)]


def test_engine_swap_mid_traffic_under_16_threads() -> None:
    """Calls that began on the old engine end on it; calls after the swap use the new one."""
    threads, per_thread = 16, 300
    model = pw.ProductionModel(lambda x: ("old", x))
    new = compile_engine(lambda x: ("new", x), model._settings)
    halfway = threading.Barrier(threads + 1)
    swapped = threading.Event()
    results: list[list[tuple[str, int]]] = [[] for _ in range(threads)]

    def worker(t: int) -> None:
        for i in range(per_thread):
            if i == per_thread // 2:
                halfway.wait()
                swapped.wait()
            results[t].append(model(i))

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    halfway.wait()  # every thread is half-way: swap while they wait to go on
    model._swap(new)
    swapped.set()
    for th in pool:
        th.join()
    half = per_thread // 2
    for out in results:
        assert out == [("old", i) for i in range(half)] + [("new", i) for i in range(half, per_thread)]
    assert model.stats().calls == threads * (per_thread - half)  # the new engine counts its own calls


def test_prediction_seen_by_keepers_is_built_once() -> None:
    kept: list[Prediction] = []

    class Keeper(Stage):
        name = "keeper"
        needs_prediction = True

        def keep(self, prediction: Prediction) -> None:
            kept.append(prediction)

    user: list[Prediction] = []
    model = pw.ProductionModel(lambda x: x, observers=[user.append])
    engine = model._engine
    model._swap(
        Engine(fn=lambda x: x, name=engine.name, stages=[Keeper(), *engine.stages]),
    )
    p = model.predict_detailed(1)
    assert kept == [p] and user == [p] and kept[0] is p is user[0]


# -- what a future stage relies on -------------------------------------------------------------


class Permits(Stage):
    """Attempt seam, bulkhead-like: a permit per attempt, refused when none is left."""

    name = "permits"
    seam = Seam.ATTEMPT

    def __init__(self, permits: int) -> None:
        self.left = permits
        self.log: list[str] = []

    def before_attempt(self, call: CallRecord, target: Target) -> Exception | None:
        if self.left == 0:
            return pw.BulkheadFullError("no permit")
        self.left -= 1
        self.log.append("acquire")
        return None

    def after_attempt(self, call: CallRecord, target: Target, error: Exception | None, seconds: float) -> None:
        self.left += 1
        self.log.append("release" if error is None else f"release after {type(error).__name__}")


def test_a_stage_that_may_refuse_attempts_pairs_every_release_with_an_acquire(clock: FakeClock) -> None:
    permits = Permits(1)
    engine = engine_with(flaky, [permits], retry=pw.Retry(attempts=2), fallback=pw.Constant(-1))
    assert engine.fast is None  # no success-path hook can refuse: the walk takes every call
    model = pw.ProductionModel(flaky)
    model._swap(engine)
    assert model(2) == 4 and model(13) == -1
    assert permits.log == ["acquire", "release", "acquire", "release after ConnectionError"] * 1 + [
        "acquire",
        "release after ConnectionError",
    ]
    assert permits.left == 1
    permits.left = 0  # now every attempt is refused: no attempt is made, the fallback serves
    p = model.predict_detailed(2)
    assert (p.value, p.outcome, p.attempts) == (-1, "fallback", 0)
    assert model.stats().failures["bulkhead_full"] == 1


def test_an_invalid_output_reaches_the_attempt_seam_as_a_failure_on_both_paths() -> None:
    timing = Timing()
    engine = engine_with(lambda x: -x, [timing], output=pw.ArraySpec(), check=lambda v: v > 0, fallback=pw.Constant(1))
    model = pw.ProductionModel(lambda x: -x)
    model._swap(engine)
    assert model(3) == 1  # the success path: the first attempt's output fails check=
    model._swap(
        Engine(
            fn=lambda x: -x,
            name="m",
            validate_output=engine.validate_output,
            fallbacks=engine.fallbacks,
            stages=[timing],
            retry=pw.Retry(attempts=1),
        )
    )
    with within(0.0):
        assert model(3) == 1  # the general path (under a caller's deadline)
    assert [(name, err) for name, err, _ in timing.general] == [("primary", "OutputValidationError")] * 2


def test_a_routed_target_keeps_its_retries_and_serves_as_itself(clock: FakeClock) -> None:
    from prodwrap._stage import Route
    from prodwrap._target import Kind

    tried: list[str] = []

    def candidate(x: int) -> str:
        tried.append("candidate")
        if len(tried) == 1:
            raise ConnectionError("once")
        return "C"

    target = Target(candidate, Kind.SYNC, "candidate", True)

    class Canary(Stage):
        name = "canary"
        seam = Seam.ADMISSION

        def admit(self, call: CallRecord, value: Any) -> Route:
            return Route(target)

    model = pw.ProductionModel(lambda x: "P")
    model._swap(Engine(fn=lambda x: "P", name="m", retry=pw.Retry(attempts=2), stages=[Canary()]))
    p = model.predict_detailed(1)
    assert (p.value, p.served_by, p.attempts) == ("C", "candidate", 2) and tried == ["candidate"] * 2


def test_a_fast_admit_that_says_no_hands_over_without_validating_again() -> None:
    validated: list[Any] = []
    looked_up: list[Any] = []

    def validate(x: Any) -> int:
        validated.append(x)
        return int(x)

    class Cache(Stage):
        name = "cache"
        seam = Seam.ADMISSION

        def __init__(self) -> None:
            self.fast_admit = lambda value, args, kwargs: value != 0  # a hit would be served by admit()

        def admit(self, call: CallRecord, value: Any) -> Serve | None:
            looked_up.append(value)
            return Serve("hit", "cached", "cache") if value == 0 else None

    model = pw.ProductionModel(lambda x: x)
    model._swap(Engine(fn=lambda x: x, name="m", validate_input=validate, stages=[Cache()]))
    assert model("0") == "hit" and model("5") == 5
    assert validated == ["0", "5"] and looked_up == [0]


def test_a_raising_hook_or_validator_still_ends_the_call_at_the_finish_point() -> None:
    seen = Seen()

    class Broken(Stage):
        name = "broken"
        seam = Seam.ADMISSION

        def admit(self, call: CallRecord, value: Any) -> None:
            raise RuntimeError("stage bug")

    def validator(x: Any) -> Any:
        raise KeyError("validator bug")  # not a validation error: a bug in the spec's code

    for stages, validate, error in (([Broken(), seen], None, RuntimeError), ([seen], validator, KeyError)):
        model = pw.ProductionModel(lambda x: x)
        model._swap(Engine(fn=lambda x: x, name="m", validate_input=validate, stages=stages))
        with pytest.raises(error):
            model(1)
        stats = model.stats()
        assert (stats.calls, stats.outcomes, stats.failures) == (1, {"error": 1}, {"exception": 1})
    assert [r[0] for r in seen.records] == ["error", "error"]


def test_a_raising_success_hook_of_an_attempt_stage_costs_no_output() -> None:
    class Broken(Stage):
        name = "broken"
        seam = Seam.ATTEMPT

        def __init__(self) -> None:
            self.fast_attempt = lambda seconds: 1 / 0

    model = pw.ProductionModel(lambda x: x)
    model._swap(Engine(fn=lambda x: x, name="m", stages=[Broken()]))
    assert model(7) == 7 and model.stats().observer_errors == 1


def test_the_success_path_record_is_whole_and_fast_only_observers_hear_it() -> None:
    records: list[tuple[Any, ...]] = []
    fast_only: list[tuple[Any, Any]] = []

    class ReadsRecord(Stage):
        name = "reads"

        def observe(self, call: CallRecord) -> None:
            records.append((call.target.name, call.ok, call.result, call.input, call.attempts))

    class FastOnly(Stage):
        name = "fast-only"

        def __init__(self) -> None:
            self.fast_observe = lambda value, out: fast_only.append((value, out))

    model = pw.ProductionModel(lambda x: x * 2)
    model._swap(Engine(fn=lambda x: x * 2, name="m", stages=[ReadsRecord(), FastOnly()]))
    assert model(4) == 8
    assert records == [("primary", True, 8, 4, 1)] and fast_only == [(4, 8)]


async def test_a_call_cancelled_while_a_later_attempt_stage_pauses_undoes_the_earlier_ones() -> None:
    from prodwrap._stage import Pause

    log: list[str] = []

    class Taker(Stage):
        name = "taker"
        seam = Seam.ATTEMPT

        def before_attempt(self, call: CallRecord, target: Target) -> None:
            log.append("take")

        def undo_attempt(self, call: CallRecord, target: Target) -> None:
            log.append("undo")

    class Pauser(Stage):
        name = "pauser"
        seam = Seam.ATTEMPT

        def before_attempt(self, call: CallRecord, target: Target) -> Pause:
            log.append("pause")
            return Pause(60.0)

    async def predict(x: int) -> int:
        return x

    model = pw.ProductionModel(predict)
    model._swap(Engine(fn=predict, name="m", stages=[Taker(), Pauser()]))
    task = asyncio.create_task(model.apredict(1))
    while "pause" not in log:
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert log == ["take", "pause", "undo"]


def test_each_attempt_starts_with_no_abandoned_job_on_the_record(clock: FakeClock) -> None:
    """``call.late`` is the current attempt's abandoned job, never an earlier attempt's."""
    release = threading.Event()
    seen: list[bool] = []

    class Looks(Stage):
        name = "looks"
        seam = Seam.ATTEMPT

        def before_attempt(self, call: CallRecord, target: Target) -> None:
            seen.append(call.late is None)

    def predict(x: int) -> int:
        release.wait(10.0)
        return x

    model = pw.ProductionModel(predict)
    model._swap(
        Engine(fn=predict, name="m", stages=[Looks()], timeout=pw.Timeout(attempt=0.01), retry=pw.Retry(attempts=2))
    )
    with pytest.raises(pw.PredictionTimeout):
        model.predict_detailed(1)
    release.set()
    assert seen == [True, True]


def test_a_stage_counting_the_success_at_admission_needs_no_fast_attempt() -> None:
    class Counting(Stage):
        """Attempt seam: counts successes as they are admitted, hears failures on the walk."""

        name = "counting"
        seam = Seam.ATTEMPT
        success_at_admit = True

        def __init__(self) -> None:
            self.admitted = 0
            self.failures: list[str | None] = []
            self.fast_admit = self.count

        def count(self, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
            self.admitted += 1
            return True

        def after_attempt(self, call: CallRecord, target: Target, error: Exception | None, seconds: float) -> None:
            self.failures.append(None if error is None else type(error).__name__)

    stage = Counting()
    engine = engine_with(flaky, [stage])
    assert engine.fast is not None and engine.fast.attempted == ()  # no clock read for it either
    model = pw.ProductionModel(flaky)
    model._swap(engine)
    assert model(3) == 6
    with pytest.raises(ConnectionError):
        model(13)  # the first attempt fails on the success path: the walk tells the stage
    assert stage.admitted == 2 and stage.failures == ["ConnectionError"]

    class Timing(Counting):
        success_at_admit = False  # it needs fast_attempt then: every call takes the walk

    assert engine_with(flaky, [Timing()]).fast is None


class PricedAtFinish(Stage):
    """An attempt stage whose success-path attempt an observer of its own accounts for."""

    name = "priced"
    seam = Seam.ATTEMPT
    success_at_finish = True

    def after_attempt(self, call: CallRecord, target: Target, error: Exception | None, seconds: float) -> None:
        pass


def test_success_at_finish_keeps_the_success_path_for_an_attempt_stage() -> None:
    kept = Engine(fn=lambda x: x, name="m", stages=[PricedAtFinish()])
    assert kept.fast is not None and not kept.fast.hooked  # no clock read, no record for it
    unmarked = PricedAtFinish()
    unmarked.success_at_finish = False
    assert Engine(fn=lambda x: x, name="m", stages=[unmarked]).fast is None
