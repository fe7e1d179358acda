"""The circuit breaker through whole models: DESIGN §3 "Circuit breaker", sync and async,
on a fake clock (an attempt's duration is what the predict advances the clock by)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

import pytest

import prodwrap as pw
from prodwrap.policies._breaker import BreakerStage
from prodwrap.policies.circuit import Transition
from prodwrap.state import MemoryStore
from prodwrap.testing import FakeClock

SLOW = 5.0  # seconds a "slow" input takes


class Dependency:
    """A predict whose input says how the attempt goes: "ok", "fail", "slow" (ok after
    SLOW seconds), "slow-fail" (fails after SLOW seconds), "bad" (an invalid output)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls = 0

    def __call__(self, x: str) -> str:
        self.calls += 1
        if x.startswith("slow"):
            self.clock.advance(SLOW)
        if x.endswith("fail"):
            raise ConnectionError(f"down ({x})")
        return "bad" if x == "bad" else f"ok:{x}"


class AsyncDependency(Dependency):
    async def __call__(self, x: str) -> str:  # type: ignore[override]
        await asyncio.sleep(0)
        return Dependency.__call__(self, x)


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make(
    clock: FakeClock, flavour: str = "sync", **options: Any
) -> tuple[pw.ProductionModel[Any, Any, Any], Dependency]:
    dep = AsyncDependency(clock) if flavour == "async" else Dependency(clock)
    breaker = options.pop("breaker", {})
    policy = pw.CircuitBreaker(**{"window": 4, "open_for": 10.0, "half_open_calls": 2, **breaker})
    return pw.ProductionModel(dep, name="dep", circuit=policy, **options), dep


async def call(model: pw.ProductionModel[Any, Any, Any], x: str) -> Any:
    """The model's output, or the exception it raised (awaited for an async model)."""
    try:
        out = model(x)
        return await out if model.is_async else out
    except Exception as exc:
        return exc


async def calls(model: pw.ProductionModel[Any, Any, Any], *xs: str) -> list[Any]:
    return [await call(model, x) for x in xs]


def stage_of(model: pw.ProductionModel[Any, Any, Any]) -> BreakerStage:
    return next(s for s in model._engine.stages if isinstance(s, BreakerStage))


# -- closed -> open ----------------------------------------------------------------------------


async def test_opens_at_a_failure_rate_equal_to_the_threshold_once_min_calls_are_in(
    clock: FakeClock, flavour: str
) -> None:
    model, dep = make(clock, flavour, breaker={"window": 4, "failure_rate": 0.5})
    assert model._engine.fast is not None  # the breaker keeps the compiled success path
    await calls(model, "fail", "ok", "fail")
    assert model.circuit is not None and model.circuit.state == "closed"  # 3 < min_calls (= window)
    await calls(model, "ok")  # 2 of 4 = 0.5 >= 0.5: a success can open it, as the window fills
    assert model.circuit.state == "open"
    seen = dep.calls
    refused = await call(model, "ok")
    assert isinstance(refused, pw.CircuitOpenError) and dep.calls == seen  # the predict is not called
    stats = model.stats()
    assert stats.circuit.trips == 1 and stats.circuit.refused == 1 and stats.failures["circuit_open"] == 1


async def test_no_verdict_below_min_calls_then_the_window_slides(clock: FakeClock) -> None:
    model, _ = make(clock, breaker={"window": 4, "min_calls": 3, "failure_rate": 0.75})
    await calls(model, "fail", "fail")
    assert model.circuit is not None and model.circuit.state == "closed"  # 100 %, but 2 < min_calls
    await calls(model, "ok", "ok")  # 2 of 3, then 2 of 4
    await calls(model, "fail", "fail")  # each drops the oldest failure out: [ok ok fail fail]
    assert model.circuit.state == "closed" and model.stats().circuit.failure_rate == 0.5
    await calls(model, "fail")  # an ok drops out: [ok fail fail fail], 3 of 4 = 0.75
    assert model.circuit.state == "open"


async def test_min_calls_is_clamped_to_the_window(clock: FakeClock) -> None:
    assert pw.CircuitBreaker(window=3, min_calls=50).min_calls == 3
    assert pw.CircuitBreaker(window=7).min_calls == 7  # None: the window's size (resilience4j's default)
    model, _ = make(clock, breaker={"window": 3, "min_calls": 50})
    await calls(model, "fail", "fail", "fail")
    assert model.circuit is not None and model.circuit.state == "open"


async def test_slow_calls_trip_it_and_a_slow_failure_counts_in_both_rates(clock: FakeClock, flavour: str) -> None:
    breaker = {"window": 4, "failure_rate": 1.0, "slow_call_rate": 0.5, "slow_call": SLOW}
    model, _ = make(clock, flavour, breaker=breaker)
    assert model._engine.fast is not None and not stage_of(model).success_at_admit  # it times the attempt
    await calls(model, "slow", "slow", "ok", "ok")  # exactly SLOW seconds is not slower than slow_call
    assert model.circuit is not None and model.circuit.state == "closed"
    model, _ = make(clock, flavour, breaker={**breaker, "slow_call": SLOW - 0.5})
    await calls(model, "slow", "ok", "ok")
    assert model.circuit is not None and model.circuit.state == "closed"
    await calls(model, "slow-fail")  # 2 of 4 slow: opens; the slow failure is a failure too
    assert model.circuit.state == "open"


async def test_every_attempt_counts_retries_included(clock: FakeClock) -> None:
    model, dep = make(clock, retry=pw.Retry(attempts=4, on=ConnectionError), breaker={"window": 3})
    refused = await call(model, "fail")
    # three failed attempts open it; the fourth is refused, and an open circuit is never retried
    assert isinstance(refused, pw.CircuitOpenError) and dep.calls == 3
    assert model.stats().failures == {"circuit_open": 1, "exception": 3}
    assert (await call(model, "ok")) is not None and dep.calls == 3


# -- open -> half-open -> closed or open --------------------------------------------------------


async def test_half_open_once_open_for_has_fully_passed_and_state_says_so_on_read(clock: FakeClock) -> None:
    model, _ = make(clock, breaker={"open_for": 10.0})
    assert model.circuit is not None
    model.circuit.open()
    model.circuit.close()
    await calls(model, *["fail"] * 4)
    clock.advance(9.99)
    assert model.circuit.state == "open"
    clock.advance(30.01)
    assert model.circuit.state == "half_open"  # no call needed: the state is read
    assert model.stats().circuit.time_open == pytest.approx(10.0)  # half-open since open_for ended


async def test_exactly_half_open_calls_probes_then_closed_with_an_empty_window(clock: FakeClock, flavour: str) -> None:
    model, dep = make(clock, flavour, breaker={"half_open_calls": 3, "failure_rate": 0.5})
    assert model.circuit is not None
    await calls(model, *["fail"] * 4)
    clock.advance(10.0)
    served, failed = await calls(model, "ok", "fail")
    assert served == "ok:ok" and isinstance(failed, ConnectionError)
    assert model.circuit.state == "half_open"  # 2 of 3 probes in: no verdict yet
    await calls(model, "ok")  # 1 failure of 3 < 0.5: closed
    assert model.circuit.state == "closed"
    stats = model.stats().circuit
    assert stats.calls == 0 and stats.probes == 3 and stats.trips == 1  # an empty window
    await calls(model, "fail", "fail", "fail")  # the probes' failure is not in the new window
    assert model.circuit.state == "closed"
    await calls(model, "fail")
    assert model.circuit.state == "open" and dep.calls == 4 + 3 + 4


async def test_failed_probes_open_it_again_for_another_open_for(clock: FakeClock, flavour: str) -> None:
    model, dep = make(clock, flavour, breaker={"half_open_calls": 2})
    assert model.circuit is not None
    await calls(model, *["fail"] * 4)
    clock.advance(10.0)
    await calls(model, "ok", "fail")  # 1 of 2 = 0.5 >= 0.5
    assert model.circuit.state == "open"
    clock.advance(9.0)
    assert isinstance(await call(model, "ok"), pw.CircuitOpenError)
    clock.advance(1.0)
    await calls(model, "ok", "ok")
    assert model.circuit.state == "closed" and model.stats().circuit.trips == 2
    assert dep.calls == 4 + 2 + 2  # the refused call never reached the dependency


async def test_calls_beyond_the_probes_are_refused_while_probes_are_out(clock: FakeClock) -> None:
    model, _ = make(clock, breaker={"half_open_calls": 2})
    stage = stage_of(model)
    assert model.circuit is not None
    model.circuit.open()
    model.circuit.close()
    await calls(model, *["fail"] * 4)
    clock.advance(10.0)
    rec1, rec2, rec3 = (pw_record() for _ in range(3))
    primary = model._engine.primary
    assert stage.before_attempt(rec1, primary) is None and stage.before_attempt(rec2, primary) is None
    assert isinstance(stage.before_attempt(rec3, primary), pw.CircuitOpenError)
    stage.after_attempt(rec1, primary, None, 0.0)
    assert model.circuit.state == "half_open"  # the verdict waits for every probe
    stage.after_attempt(rec2, primary, None, 0.0)
    assert model.circuit.state == "closed"


def pw_record() -> Any:
    from prodwrap._record import CallRecord

    return CallRecord(0.0)


def test_concurrent_callers_in_half_open_never_exceed_the_probes(clock: FakeClock) -> None:
    threads, probes = 16, 3
    entered = threading.Semaphore(0)
    release = threading.Event()
    inside = []

    def predict(x: str) -> str:
        if x == "fail":
            raise ConnectionError
        inside.append(x)
        entered.release()
        assert release.wait(10)
        return x

    model = pw.ProductionModel(predict, circuit=pw.CircuitBreaker(window=2, half_open_calls=probes, open_for=1.0))
    assert model.circuit is not None
    for _ in range(2):
        with pytest.raises(ConnectionError):
            model("fail")
    clock.advance(1.0)
    start = threading.Barrier(threads)
    done = threading.Semaphore(0)
    results: list[Any] = []

    def caller() -> None:
        start.wait()
        try:
            results.append(model("probe"))
        except pw.CircuitOpenError as exc:
            results.append(exc)
        done.release()

    pool = [threading.Thread(target=caller) for _ in range(threads)]
    for th in pool:
        th.start()
    for _ in range(probes):
        assert entered.acquire(timeout=10)  # the probes are inside the predict, held there
    for _ in range(threads - probes):
        assert done.acquire(timeout=10)  # every other caller was refused meanwhile
    assert len(inside) == probes
    release.set()
    for th in pool:
        th.join(10)
    assert results.count("probe") == probes and len(results) == threads
    assert model.circuit.state == "closed"
    stats = model.stats().circuit
    assert stats.probes == probes and stats.refused == threads - probes


async def test_a_probe_cancelled_mid_attempt_gives_its_slot_back(clock: FakeClock) -> None:
    entered, gate = asyncio.Event(), asyncio.Event()

    async def predict(x: str) -> str:
        if x == "fail":
            raise ConnectionError
        entered.set()
        await gate.wait()
        return x

    model = pw.ProductionModel(predict, circuit=pw.CircuitBreaker(window=1, half_open_calls=1, open_for=1.0))
    assert model.circuit is not None
    with pytest.raises(ConnectionError):
        await model("fail")
    clock.advance(1.0)
    task = asyncio.ensure_future(model("probe"))
    await entered.wait()
    with pytest.raises(pw.CircuitOpenError):
        await model("other")  # the one probe is out
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    gate.set()
    assert await model("probe") == "probe"  # the cancelled probe's slot was given back
    assert model.circuit.state == "closed"


# -- what counts -------------------------------------------------------------------------------


async def test_record_types_decide_what_counts_and_the_rest_still_reach_the_caller(
    clock: FakeClock, flavour: str
) -> None:
    model, _ = make(clock, flavour, breaker={"window": 2, "record": (TimeoutError,)})
    outcomes = await calls(model, "fail", "fail", "fail")
    assert all(isinstance(o, ConnectionError) for o in outcomes)  # counted as successes, raised as they were
    assert model.circuit is not None and model.circuit.state == "closed"


async def test_a_record_predicate_decides_and_one_that_raises_counts_as_failure(clock: FakeClock) -> None:
    model, _ = make(clock, breaker={"window": 2, "record": lambda exc: "slow" in str(exc)})
    await calls(model, "fail", "fail")
    assert model.circuit is not None and model.circuit.state == "closed"
    await calls(model, "slow-fail", "slow-fail")
    assert model.circuit.state == "open"

    def broken(exc: BaseException) -> bool:
        raise RuntimeError("predicate bug")

    model, _ = make(clock, breaker={"window": 2, "record": broken})
    await calls(model, "fail", "fail")
    assert model.circuit is not None and model.circuit.state == "open"
    assert model.stats().circuit.faults == 2


async def test_invalid_inputs_never_count_and_invalid_outputs_do(clock: FakeClock) -> None:
    dep = Dependency(clock)
    model = pw.ProductionModel(dep, input=str, check=lambda out: out != "bad", circuit=pw.CircuitBreaker(window=2))
    for _ in range(10):
        with pytest.raises(pw.InputValidationError):
            model(42)  # type: ignore[arg-type]
    assert model.circuit is not None and model.circuit.state == "closed" and model.stats().circuit.calls == 0
    await calls(model, "bad", "bad")  # an invalid output is a failed attempt
    assert model.circuit.state == "open"


async def test_timeouts_count_as_failures() -> None:
    async def hang(x: str) -> str:
        await asyncio.sleep(60)
        return x

    model = pw.ProductionModel(hang, timeout=0.01, circuit=pw.CircuitBreaker(window=2))
    for _ in range(2):
        with pytest.raises(pw.PredictionTimeout):
            await model("x")
    assert model.circuit is not None and model.circuit.state == "open"


async def test_fallbacks_are_outside_the_breaker_and_serve_while_it_is_open(clock: FakeClock, flavour: str) -> None:
    fallback_calls = []

    def failing_fallback(x: str) -> str:
        fallback_calls.append(x)
        raise ConnectionError("fallback down too")

    model, dep = make(clock, flavour, fallback=[failing_fallback, pw.Constant("safe")])
    assert await calls(model, *["fail"] * 4) == ["safe"] * 4
    assert model.circuit is not None and model.circuit.state == "open"  # the fallback's failures did not count
    assert await calls(model, "ok", "ok") == ["safe", "safe"] and dep.calls == 4
    assert len(fallback_calls) == 6  # the fallbacks are still tried while open
    stats = model.stats()
    assert stats.failures["circuit_open"] == 2 and stats.outcomes == {"fallback": 6}
    clock.advance(10.0)
    assert await calls(model, "ok", "ok") == ["ok:ok", "ok:ok"]  # recovered by itself
    assert model.circuit.state == "closed"


# -- manual control, stats, logs, listeners, store ---------------------------------------------


async def test_forced_open_stays_open_until_close_which_empties_the_window(clock: FakeClock) -> None:
    model, _ = make(clock, fallback=pw.Constant("safe"))
    assert model.circuit is not None
    await calls(model, "fail", "fail", "fail")
    model.circuit.open()
    clock.advance(1000.0)
    assert model.circuit.state == "open" and await call(model, "ok") == "safe"
    model.circuit.close()
    assert model.circuit.state == "closed" and model.stats().circuit.calls == 0
    await calls(model, "fail")  # the three failures before open() are gone
    assert model.circuit.state == "closed"
    assert model.stats().circuit.time_open == pytest.approx(1000.0)


def test_open_on_an_open_circuit_is_no_new_trip(clock: FakeClock) -> None:
    model = pw.ProductionModel(lambda x: x, circuit=pw.CircuitBreaker(window=2))
    assert model.circuit is not None
    moves: list[tuple[str, str]] = []
    model.circuit.listeners.append(lambda t: moves.append((t.from_state, t.to_state)))
    model.circuit.open()
    clock.advance(5.0)
    model.circuit.open()
    model.circuit.open()
    stats = model.stats().circuit
    assert stats is not None and (stats.trips, stats.time_open) == (1, pytest.approx(5.0))
    assert moves == [("closed", "open")]
    model.circuit.close()
    model.circuit.open()  # closed again, then open: a second trip
    assert model.stats().circuit.trips == 2 and moves[-2:] == [("open", "closed"), ("closed", "open")]


def test_a_window_past_the_limit_is_refused_naming_it_and_a_big_one_allocates_as_it_fills(clock: FakeClock) -> None:
    from prodwrap.policies.circuit import MAX_WINDOW

    with pytest.raises(pw.ConfigurationError, match=r"^CircuitBreaker\.window must be at most 10,000,000 attempts"):
        pw.CircuitBreaker(window=10**12)
    model = pw.ProductionModel(lambda x: x, circuit=pw.CircuitBreaker(window=MAX_WINDOW, min_calls=2))
    stage = next(s for s in model._engine.stages if s.section == "circuit")
    window = stage._window  # type: ignore[attr-defined]
    assert len(window.codes) == 0  # nothing allocated for the window's size
    for i in range(3):
        model(i)
    assert model.stats().circuit.calls == 3 and len(window.codes) == 3


def test_a_model_without_a_breaker_has_no_circuit() -> None:
    model = pw.ProductionModel(lambda x: x)
    assert model.circuit is None and model.stats().circuit is None


async def test_transitions_are_logged_at_info_and_handed_to_listeners(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    model, _ = make(clock, breaker={"half_open_calls": 1})
    assert model.circuit is not None
    seen: list[Transition] = []
    model.circuit.listeners.append(seen.append)
    model.circuit.listeners.append(lambda t: 1 / 0)  # a broken listener: counted, never raised
    with caplog.at_level(logging.INFO, logger="prodwrap.circuit"):
        await calls(model, *["fail"] * 4)
        clock.advance(10.0)
        await calls(model, "ok")
    moves = [(t.from_state, t.to_state, t.reason) for t in seen]
    assert moves == [
        ("closed", "open", "failure_rate"),
        ("open", "half_open", "open_for"),
        ("half_open", "closed", "probes_passed"),
    ]
    infos = [r for r in caplog.records if r.name == "prodwrap.circuit" and r.levelno == logging.INFO]
    assert [(r.model, getattr(r, "from"), r.to, r.reason) for r in infos] == [("dep", *m) for m in moves]  # type: ignore[attr-defined]
    assert model.stats().circuit.faults == 3


class BrokenStore(MemoryStore):
    def get(self, key: str) -> Any:
        raise OSError("store down")


async def test_a_failing_store_never_fails_the_call(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    model, dep = make(clock, breaker={"store": BrokenStore()})
    with caplog.at_level(logging.WARNING, logger="prodwrap.circuit"):
        assert await calls(model, "ok", "ok") == ["ok:ok", "ok:ok"]
        outcomes = await calls(model, *["fail"] * 5)
    assert all(isinstance(o, ConnectionError) for o in outcomes) and dep.calls == 7
    assert model.stats().circuit.faults > 0
    assert any("store down" in r.getMessage() for r in caplog.records)


def test_with_a_failing_store_the_state_reads_closed_and_steering_raises_a_prodwrap_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "prodwrap.circuit")
    model = pw.ProductionModel(lambda x: x, circuit=pw.CircuitBreaker(store=BrokenStore()))
    assert model(1) == 1
    faults = model.stats().circuit.faults
    # the state the breaker acts on: it steps aside and lets attempts through
    assert model.circuit.state == "closed" == model.stats().circuit.state
    assert "closed" in repr(model.circuit)
    assert model.stats().circuit.faults > faults
    for steer, verb in ((model.circuit.open, "open"), (model.circuit.close, "close")):
        with pytest.raises(pw.ProdwrapError, match=rf"circuit's store raised OSError: store down; {verb}\(\) was") as e:
            steer()
        assert isinstance(e.value.__cause__, OSError)
    assert "store down" in caplog.text


def test_the_state_lives_in_the_store_keyed_by_model() -> None:
    store = MemoryStore()
    policy = pw.CircuitBreaker(window=1, store=store)
    one = pw.ProductionModel(lambda x: x, name="shared", circuit=policy)
    two = pw.ProductionModel(lambda x: x, name="shared", circuit=policy)
    other = pw.ProductionModel(lambda x: x, name="other", circuit=policy)
    assert one.circuit is not None and two.circuit is not None and other.circuit is not None
    one.circuit.open()
    assert two.circuit.state == "open" and store.get("shared:circuit")[0] == "open"
    with pytest.raises(pw.CircuitOpenError):
        two(1)
    assert other(1) == 1
    two.circuit.close()
    assert one(1) == 1


def test_the_success_path_counts_lock_free_once_the_window_is_primed(clock: FakeClock) -> None:
    model = pw.ProductionModel(lambda x: x, circuit=pw.CircuitBreaker(window=3, failure_rate=0.5))
    assert model._engine.fast is not None
    for i in range(3):
        model(i)
    window = stage_of(model)._window
    assert window.primed
    for i in range(1000):
        model(i)
    assert window.n == 3 and window.drained < 1003  # pending: counted in when next read
    assert model.stats().circuit.calls == 3 and model.stats().circuit.failure_rate == 0.0


# -- the policy, the option and the decorator ----------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"failure_rate": 0}, "failure_rate"),
        ({"failure_rate": 1.5}, "failure_rate"),
        ({"failure_rate": True}, "failure_rate"),
        ({"slow_call_rate": 0.0}, "slow_call_rate"),
        ({"slow_call_rate": 2}, "slow_call_rate"),
        ({"slow_call": 0}, "slow_call"),
        ({"slow_call": -1.0}, "slow_call"),
        ({"open_for": 0}, "open_for"),
        ({"open_for": float("inf")}, "open_for"),
        ({"half_open_calls": 0}, "half_open_calls"),
        ({"half_open_calls": 1.5}, "half_open_calls"),
        ({"window": 0}, "window"),
        ({"min_calls": 0}, "min_calls"),
        ({"record": 42}, "record"),
        ({"record": ValueError("an instance")}, "record"),
        ({"store": object()}, "store"),
    ],
)
def test_nonsense_settings_name_the_setting(kwargs: dict[str, Any], setting: str) -> None:
    with pytest.raises(pw.ConfigurationError, match=setting):
        pw.CircuitBreaker(**kwargs)


def test_defaults_and_describe() -> None:
    policy = pw.CircuitBreaker()
    assert (policy.failure_rate, policy.slow_call_rate, policy.slow_call) == (0.5, 1.0, None)
    assert (policy.window, policy.min_calls, policy.open_for, policy.half_open_calls) == (100, 100, 60.0, 10)
    model = pw.ProductionModel(lambda x: x, circuit=pw.CircuitBreaker(record=(TimeoutError, KeyError)))
    described = model.describe()
    assert described["circuit"]["record"] == ["TimeoutError", "KeyError"] and described["circuit"]["min_calls"] == 100
    assert described["stages"] == ["circuit breaker", "predict"]
    with pytest.raises(pw.ConfigurationError, match="circuit="):
        pw.ProductionModel(lambda x: x, circuit=0.5)  # type: ignore[arg-type]


def test_the_decorator_takes_what_circuit_takes(clock: FakeClock) -> None:
    @pw.circuit
    def bare(x: int) -> int:
        return x

    @pw.fallback(pw.Constant(-1))
    @pw.circuit(window=2, open_for=3.0)
    def keyed(x: int) -> int:
        if x < 0:
            raise ConnectionError
        return x

    policy = pw.CircuitBreaker(window=5)

    @pw.circuit(policy)
    def given(x: int) -> int:
        return x

    assert bare(1) == 1 and bare._settings.circuit == pw.CircuitBreaker()
    assert keyed._settings.circuit == pw.CircuitBreaker(window=2, open_for=3.0)
    assert given._settings.circuit is policy
    assert [keyed(-1), keyed(-1), keyed(5)] == [-1, -1, -1]  # open: the fallback serves
    assert keyed.circuit is not None and keyed.circuit.state == "open"
    with pytest.raises(pw.ConfigurationError, match="not both"):
        pw.circuit(policy, window=3)
    with pytest.raises(pw.ConfigurationError, match="window"):
        pw.circuit(window=0)


async def test_success_path_failures_take_back_the_success_counted_at_admission(clock: FakeClock, flavour: str) -> None:
    model, _ = make(clock, flavour, breaker={"window": 4, "failure_rate": 0.75})
    assert stage_of(model).success_at_admit and model._engine.fast is not None
    await calls(model, "ok", "ok", "ok", "ok")  # the walk counts these: min_calls are in
    await calls(model, "fail", "fail")  # on the success path: counted as ok, then taken back
    assert model.circuit is not None and model.circuit.state == "closed"
    assert model.stats().circuit.failure_rate == 0.5
    await calls(model, "fail")  # [ok fail fail fail]
    assert model.circuit.state == "open"


def test_a_later_stage_saying_no_withdraws_the_success_counted_at_admission(clock: FakeClock) -> None:
    from prodwrap._engine import Engine
    from prodwrap._stage import Seam, Stage

    class Never(Stage):
        """An attempt stage whose success-path hook always sends the call to the walk."""

        name = "never"
        seam = Seam.ATTEMPT

        def __init__(self) -> None:
            self.fast_admit = lambda value, args, kwargs: False

        def before_attempt(self, call: Any, target: Any) -> None:
            return None

    def predict(x: int) -> int:
        if x < 0:
            raise ConnectionError
        return x

    breaker = pw.CircuitBreaker(window=4, failure_rate=1.0).stages(_build("m"))[0]
    model = pw.ProductionModel(predict)
    model._swap(Engine(fn=predict, name="m", stages=[breaker, Never()]))
    assert model._engine.fast is not None
    for x in (1, 2, 3, 4, -1, -2, -3):
        with contextlib.suppress(ConnectionError):
            model(x)
    assert breaker.handle.state == "closed"  # type: ignore[attr-defined]
    with pytest.raises(ConnectionError):
        model(-4)  # four failures in a window of four: had the admissions' successes stayed, it would not be
    assert breaker.handle.state == "open"  # type: ignore[attr-defined]


def _build(name: str) -> Any:
    from prodwrap._stage import Build

    return Build(name, None, False, None)


@pytest.mark.parametrize("slow_call", [None, 10.0])
def test_an_attempt_let_through_before_close_never_counts_in_the_new_window(
    clock: FakeClock, slow_call: float | None
) -> None:
    """An attempt on the success path (which keeps no mark of the closed spell it entered)
    that ends after the circuit was opened and closed again counts in no window: its window
    is gone, as the walk's marked attempts already do."""
    entered, release = threading.Event(), threading.Event()

    def predict(x: str) -> str:
        if x == "held":
            entered.set()
            release.wait(10)
            raise ConnectionError("let through before close()")
        if x == "fail":
            raise ConnectionError("fresh")
        return x

    policy = pw.CircuitBreaker(window=2, min_calls=2, failure_rate=1.0, slow_call=slow_call)
    model = pw.ProductionModel(predict, circuit=policy, fallback=pw.Constant("fb"))
    assert model._engine.fast is not None
    model("ok")
    model("ok")
    held = threading.Thread(target=model, args=("held",))
    held.start()
    assert entered.wait(10)
    clock.advance(1.0)
    assert model.circuit is not None
    model.circuit.open()
    model.circuit.close()  # a new, empty window
    release.set()
    held.join(10)
    assert model.stats().circuit.calls == 0
    model("ok")
    model("ok")  # (the walk counts these: min_calls are in)
    model("fail")  # on the success path, begun after the close: it counts
    assert (model.circuit.state, model.stats().circuit.calls) == ("closed", 2)
    assert model.stats().circuit.failure_rate == 0.5


@pytest.mark.parametrize("start", [0.0, 1000.0])
def test_success_path_failures_count_on_a_clock_that_stands_still(start: float) -> None:
    """A fake clock that never moves (``no_sleep``) reads the same time at every close and
    every call: the success path still counts each failure (found by a review)."""
    from prodwrap.testing import no_sleep

    def predict(x: str) -> str:
        if x == "fail":
            raise ConnectionError
        return x

    with no_sleep(FakeClock(start=start)):
        model = pw.ProductionModel(
            predict, circuit=pw.CircuitBreaker(window=10, min_calls=10, failure_rate=0.5), fallback=pw.Constant("fb")
        )
        assert model.circuit is not None
        for _ in range(2):
            model.circuit.open()
            model.circuit.close()  # (a close at the clock's one reading)
            for _ in range(10):
                model("ok")
            for _ in range(5):
                model("fail")
            assert model.circuit.state == "open"
