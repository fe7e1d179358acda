"""The engine alone: the walk driven by hand (send clock readings, assert acts), no driver."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

import pytest

import prodwrap as pw
from prodwrap._engine import Act, Engine, Kind, Target
from prodwrap._record import CallRecord
from prodwrap.policies.timeout import Timeout
from prodwrap.policies.validation import compile_spec


def fallback(name: str) -> Target:
    return Target(lambda x: name, Kind.SYNC, name, True)


def engine(**options: Any) -> Engine:
    options.setdefault("fn", lambda x: x)
    options.setdefault("name", "m")
    return Engine(**options)


def attempted(walk: Generator[Act, None, None], rec: CallRecord, ok: bool, result: Any, now: float) -> Act | None:
    """What a driver does after a CALL: the outcome and the clock's reading on the record,
    then the next act (None: the walk is over, ``rec.ok`` says how)."""
    rec.ok, rec.result, rec.now = ok, result, now
    return next(walk, None)


def slept(walk: Generator[Act, None, None], rec: CallRecord, now: float) -> Act | None:
    rec.now = now
    return next(walk, None)


def test_success_is_one_call_then_done() -> None:
    e = engine()
    rec = CallRecord(0.0)
    walk = e.walk(rec, 5, None, None, now=100.0)
    assert next(walk) is Act.CALL
    assert (rec.target, rec.input, rec.seconds, rec.limit) == (e.primary, 5, None, None)
    assert attempted(walk, rec, True, 10, 100.5) is None and rec.ok
    assert (rec.result, rec.attempts, rec.outcome, rec.errors) == (10, 1, "ok", None)


def test_retry_then_fallbacks_then_fail() -> None:
    fb1, fb2 = fallback("fb1"), fallback("fb2")
    e = engine(retry=pw.Retry(attempts=2, wait=pw.backoff(initial=0.5, jitter=False)), fallbacks=[fb1, fb2])
    rec = CallRecord(0.0)
    walk = e.walk(rec, "x", None, None, now=0.0)
    assert next(walk) is Act.CALL and rec.target is e.primary
    assert attempted(walk, rec, False, ConnectionError("a"), 1.0) is Act.SLEEP and rec.wait == 0.5
    assert slept(walk, rec, 1.5) is Act.CALL and rec.target is e.primary
    assert attempted(walk, rec, False, ConnectionError("b"), 2.0) is Act.CALL and rec.target is fb1
    assert (rec.seconds, rec.limit, rec.input) == (None, None, "x")
    assert attempted(walk, rec, False, KeyError("c"), 2.1) is Act.CALL and rec.target is fb2
    assert attempted(walk, rec, False, KeyError("d"), 2.2) is None and not rec.ok
    assert isinstance(rec.result, pw.FallbackExhausted)
    assert [str(e) for e in rec.result.exceptions] == ["a", "b", "'c'", "'d'"]
    assert rec.reasons == ["exception"] * 4 and rec.attempts == 2 and rec.slept == 0.5


def test_deadlines_go_with_each_call() -> None:
    e = engine(timeout=Timeout(attempt=0.2, total=1.0), retry=pw.Retry(attempts=3, wait=pw.backoff(initial=0.0)))
    rec = CallRecord(0.0)
    walk = e.walk(rec, 1, None, None, now=50.0)
    assert next(walk) is Act.CALL and (rec.seconds, rec.limit) == (0.2, 51.0)
    timeout = pw.PredictionTimeout("t", timeout=0.2)
    assert attempted(walk, rec, False, timeout, 50.2) is Act.SLEEP and rec.wait == 0.0
    assert slept(walk, rec, 50.2) is Act.CALL and (rec.seconds, rec.limit) == (0.2, 51.0)
    assert rec.reasons == ["timeout"]


def test_the_callers_deadline_clamps_the_total_and_bounds_fallbacks() -> None:
    fb = fallback("fb")
    e = engine(timeout=Timeout(total=10.0), fallbacks=[fb])
    rec = CallRecord(0.0)
    walk = e.walk(rec, 1, 3.0, None, now=1.0)  # the caller must be done at 3.0
    assert next(walk) is Act.CALL and rec.limit == 3.0
    assert attempted(walk, rec, False, ValueError(), 2.0) is Act.CALL
    assert rec.target is fb and (rec.seconds, rec.limit) == (None, 3.0)


def test_no_retry_sleep_that_reaches_the_deadline() -> None:
    e = engine(timeout=Timeout(total=1.0), retry=pw.Retry(attempts=5, wait=pw.backoff(initial=2.0, jitter=False)))
    rec = CallRecord(0.0)
    walk = e.walk(rec, 1, None, None, now=0.0)
    next(walk)
    assert attempted(walk, rec, False, ConnectionError("x"), 0.1) is None and not rec.ok
    assert isinstance(rec.result, ConnectionError)


def test_an_invalid_input_fails_before_any_call() -> None:
    e = engine(validate_input=compile_spec(int, pw.InputValidationError, "m"))
    rec = CallRecord(0.0)
    assert next(e.walk(rec, "nope", None, None, now=0.0), None) is None and not rec.ok
    assert isinstance(rec.result, pw.InputValidationError)
    assert rec.valid_input is False and rec.attempts == 0


def test_a_failure_from_the_success_path_continues_the_walk() -> None:
    e = engine(retry=pw.Retry(attempts=2, wait=pw.backoff(initial=0.25, jitter=False)))
    rec = CallRecord(0.0)
    walk = e.walk(rec, 4, None, ConnectionError("first"), now=7.0, began=6.5)
    assert next(walk) is Act.SLEEP and rec.wait == 0.25  # attempt 1 failed; attempt 2 after the wait
    assert slept(walk, rec, 7.25) is Act.CALL and rec.input == 4
    assert rec.attempts == 2 and rec.started_at == 6.5


def test_an_invalid_output_is_a_failed_attempt() -> None:
    def check(out: Any) -> Any:
        raise pw.OutputValidationError([{"type": "t", "loc": (), "msg": "bad"}], model="m")

    fb = fallback("fb")
    e = engine(validate_output=check, fallbacks=[fb])
    rec = CallRecord(0.0)
    walk = e.walk(rec, 1, None, None, now=0.0)
    next(walk)
    assert attempted(walk, rec, True, "garbage", 0.0) is Act.CALL and rec.target is fb
    assert rec.reasons == ["invalid_output"]


def test_constant_fallbacks_are_served_by_the_engine() -> None:
    const = Target(lambda: "safe", Kind.CONSTANT, "constant", False)
    e = engine(fallbacks=[const])
    rec = CallRecord(0.0)
    walk = e.walk(rec, 1, None, None, now=0.0)
    next(walk)
    assert attempted(walk, rec, False, RuntimeError(), 0.0) is None and rec.ok
    assert (rec.result, rec.outcome, rec.served_by) == ("safe", "fallback", "constant")


async def _acomplete(prompt: str) -> str:
    raise ConnectionError("upstream down")  # (never reached: nothing awaits it)


def test_a_sync_target_returning_a_coroutine_fails_its_attempt_on_the_general_path() -> None:
    calls: list[str] = []

    def predict(prompt: str) -> Any:
        calls.append(prompt)
        return _acomplete(prompt)

    retried = pw.Retry(attempts=3, on=Exception)  # (retries anything, but not this)
    hedged = pw.ProductionModel(predict, name="h", retry=retried, hedge=pw.Hedge(after=5.0))
    assert hedged._engine.sync_fast is None  # (the walk takes every call)
    with pytest.raises(pw.ConfigurationError, match="h: the predict returned a coroutine"):
        hedged("a")
    with pytest.raises(pw.ConfigurationError, match="returned a coroutine"):
        asyncio.run(hedged.apredict("b"))  # (a sync predict on a worker thread)
    assert calls == ["a", "b"] and hedged.stats().failures == {"exception": 2}
    broken = pw.ProductionModel(lambda x: 1 / 0, name="f", fallback=[predict, pw.Constant(0)])
    assert broken.predict_detailed("c").served_by == "constant"
    p = broken.predict_detailed("d")
    assert "fallback 'predict' returned a coroutine" in str(p.errors[1])
