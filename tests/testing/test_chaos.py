"""``chaos``, ``FlakyFunction`` and ``AsyncFlaky``: deterministic fault injection (issue 14, item 2)."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Any

import pytest

import prodwrap as pw
from prodwrap.policies.retry import is_transient
from prodwrap.testing import AsyncChaos, AsyncFlaky, Chaos, FakeClock, FlakyFunction, chaos, no_sleep


def double(x: float) -> float:
    """Doubles."""
    return 2 * x


async def adouble(x: float) -> float:
    return 2 * x


def fates(fn: Any, n: int) -> list[str]:
    out = []
    for i in range(n):
        try:
            fn(float(i))
            out.append("ok")
        except Exception as exc:
            out.append(type(exc).__name__)
    return out


def test_a_seed_repeats_the_faults_call_by_call() -> None:
    first = fates(chaos(double, error_rate=0.3, errors=(ConnectionError, TimeoutError), seed=7), 200)
    again = fates(chaos(double, error_rate=0.3, errors=(ConnectionError, TimeoutError), seed=7), 200)
    other = fates(chaos(double, error_rate=0.3, errors=(ConnectionError, TimeoutError), seed=8), 200)
    assert first == again and first != other
    assert set(first) == {"ok", "ConnectionError", "TimeoutError"}
    assert 30 < first.count("ok") < 170


def test_the_nth_calls_fate_does_not_depend_on_which_faults_are_on() -> None:
    errors_only = fates(chaos(double, error_rate=0.5, seed=1), 50)
    with no_sleep():
        both = fates(chaos(double, error_rate=0.5, latency=lambda rng: rng.random(), seed=1), 50)
    assert errors_only == both  # three draws per call, always


def test_counters_and_the_error_rate_over_many_calls() -> None:
    wrapped = chaos(double, error_rate=0.25, seed=3)
    outcomes = fates(wrapped, 4000)
    assert wrapped.calls == 4000 and wrapped.errors == outcomes.count("ConnectionError")
    assert wrapped.passed == outcomes.count("ok") and wrapped.errors + wrapped.passed == 4000
    assert 0.22 < wrapped.errors / 4000 < 0.28
    assert wrapped.stats()["errors"] == wrapped.errors


def test_error_instances_are_raised_as_fresh_copies() -> None:
    error = ValueError("bad gateway")
    wrapped = chaos(double, error_rate=1.0, errors=[error], seed=0)
    raised = []
    for _ in range(2):
        with pytest.raises(ValueError, match="bad gateway") as info:
            wrapped(1.0)
        raised.append(info.value)
    assert raised[0] is not raised[1] and error.__traceback__ is None


class FakeResponse:
    """What an httpx response carries for retries: its status."""

    status_code = 429


class StatusError(Exception):
    """Built as openai's ``APIStatusError`` is: ``response`` and ``body`` keyword-only."""

    def __init__(self, message: str, *, response: FakeResponse, body: object) -> None:
        super().__init__(message)
        self.response = response
        self.body = body
        self.status_code = response.status_code


class CodeError(Exception):
    """Reformats its message: calling it again with its args would say "code code 503"."""

    def __init__(self, code: int) -> None:
        super().__init__(f"code {code}")
        self.code = code


def status_error() -> StatusError:
    return StatusError("rate limited", response=FakeResponse(), body={"error": "slow down"})


@pytest.mark.parametrize("make", [status_error, lambda: CodeError(503)])
def test_an_error_whose_init_cannot_be_called_again_is_copied_as_it_is(make: Any) -> None:
    error = make()
    error.__cause__ = KeyError("cause")
    injected: list[BaseException] = []
    for fn in (chaos(double, error_rate=1.0, errors=[error], seed=0), FlakyFunction(double, error=error)):
        with pytest.raises(type(error)) as info:
            fn(1.0)
        injected.append(info.value)
    for copy in injected:
        assert copy is not error and type(copy) is type(error)
        assert copy.args == error.args and str(copy) == str(error)
        assert vars(copy) == vars(error)
        assert copy.__cause__ is None and copy.__context__ is None
    assert error.__traceback__ is None


def test_a_copied_status_error_keeps_what_retries_read() -> None:
    error = status_error()
    wrapped = chaos(double, error_rate=1.0, errors=[error], seed=0)
    with pytest.raises(StatusError) as info:
        wrapped(1.0)
    copy = info.value
    assert isinstance(copy, StatusError)
    assert copy.status_code == 429 and copy.response is error.response and copy.body == error.body
    assert is_transient(copy)
    flaky = FlakyFunction(double, fail_times=2, error=error)
    model = pw.ProductionModel(flaky, retry=3)
    with no_sleep():
        prediction = model.predict_detailed(2.0)
    assert prediction.value == 4.0 and prediction.attempts == 3 and flaky.failures == 2


def test_a_note_added_to_one_copy_stays_on_it() -> None:
    error = ValueError("bad")
    error.add_note("first")
    wrapped = chaos(double, error_rate=1.0, errors=[error], seed=0)
    with pytest.raises(ValueError) as info:
        wrapped(1.0)
    info.value.add_note("second")
    assert error.__notes__ == ["first"] and info.value.__notes__ == ["first", "second"]


def test_an_error_that_cannot_be_copied_is_refused_up_front() -> None:
    class Unbuildable(Exception):
        def __new__(cls, *args: object) -> Unbuildable:
            if args:
                raise TypeError("no arguments, please")
            return super().__new__(cls)

    error = Unbuildable()
    error.args = ("boom",)
    with pytest.raises(pw.ConfigurationError, match="cannot copy"):
        chaos(double, error_rate=1.0, errors=[error])
    with pytest.raises(pw.ConfigurationError, match="cannot copy"):
        FlakyFunction(double, error=error)


def test_latency_sleeps_on_prodwraps_clock() -> None:
    with no_sleep() as clock:
        wrapped = chaos(double, latency=0.5, seed=0)
        started = time.perf_counter()
        assert [wrapped(1.0) for _ in range(4)] == [2.0] * 4
        assert time.perf_counter() - started < 0.5  # fake: no real waiting
    assert clock.sleeps == [0.5] * 4 and wrapped.delays == 4 and wrapped.delayed == 2.0


def test_a_latency_distribution_draws_from_the_seeded_stream() -> None:
    def draws(seed: int) -> list[float]:
        with no_sleep() as clock:
            wrapped = chaos(double, latency=lambda rng: rng.expovariate(10.0), seed=seed)
            for _ in range(5):
                wrapped(1.0)
        return clock.sleeps

    assert draws(4) == draws(4) != draws(5)
    assert all(s > 0 for s in draws(4))


def test_retries_around_chaos_take_no_real_time_and_end_on_a_success() -> None:
    wrapped = chaos(double, error_rate=0.5, latency=0.2, seed=11)
    model = pw.ProductionModel(wrapped, retry=pw.Retry(attempts=20, wait=pw.backoff(initial=1.0)))
    with no_sleep() as clock:
        values = [model(float(i)) for i in range(20)]
    assert values == [2.0 * i for i in range(20)]
    assert wrapped.calls == 20 + wrapped.errors and clock.slept > 20 * 0.2


def test_a_hang_holds_until_release_and_the_timeout_abandons_it() -> None:
    wrapped = chaos(double, hang_rate=1.0, seed=0)
    model = pw.ProductionModel(wrapped, timeout=0.05, fallback=pw.Constant(-1.0))
    with wrapped:
        assert model(1.0) == -1.0  # the attempt timed out: the fallback served
        while wrapped.hanging == 0:  # (the worker counts itself in as it starts to hang)
            time.sleep(0.001)
        assert wrapped.hangs == 1 and wrapped.passed == 0  # still hanging, abandoned
    deadline = time.monotonic() + 5
    while wrapped.hanging and time.monotonic() < deadline:  # the released thread ends
        time.sleep(0.001)
    assert wrapped.hanging == 0 and wrapped.passed == 1  # then it called through


def test_a_hang_ends_when_the_fake_clock_passes_hang_for() -> None:
    with no_sleep(FakeClock()) as clock:
        wrapped = chaos(double, hang_rate=1.0, hang_for=60.0)
        done = threading.Event()
        result: list[float] = []
        worker = threading.Thread(target=lambda: (result.append(wrapped(2.0)), done.set()))
        worker.start()
        while not wrapped.hanging:
            time.sleep(0.001)
        clock.advance(30.0)
        assert not done.wait(0.05) and wrapped.hanging == 1
        clock.advance(30.0)
        assert done.wait(5)
        worker.join()
    assert result == [4.0]


def test_release_ends_the_hangs_under_way_and_later_hangs_wait_again() -> None:
    wrapped = chaos(double, hang_rate=1.0)
    results: list[float] = []
    workers = [threading.Thread(target=lambda: results.append(wrapped(1.0))) for _ in range(3)]
    for w in workers:
        w.start()
    while wrapped.hanging < 3:
        time.sleep(0.001)
    wrapped.release()
    for w in workers:
        w.join(5)
    assert results == [2.0] * 3
    later = threading.Thread(target=lambda: results.append(wrapped(5.0)))
    later.start()
    while wrapped.hanging < 1:
        time.sleep(0.001)
    assert len(results) == 3  # the new hang waits
    wrapped.release()
    later.join(5)
    assert results[-1] == 10.0


def test_async_functions_stay_async() -> None:
    wrapped = chaos(adouble, error_rate=0.5, latency=0.1, seed=2)
    assert isinstance(wrapped, AsyncChaos) and isinstance(chaos(double), Chaos)
    model = pw.ProductionModel(wrapped, retry=pw.Retry(attempts=30))
    assert model.is_async

    async def run() -> list[float]:
        return [await model(float(i)) for i in range(10)]

    with no_sleep() as clock:
        assert asyncio.run(run()) == [2.0 * i for i in range(10)]
    assert wrapped.errors > 0 and wrapped.passed == 10 and clock.slept >= 0.1 * wrapped.calls


def test_an_async_hang_is_cancelled_by_the_attempt_timeout() -> None:
    wrapped = chaos(adouble, hang_rate=1.0)
    model = pw.ProductionModel(wrapped, timeout=0.05, fallback=pw.Constant(0.0))
    assert asyncio.run(model(1.0)) == 0.0
    assert wrapped.hangs == 1 and wrapped.hanging == 0  # cancelled, not left behind


def test_the_wrapper_keeps_the_functions_name_and_signature() -> None:
    wrapped = chaos(double)
    assert wrapped.__name__ == "double" and wrapped.__doc__ == "Doubles."
    assert pw.ProductionModel(wrapped).name == "double"
    assert pw.ProductionModel(wrapped)(x=3.0) == 6.0  # the input by its parameter's name


@pytest.mark.parametrize(
    "options",
    [
        {"error_rate": 1.5},
        {"hang_rate": -0.1},
        {"error_rate": True},
        {"errors": ["not an exception"]},
        {"error_rate": 0.5, "errors": ()},
        {"latency": -1.0},
        {"latency": "slow"},
        {"hang_for": 0},
    ],
)
def test_nonsense_is_refused(options: dict[str, Any]) -> None:
    with pytest.raises(pw.ConfigurationError):
        chaos(double, **options)


def test_draws_are_taken_under_a_lock_across_threads() -> None:
    wrapped = chaos(double, error_rate=0.5, seed=9)
    start = threading.Barrier(8)

    def run() -> None:
        start.wait()
        fates(wrapped, 500)

    workers = [threading.Thread(target=run) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    expected = random.Random(9)
    errors = 0
    for _ in range(4000):
        _, fail, _ = expected.random(), expected.random(), expected.random()
        errors += fail < 0.5
    assert wrapped.calls == 4000 and wrapped.errors == errors  # the same 4000 fates, shared out


# -- FlakyFunction ----------------------------------------------------------------------------


def test_flaky_fails_n_times_then_delegates() -> None:
    flaky = FlakyFunction(double, fail_times=2)
    with pytest.raises(ConnectionError, match="flaky"):
        flaky(1.0)
    with pytest.raises(ConnectionError):
        flaky(1.0)
    assert flaky(1.0) == 2.0 and flaky.calls == 3 and flaky.failures == 2


def test_flaky_without_fn_returns_its_default_and_takes_an_error_class() -> None:
    flaky = FlakyFunction(fail_times=1, error=TimeoutError, default="fine")
    with pytest.raises(TimeoutError):
        flaky()
    assert flaky() == "fine"


def test_a_retry_gets_past_a_flaky_predict() -> None:
    flaky = FlakyFunction(double, fail_times=2)
    model = pw.ProductionModel(flaky, retry=3)
    with no_sleep():
        prediction = model.predict_detailed(2.0)
    assert prediction.value == 4.0 and prediction.attempts == 3


def test_async_flaky() -> None:
    flaky = AsyncFlaky(adouble, fail_times=1)
    model = pw.ProductionModel(flaky, retry=2)
    assert model.is_async
    with no_sleep():
        assert asyncio.run(model(3.0)) == 6.0
    assert flaky.calls == 2


def test_flaky_refuses_the_wrong_kind_of_function() -> None:
    with pytest.raises(pw.ConfigurationError, match="AsyncFlaky"):
        FlakyFunction(adouble)
    with pytest.raises(pw.ConfigurationError, match="FlakyFunction"):
        AsyncFlaky(double)
    with pytest.raises(pw.ConfigurationError):
        FlakyFunction(double, fail_times=-1)


async def test_chaos_over_an_async_model_is_async_and_injects_when_awaited() -> None:
    async def predict(x: int) -> int:
        return x + 1

    model = pw.ProductionModel(predict, name="am")
    wrapped = chaos(model, error_rate=1.0, errors=[ValueError], seed=1)
    assert isinstance(wrapped, AsyncChaos)
    with pytest.raises(ValueError):
        await wrapped(1)
    assert wrapped.calls == 1 and wrapped.errors == 1
    calm = chaos(model, error_rate=0.0, seed=1)
    assert await calm(1) == 2


def test_flaky_wrappers_tell_an_async_model_apart() -> None:
    async def predict(x: int) -> int:
        return x + 1

    inner = pw.ProductionModel(predict, name="inner")
    with pytest.raises(pw.ConfigurationError, match="AsyncFlaky"):
        FlakyFunction(inner)
    flaky = AsyncFlaky(inner, fail_times=1)
    with pytest.raises(ConnectionError):
        asyncio.run(flaky(1))
    assert asyncio.run(flaky(1)) == 2


@pytest.mark.parametrize(
    "error",
    [
        StopIteration(5),
        SystemExit(3),
        ImportError("x", name="mod", path="/m.py"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"),
        OSError(104, "reset"),
        OSError(2, "nope", "f.txt"),
    ],
)
def test_a_copy_keeps_what_a_built_in_exception_holds_outside_its_dict(error: BaseException) -> None:
    from prodwrap.testing._chaos import _copy

    copied = _copy(error)
    assert type(copied) is type(error) and copied is not error
    assert (copied.args, str(copied)) == (error.args, str(error))
    fields = ("value", "code", "name", "path", "encoding", "start", "end", "reason", "errno", "strerror", "filename")
    for field in fields:
        assert getattr(copied, field, None) == getattr(error, field, None), field
