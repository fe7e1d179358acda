"""The seam: a stage and an observer defined only here plug into every path, unchanged drivers."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import prodwrap as pw
from prodwrap._engine import Engine, Target
from prodwrap._model import compile_engine
from prodwrap._record import CallRecord, Prediction
from prodwrap._stage import Refuse, Seam, Serve, Stage
from prodwrap.testing import FakeClock


class Refusals(Stage):
    """Admission: refuses negative inputs, serves 0 from a 'cache'."""

    name = "refusals"
    seam = Seam.ADMISSION

    def __init__(self) -> None:
        self.fast_admit = lambda value: value > 0  # the success path takes positive inputs only

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
