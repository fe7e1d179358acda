"""The engine alone: the walk driven by hand (send outcomes, assert actions), no driver."""

from __future__ import annotations

from typing import Any

import prodwrap as pw
from prodwrap._engine import Attempted, Call, Done, Engine, Fail, Kind, Sleep, Target
from prodwrap._record import CallRecord
from prodwrap.policies.timeout import Timeout


def fallback(name: str) -> Target:
    return Target(lambda x: name, Kind.SYNC, name, True)


def engine(**options: Any) -> Engine:
    options.setdefault("fn", lambda x: x)
    options.setdefault("name", "m")
    return Engine(**options)


def test_success_is_one_call_then_done() -> None:
    e = engine()
    rec = CallRecord(0.0)
    walk = e.walk(rec, 5, None, None, now=100.0)
    call = next(walk)
    assert call == Call(e.primary, 5, None, None)
    assert walk.send(Attempted(True, 10, 100.5, 0.5)) == Done(10)
    assert (rec.attempts, rec.outcome, rec.errors) == (1, "ok", None)


def test_retry_then_fallback_then_fail() -> None:
    fb1, fb2 = fallback("fb1"), fallback("fb2")
    e = engine(retry=pw.Retry(attempts=2, wait=pw.backoff(initial=0.5, jitter=False)), fallbacks=[fb1, fb2])
    rec = CallRecord(0.0)
    walk = e.walk(rec, "x", None, None, now=0.0)
    assert next(walk).target is e.primary  # type: ignore[union-attr]
    assert walk.send(Attempted(False, ConnectionError("a"), 1.0, 1.0)) == Sleep(0.5)
    assert walk.send(Attempted(True, None, 1.5, 1.5)).target is e.primary  # type: ignore[union-attr]
    assert walk.send(Attempted(False, ConnectionError("b"), 2.0, 2.0)) == Call(fb1, "x", None, None)
    assert walk.send(Attempted(False, KeyError("c"), 2.1, 2.1)) == Call(fb2, "x", None, None)
    end = walk.send(Attempted(False, KeyError("d"), 2.2, 2.2))
    assert isinstance(end, Fail) and isinstance(end.error, pw.FallbackExhausted)
    assert [str(e) for e in end.error.exceptions] == ["a", "b", "'c'", "'d'"]
    assert rec.reasons == ["exception"] * 4 and rec.attempts == 2 and rec.slept == 0.5


def test_deadlines_are_sent_with_each_call() -> None:
    e = engine(timeout=Timeout(attempt=0.2, total=1.0), retry=pw.Retry(attempts=3, wait=pw.backoff(initial=0.0)))
    rec = CallRecord(0.0)
    walk = e.walk(rec, 1, None, None, now=50.0)
    assert next(walk) == Call(e.primary, 1, 0.2, 51.0)
    timeout = pw.PredictionTimeout("t", timeout=0.2)
    assert walk.send(Attempted(False, timeout, 50.2, 0.2)) == Sleep(0.0)
    assert walk.send(Attempted(True, None, 50.2, 0.2)) == Call(e.primary, 1, 0.2, 51.0)


def test_caller_deadline_clamps_the_total_and_bounds_fallbacks() -> None:
    fb = fallback("fb")
    e = engine(timeout=Timeout(total=10.0), fallbacks=[fb])
    rec = CallRecord(0.0)
    walk = e.walk(rec, 1, 3.0, None, now=1.0)  # the caller must be done at 3.0
    assert next(walk) == Call(e.primary, 1, None, 3.0)
    assert walk.send(Attempted(False, ValueError(), 2.0, 1.0)) == Call(fb, 1, None, 3.0)


def test_no_retry_sleep_that_reaches_the_deadline() -> None:
    e = engine(timeout=Timeout(total=1.0), retry=pw.Retry(attempts=5, wait=pw.backoff(initial=2.0, jitter=False)))
    walk = e.walk(CallRecord(0.0), 1, None, None, now=0.0)
    next(walk)
    end = walk.send(Attempted(False, ConnectionError("x"), 0.1, 0.1))
    assert isinstance(end, Fail) and isinstance(end.error, ConnectionError)


def test_invalid_input_fails_before_any_call() -> None:
    from prodwrap.policies.validation import compile_spec

    e = engine(validate_input=compile_spec(int, pw.InputValidationError, "m"))
    rec = CallRecord(0.0)
    end = next(e.walk(rec, "nope", None, None, now=0.0))
    assert isinstance(end, Fail) and isinstance(end.error, pw.InputValidationError)
    assert rec.valid_input is False and rec.attempts == 0


def test_a_failure_from_the_success_path_continues_the_walk() -> None:
    e = engine(retry=pw.Retry(attempts=2, wait=pw.backoff(initial=0.25, jitter=False)))
    rec = CallRecord(0.0)
    walk = e.walk(rec, 4, None, ConnectionError("first"), now=7.0, began=6.5)
    assert next(walk) == Sleep(0.25)  # the failed attempt 1 counted; attempt 2 after the wait
    assert walk.send(Attempted(True, None, 7.25, 1.0)) == Call(e.primary, 4, None, None)
    assert rec.attempts == 2


def test_invalid_output_is_a_failed_attempt() -> None:
    def check(out: Any) -> Any:
        raise pw.OutputValidationError([{"type": "t", "loc": (), "msg": "bad"}], model="m")

    fb = fallback("fb")
    e = engine(validate_output=check, fallbacks=[fb])
    rec = CallRecord(0.0)
    walk = e.walk(rec, 1, None, None, now=0.0)
    next(walk)
    assert walk.send(Attempted(True, "garbage", 0.0, 0.0)) == Call(fb, 1, None, None)
    assert rec.reasons == ["invalid_output"]


def test_constant_fallbacks_are_served_by_the_engine() -> None:
    const = Target(lambda: "safe", Kind.CONSTANT, "constant", False)
    e = engine(fallbacks=[const])
    rec = CallRecord(0.0)
    walk = e.walk(rec, 1, None, None, now=0.0)
    next(walk)
    assert walk.send(Attempted(False, RuntimeError(), 0.0, 0.0)) == Done("safe")
    assert (rec.outcome, rec.served_by) == ("fallback", "constant")
