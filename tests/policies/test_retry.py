from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
import tenacity
from hypothesis import given
from hypothesis import strategies as st

import prodwrap as pw
from prodwrap.policies.retry import retry_state
from prodwrap.testing import FakeClock


def _state(attempt: int) -> tenacity.RetryCallState:
    return retry_state(start=0.0, attempt=attempt, exc=ConnectionError(), now=1.0, idle_for=0.0)


@given(initial=st.floats(0, 10), maximum=st.floats(0, 60), multiplier=st.floats(1, 5), attempt=st.integers(1, 200))
def test_backoff_without_jitter_is_exponential_and_capped(
    initial: float, maximum: float, multiplier: float, attempt: int
) -> None:
    wait = pw.backoff(initial=initial, maximum=maximum, multiplier=multiplier, jitter=False)
    delay = wait(_state(attempt))
    try:
        expected = min(maximum, initial * multiplier ** (attempt - 1))
    except OverflowError:
        expected = maximum
    assert delay == pytest.approx(expected, rel=1e-9, abs=1e-12)


@given(initial=st.floats(0.001, 1), maximum=st.floats(0.001, 10), attempt=st.integers(1, 50))
def test_backoff_with_full_jitter_stays_in_range(initial: float, maximum: float, attempt: int) -> None:
    delay = pw.backoff(initial=initial, maximum=maximum)(_state(attempt))
    assert 0 <= delay <= min(maximum, initial * 2 ** (attempt - 1)) + 1e-12


def test_backoff_combines_with_tenacity_waits() -> None:
    combined = pw.backoff(initial=1, jitter=False) + tenacity.wait_fixed(0.5)
    assert combined(_state(1)) == 1.5


@pytest.mark.parametrize(
    "kwargs", [{"initial": -1}, {"maximum": -1}, {"multiplier": 0.5}, {"initial": float("inf")}, {"initial": True}]
)
def test_backoff_rejects_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(pw.ConfigurationError):
        pw.backoff(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attempts": 0},
        {"attempts": -2},
        {"attempts": 1.5},
        {"attempts": True},
        {"attempts": 10_000},
        {"attempts": None},
        {"on": 42},
        {"on": (ValueError, 3)},
        {"on": str},
        {"wait": 1.0},
        {"stop": 3},
    ],
)
def test_retry_rejects_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(pw.ConfigurationError):
        pw.Retry(**kwargs)  # type: ignore[arg-type]


def test_retry_defaults_are_bounded() -> None:
    policy = pw.Retry()
    assert policy.attempts == 3 and isinstance(policy.wait, pw.Backoff)
    assert pw.Retry.coerce(5) == pw.Retry(attempts=5, wait=policy.wait)


@pytest.mark.parametrize(
    ("given", "says"),
    [
        (0, "an attempt count >= 1"),
        (-2, "an attempt count >= 1"),
        (True, "an int or pw.Retry"),
        (2.5, "an int or pw.Retry"),
    ],
)
def test_a_retry_count_that_is_no_count_says_what_retry_takes(given: object, says: str) -> None:
    with pytest.raises(pw.ConfigurationError, match=f"retry= takes {says}"):
        pw.ProductionModel(lambda x: x, retry=given)


def test_retries_predicate_rules() -> None:
    policy = pw.Retry(on=(ConnectionError,))
    assert policy.retries(ConnectionError()) and not policy.retries(ValueError())
    assert not pw.Retry(on=Exception).retries(pw.OutputValidationError([]))
    assert pw.Retry(on=(pw.OutputValidationError,)).retries(pw.OutputValidationError([]))
    assert not pw.Retry(on=lambda e: True).retries(pw.CircuitOpenError())
    assert not pw.Retry(on=Exception).retries(pw.ConfigurationError("a sync predict's coroutine"))


# -- the default: transient failures only ------------------------------------------------------


class Status(Exception):
    def __init__(self, status_code: int | None = None, response: object = None) -> None:
        super().__init__(status_code)
        self.status_code = status_code
        self.response = response


class Response:
    def __init__(self, status: int) -> None:
        self.status = status


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (ConnectionError(), True),
        (TimeoutError(), True),
        (pw.PredictionTimeout("t"), True),
        (Status(429), True),
        (Status(503), True),
        (Status(404), False),
        (Status(None, Response(502)), True),
        (Status(None, Response(400)), False),
        (ValueError("bug"), False),
        (KeyError("bug"), False),
    ],
)
def test_default_retries_transient_failures_only(exc: Exception, transient: bool) -> None:
    from prodwrap.policies._transient import is_transient

    assert is_transient(exc) is transient
    assert pw.Retry().retries(exc) is transient


def test_retry_3_does_not_retry_a_bug(clock: object) -> None:
    calls = []

    def predict(x: int) -> int:
        calls.append(x)
        raise ValueError("a bug in the predict")

    with pytest.raises(ValueError, match="a bug"):
        pw.ProductionModel(predict, retry=3)(1)
    assert calls == [1]


# -- retry_after -----------------------------------------------------------------------------------


class After(Exception):
    def __init__(self, seconds: object) -> None:
        super().__init__(f"retry after {seconds}")
        self.retry_after = seconds


@pytest.mark.parametrize("after", [1e12, 1e9, float("inf"), float("nan"), 61.0])
def test_retry_after_beyond_the_cap_goes_to_the_fallback(after: float, clock: FakeClock) -> None:
    model = pw.ProductionModel(lambda x: (_ for _ in ()).throw(After(after)), retry=3, fallback=pw.Constant(0))
    p = model.predict_detailed(1)
    assert (p.value, p.outcome, p.attempts) == (0, "fallback", 1)
    assert clock.sleeps == []
    assert model.stats().calls == 1


@pytest.mark.parametrize(
    ("afters", "slept"),
    [((np.int64(3), 2), [3.0, 2.0]), ((Fraction(3, 2), Decimal("2.5")), [1.5, 2.5])],
)
def test_retry_after_is_honoured_as_numpy_an_int_a_fraction_and_a_decimal(
    clock: FakeClock, afters: tuple[object, object], slept: list[float]
) -> None:
    errors = [After(after) for after in afters]

    def predict(x: int) -> int:
        if errors:
            raise errors.pop(0)
        return x

    model = pw.ProductionModel(predict, retry=pw.Retry(attempts=3, wait=pw.backoff(initial=0.0)))
    assert model(5) == 5
    assert clock.sleeps == slept


@pytest.mark.parametrize(
    "after",
    [10**400, Fraction(10**400, 3), Decimal("1e400"), Decimal("inf"), Decimal("NaN"), Decimal("sNaN"), Decimal(61)],
    ids=["huge int", "huge Fraction", "huge Decimal", "Decimal inf", "Decimal NaN", "Decimal sNaN", "Decimal 61"],
)
async def test_a_retry_after_past_floats_range_or_not_a_number_goes_to_the_fallback_at_once(
    after: object, clock: FakeClock
) -> None:
    def predict(x: int) -> int:
        raise After(after)

    async def apredict(x: int) -> int:
        raise After(after)

    model = pw.ProductionModel(predict, retry=3, fallback=pw.Constant("fb"))
    amodel = pw.ProductionModel(apredict, retry=3, fallback=pw.Constant("fb"))
    for p in (model.predict_detailed(1), await amodel.apredict_detailed(1)):
        assert (p.value, p.outcome, p.attempts) == ("fb", "fallback", 1)
    assert clock.sleeps == []


@pytest.mark.parametrize(
    "after",
    [-(10**400), Decimal("-Infinity"), float("-inf"), -5, True, False, "2", b"2", None, object()],
    ids=["huge negative int", "Decimal -inf", "-inf", "-5", "True", "False", "str", "bytes", "None", "object"],
)
async def test_a_retry_after_that_asks_no_wait_leaves_the_backoffs(after: object, clock: FakeClock) -> None:
    """A negative retry_after asks for no wait at all; a bool, a str or any non-number sets
    none (the exception is still transient: it has the attribute, None aside)."""
    failures = [After(after)]

    def predict(x: int) -> int:
        if failures:
            raise failures.pop()
        return x

    retry = pw.Retry(attempts=3, wait=pw.backoff(initial=0.25, jitter=False))
    model = pw.ProductionModel(predict, retry=retry, fallback=pw.Constant(-1))
    p = model.predict_detailed(7)
    if after is None:  # no retry_after: not transient, so not retried
        assert (p.value, p.attempts, clock.sleeps) == (-1, 1, [])
    else:
        assert (p.value, p.attempts, clock.sleeps) == (7, 2, [0.25])


def test_max_retry_after_is_validated() -> None:
    for bad in (-1, float("inf"), "60", True):
        with pytest.raises(pw.ConfigurationError, match="max_retry_after"):
            pw.Retry(max_retry_after=bad)  # type: ignore[arg-type]


# -- faults in the policy's own callables ------------------------------------------------------------


def test_a_raising_predicate_or_wait_means_no_retry_counted_and_logged(
    clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    def on(exc: BaseException) -> bool:
        raise RuntimeError("predicate bug")

    def wait(state: object) -> float:
        raise RuntimeError("wait bug")

    for name, policy in (("on", pw.Retry(attempts=3, on=on)), ("wait", pw.Retry(attempts=3, wait=wait))):
        model = pw.ProductionModel(
            lambda x: (_ for _ in ()).throw(ConnectionError("down")), name=name, retry=policy, fallback=pw.Constant(-1)
        )
        with caplog.at_level("WARNING", logger="prodwrap"):
            p = model.predict_detailed(1)
        assert (p.value, p.outcome, p.attempts) == (-1, "fallback", 1)
        assert model.stats().calls == 1 and model.stats().outcomes == {"fallback": 1}
    assert any("predicate bug" in r.getMessage() for r in caplog.records)
    assert any("wait bug" in r.getMessage() for r in caplog.records)


# -- the user's exception, as thrown ---------------------------------------------------------------


def test_the_raised_exception_keeps_its_own_chain_after_retries(clock: object) -> None:
    cause = OSError("socket closed")
    attempts = []

    def predict(x: int) -> int:
        attempts.append(x)
        try:
            raise cause
        except OSError as exc:
            raise ConnectionError(f"attempt {len(attempts)}") from exc

    with pytest.raises(ConnectionError, match="attempt 3") as info:
        pw.ProductionModel(predict, retry=3)(1)
    assert info.value.__cause__ is cause
    assert info.value.__context__ is cause  # not the previous attempt's ConnectionError


def test_the_raised_exception_has_no_context_of_ours(clock: object) -> None:
    def predict(x: int) -> int:
        raise ConnectionError("plain")

    with pytest.raises(ConnectionError) as info:
        pw.ProductionModel(predict, retry=2)(1)
    assert info.value.__context__ is None and info.value.__cause__ is None


def test_a_retry_is_logged_at_debug(clock: object, caplog: pytest.LogCaptureFixture) -> None:
    failures = [ConnectionError("x")]

    def predict(x: int) -> int:
        if failures:
            raise failures.pop()
        return x

    with caplog.at_level("DEBUG", logger="prodwrap"):
        pw.ProductionModel(predict, retry=2, name="scorer")(1)
    retry_lines = [r for r in caplog.records if r.levelname == "DEBUG" and "retrying" in r.getMessage()]
    assert len(retry_lines) == 1 and retry_lines[0].model == "scorer"  # type: ignore[attr-defined]


@given(initial=st.floats(0, 10), maximum=st.floats(0, 60), multiplier=st.floats(1, 5), attempt=st.integers(1, 2000))
def test_backoff_computes_what_tenacitys_wait_exponential_computes(
    initial: float, maximum: float, multiplier: float, attempt: int
) -> None:
    ours = pw.backoff(initial=initial, maximum=maximum, multiplier=multiplier, jitter=False)
    theirs = tenacity.wait_exponential(multiplier=initial, max=maximum, exp_base=multiplier)
    assert ours(_state(attempt)) == theirs(_state(attempt))


@pytest.mark.parametrize("where", ["in the backoff sleep", "in the second attempt"])
async def test_cancelling_mid_retry_propagates_and_nothing_is_retried_or_sent_to_a_fallback(where: str) -> None:
    import asyncio

    attempts: list[int] = []
    fallback_calls: list[int] = []
    reached = asyncio.Event()

    async def flaky(x: int) -> int:
        attempts.append(x)
        if len(attempts) == 1:
            raise ConnectionError("down")
        reached.set()
        await asyncio.Event().wait()  # the second attempt hangs until cancelled
        return x

    async def fallback(x: int) -> int:
        fallback_calls.append(x)
        return -1

    wait = 3600.0 if where == "in the backoff sleep" else 0.0
    model = pw.ProductionModel(
        flaky, retry=pw.Retry(attempts=5, wait=pw.backoff(initial=wait, jitter=False)), fallback=fallback
    )
    task = asyncio.ensure_future(model.apredict(1))
    if wait:
        while not attempts:  # the first attempt has failed: the call now sleeps an hour
            await asyncio.sleep(0)
        await asyncio.sleep(0)
    else:
        await reached.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(attempts) == (1 if wait else 2)
    assert fallback_calls == []
    stats = model.stats()
    assert (stats.outcomes, stats.failures.get("cancelled")) == ({"error": 1}, 1)


@given(
    initial=st.floats(0, 10),
    maximum=st.floats(0, 60),
    multiplier=st.floats(1, 5),
    attempts=st.integers(2, 100),
    jitter=st.booleans(),
    seed=st.integers(0, 2**32),
)
def test_a_retrys_precomputed_waits_are_its_backoffs(
    initial: float, maximum: float, multiplier: float, attempts: int, jitter: bool, seed: int
) -> None:
    import random

    wait = pw.backoff(initial=initial, maximum=maximum, multiplier=multiplier, jitter=jitter)
    retry = pw.Retry(attempts=attempts, on=(ConnectionError,), wait=wait)
    for n in range(1, attempts):
        random.seed(seed)
        ours = retry.wait_after(n, ConnectionError(), 0.0, "m", 0.0, 0.0, None, "exception")
        random.seed(seed)
        theirs = wait(_state(n))
        assert ours == theirs  # (one lookup, and one draw when jittered)
    assert retry.wait_after(attempts, ConnectionError(), 0.0, "m", 0.0, 0.0, None, "exception") is None


def test_an_exception_whose_retry_after_raises_is_not_retried_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    class OddHeader(ConnectionError):
        @property
        def retry_after(self) -> float:  # (a header that does not parse)
            raise RuntimeError("bad Retry-After header")

    calls: list[int] = []

    def predict(x: int) -> int:
        calls.append(x)
        raise OddHeader("down")

    for on in (None, (ConnectionError,)):  # the default predicate reads it too
        calls.clear()
        model = pw.ProductionModel(predict, retry=pw.Retry(attempts=3, on=on), fallback=lambda x: -1, name=f"m{on}")
        with caplog.at_level("WARNING", logger="prodwrap"):
            assert model(1) == -1 and model.predict_detailed(1).value == -1
        assert calls == [1, 1]  # one attempt each: no retry
        assert any("retry policy raised RuntimeError" in r.getMessage() for r in caplog.records)
        caplog.clear()


class _Waits(tenacity.wait.wait_base):
    """A wait strategy giving ``seconds`` every time (a bug when it is NaN or infinite)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        return self.seconds


@pytest.mark.parametrize("seconds", [float("inf"), float("nan"), float("-inf")])
def test_a_wait_that_is_not_a_finite_number_of_seconds_is_no_retry_said_loudly(
    seconds: float, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Not a wait of 0 s: that would retry a dependency that is down in a tight loop."""
    calls: list[int] = []

    def predict(x: int) -> int:
        calls.append(x)
        raise ConnectionError("down")

    retry = pw.Retry(attempts=5, wait=_Waits(seconds))
    model = pw.ProductionModel(predict, retry=retry, fallback=lambda x: -1, name=f"endless-{seconds}")
    with caplog.at_level("WARNING", logger="prodwrap"):
        assert model(1) == -1 and model.predict_detailed(1).attempts == 1
    assert calls == [1, 1] and clock.sleeps == []  # one attempt each, no wait
    assert sum("wait gave" in r.getMessage() and "no retry" in r.getMessage() for r in caplog.records) == 1  # (a burst)


def test_a_negative_wait_is_no_wait(clock: FakeClock) -> None:
    outcomes = iter([ConnectionError("down"), None])

    def predict(x: int) -> int:
        error = next(outcomes)
        if error is not None:
            raise error
        return x

    model = pw.ProductionModel(predict, retry=pw.Retry(attempts=2, wait=_Waits(-1.0)))
    assert model(3) == 3 and clock.sleeps == []
