"""Retries and fallbacks end to end: the engine's decisions, driven through the sync driver."""

from __future__ import annotations

import pytest
import tenacity
from pydantic import BaseModel

import prodwrap as pw
from prodwrap.testing import FakeClock


class Flaky:
    """Fails with the given exceptions in order, then returns its input."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self, x: object) -> object:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return x


def test_flaky_twice_then_ok_with_retry_3(clock: FakeClock) -> None:
    fn = Flaky(ConnectionError("a"), ConnectionError("b"))
    p = pw.ProductionModel(fn, retry=3).predict_detailed(7)
    assert (p.value, p.outcome, p.attempts, p.served_by) == (7, "ok", 3, "primary")
    assert [str(e) for e in p.errors] == ["a", "b"]
    assert len(clock.sleeps) == 2  # waited twice, on the fake clock only


def test_retries_exhausted_raise_the_users_own_exception_unchanged(clock: FakeClock) -> None:
    last = ConnectionError("third")
    fn = Flaky(ConnectionError("1"), ConnectionError("2"), last)
    model = pw.ProductionModel(fn, retry=3)
    with pytest.raises(ConnectionError) as info:
        model(1)
    assert info.value is last
    assert fn.calls == 3
    assert model.stats().outcomes == {"error": 1}
    assert model.stats().failures == {"exception": 3}


def test_without_retry_one_attempt(clock: FakeClock) -> None:
    fn = Flaky(ConnectionError())
    with pytest.raises(ConnectionError):
        pw.ProductionModel(fn)(1)
    assert fn.calls == 1 and clock.sleeps == []


def test_retry_only_listed_types(clock: FakeClock) -> None:
    fn = Flaky(KeyError("k"))
    with pytest.raises(KeyError):
        pw.ProductionModel(fn, retry=pw.Retry(attempts=5, on=(ConnectionError,)))(1)
    assert fn.calls == 1


def test_retry_predicate(clock: FakeClock) -> None:
    fn = Flaky(ValueError("transient"), ValueError("fatal"))
    model = pw.ProductionModel(fn, retry=pw.Retry(attempts=5, on=lambda e: "transient" in str(e)))
    with pytest.raises(ValueError, match="fatal"):
        model(1)
    assert fn.calls == 2


def test_never_retries_prodwraps_own_refusals(clock: FakeClock) -> None:
    for error in (pw.CircuitOpenError("open"), pw.BulkheadFullError("full"), pw.InputValidationError([], model="m")):
        fn = Flaky(error)
        with pytest.raises(type(error)):
            pw.ProductionModel(fn, retry=pw.Retry(attempts=3, on=Exception))(1)
        assert fn.calls == 1


def test_invalid_output_is_a_failed_attempt_not_retried_by_default(clock: FakeClock) -> None:
    calls = []

    def predict(x: int) -> int:
        calls.append(x)
        return -1

    model = pw.ProductionModel(predict, check=lambda y: y >= 0, retry=3, fallback=pw.Constant(0))
    p = model.predict_detailed(1)
    assert (p.outcome, p.served_by, p.value, len(calls)) == ("fallback", "constant", 0, 1)
    assert isinstance(p.errors[0], pw.OutputValidationError)
    assert model.stats().failures == {"invalid_output": 1}


def test_invalid_output_retried_when_asked(clock: FakeClock) -> None:
    outputs = [-1, -2, 5]
    model = pw.ProductionModel(
        lambda x: outputs.pop(0),
        check=lambda y: y >= 0,
        retry=pw.Retry(attempts=3, on=(pw.OutputValidationError,)),
    )
    p = model.predict_detailed(1)
    assert (p.value, p.attempts) == (5, 3)


def test_retry_after_is_honoured(clock: FakeClock) -> None:
    class RateLimited(Exception):
        retry_after = 2.5

    model = pw.ProductionModel(Flaky(RateLimited()), retry=pw.Retry(attempts=2, wait=pw.backoff(initial=0.01)))
    assert model(3) == 3
    assert clock.sleeps == [2.5]


def test_tenacity_wait_and_stop_strategies(clock: FakeClock) -> None:
    fn = Flaky(*(ConnectionError() for _ in range(10)))
    model = pw.ProductionModel(
        fn, retry=pw.Retry(attempts=None, wait=tenacity.wait_fixed(1.0), stop=tenacity.stop_after_delay(3.5))
    )
    with pytest.raises(ConnectionError):
        model(1)
    # tenacity's rule: stop once a failure comes 3.5 s or more after the start (the 5th, at 4 s)
    assert clock.sleeps == [1.0, 1.0, 1.0, 1.0]
    assert fn.calls == 5


def test_backoff_grows_and_is_capped(clock: FakeClock) -> None:
    fn = Flaky(*(ConnectionError() for _ in range(5)))
    wait = pw.backoff(initial=0.1, maximum=0.3, multiplier=2, jitter=False)
    with pytest.raises(ConnectionError):
        pw.ProductionModel(fn, retry=pw.Retry(attempts=5, wait=wait))(1)
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.3, 0.3])


def test_no_retry_sleep_past_the_total_deadline(clock: FakeClock) -> None:
    fn = Flaky(ConnectionError(), ConnectionError())
    model = pw.ProductionModel(
        fn,
        timeout=pw.Timeout(total=1.0),
        retry=pw.Retry(attempts=3, wait=tenacity.wait_fixed(0.6)),
        fallback=pw.Constant("fb"),
    )
    p = model.predict_detailed(1)
    # first wait (0.6 s) fits in the 1 s deadline, a second would not: straight to the fallback
    assert clock.sleeps == [0.6]
    assert (p.outcome, p.attempts) == ("fallback", 2)


def test_fallback_chain_in_order_until_one_serves(clock: FakeClock) -> None:
    def broken(x: int) -> int:
        raise RuntimeError("baseline down")

    def baseline(x: int) -> int:
        return x * 10

    model = pw.ProductionModel(Flaky(ConnectionError("down")), fallback=[broken, baseline, pw.Constant(0)])
    p = model.predict_detailed(4)
    assert (p.value, p.outcome, p.served_by) == (40, "fallback", "baseline")
    assert [type(e) for e in p.errors] == [ConnectionError, RuntimeError]
    stats = model.stats()
    assert stats.served_by == {"baseline": 1} and stats.outcomes == {"fallback": 1}


def test_all_fallbacks_failed_is_fallback_exhausted_with_every_failure_in_order(clock: FakeClock) -> None:
    e1, e2, e3 = ConnectionError("p"), RuntimeError("f1"), ValueError("f2")

    def f1(x: int) -> int:
        raise e2

    def f2(x: int) -> int:
        raise e3

    model = pw.ProductionModel(Flaky(e1), fallback=[f1, f2])
    with pytest.raises(pw.FallbackExhausted) as info:
        model(1)
    assert list(info.value.exceptions) == [e1, e2, e3]
    assert isinstance(info.value, pw.ProdwrapError) and isinstance(info.value, ExceptionGroup)


def test_each_fallback_output_is_validated(clock: FakeClock) -> None:
    class Score(BaseModel):
        p: float

    model = pw.ProductionModel(
        Flaky(ConnectionError()),
        output=Score,
        fallback=[lambda x: {"p": "not a number"}, lambda x: {"p": 0.5}],
    )
    p = model.predict_detailed(1)
    assert p.value == Score(p=0.5) and p.served_by == "<lambda>#2"
    assert isinstance(p.errors[1], pw.OutputValidationError)


def test_constant_fallback_validated_at_construction() -> None:
    with pytest.raises(pw.ConfigurationError, match="constant"):
        pw.ProductionModel(lambda x: x, check=lambda y: y > 0, fallback=pw.Constant(-1))


def test_model_as_fallback_applies_its_own_policies(clock: FakeClock) -> None:
    inner_fn = Flaky(ConnectionError())
    inner = pw.ProductionModel(inner_fn, name="backup", retry=2)
    p = pw.ProductionModel(Flaky(KeyError()), fallback=inner).predict_detailed(9)
    assert (p.value, p.served_by, inner_fn.calls) == (9, "backup", 2)


def test_invalid_input_goes_to_fallback_when_asked(clock: FakeClock) -> None:
    class In(BaseModel):
        a: int

    seen = []

    def baseline(raw: object) -> str:
        seen.append(raw)
        return "baseline"

    model = pw.ProductionModel(lambda x: "primary", input=In, on_invalid="fallback", fallback=baseline)
    p = model.predict_detailed({"a": "nope"})
    assert (p.value, p.outcome, p.attempts) == ("baseline", "fallback", 0)
    assert seen == [{"a": "nope"}]  # the raw input
    assert isinstance(p.errors[0], pw.InputValidationError)
    assert model.stats().failures == {"invalid_input": 1}


def test_invalid_input_raises_by_default_and_never_calls_predict() -> None:
    class In(BaseModel):
        a: int

    fn = Flaky()
    model = pw.ProductionModel(fn, input=In, retry=3, fallback=pw.Constant(0))
    with pytest.raises(pw.InputValidationError):
        model({"a": "x"})
    assert fn.calls == 0


def test_constant_fallback_serves_a_fresh_copy_of_mutable_values() -> None:
    class Score(BaseModel):
        p: float

    model = pw.ProductionModel(
        Flaky(*(RuntimeError() for _ in range(2))), output=Score, fallback=pw.Constant(Score(p=0.5))
    )
    first = model(1)
    first.p = 0.99  # a caller mutating what it was served
    assert model(2) == Score(p=0.5)


def test_a_constant_that_cannot_be_copied_is_refused_at_construction() -> None:
    import threading

    with pytest.raises(pw.ConfigurationError, match="cannot be copied"):
        pw.ProductionModel(Flaky(), fallback=[pw.Constant({"lock": threading.Lock()}), pw.Constant("second")])


def test_a_constant_that_fails_to_serve_is_a_failed_fallback() -> None:
    class Fragile:
        """Copies once (the check at construction), then no more."""

        copies = 0

        def __deepcopy__(self, memo: object) -> Fragile:
            Fragile.copies += 1
            if Fragile.copies > 1:
                raise TypeError("cannot copy")
            return Fragile()

    model = pw.ProductionModel(
        Flaky(*(RuntimeError() for _ in range(2))), fallback=[pw.Constant(Fragile()), pw.Constant("second")]
    )
    p = model.predict_detailed(1)
    assert (p.value, p.outcome, p.served_by) == ("second", "fallback", "constant#2")
    assert isinstance(p.errors[1], TypeError)
    assert model.stats().failures == {"exception": 2}


def test_a_batch_constant_fallback_must_match_the_batch() -> None:
    def down(xs: list[int]) -> list[int]:
        raise ConnectionError

    model = pw.ProductionModel(down, batch=True, input=int, output=int, fallback=pw.Constant([0, 0]))
    assert model([1, 2]) == [0, 0]
    with pytest.raises(pw.FallbackExhausted) as raised:
        model([1, 2, 3])
    assert isinstance(raised.value.exceptions[-1], pw.OutputValidationError)
    chained = pw.ProductionModel(down, batch=True, fallback=[pw.Constant([0, 0]), lambda xs: [9] * len(xs)])
    assert chained([1, 2, 3]) == [9, 9, 9]
    assert chained.stats().failures == {"exception": 1, "invalid_output": 1}
