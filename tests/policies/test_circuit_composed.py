"""The breaker among its neighbours on the seam (DESIGN §1: bulkhead -> retry (budgeted) ->
circuit breaker -> hedge -> rate limit), and the cache in front of them all."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import prodwrap as pw
from prodwrap.testing import FakeClock


def down(x: int) -> int:
    raise ConnectionError("down")


def test_an_open_circuit_gives_the_bulkhead_permit_back(clock: FakeClock) -> None:
    calls: list[int] = []

    def predict(x: int) -> int:
        calls.append(x)
        if x < 0:
            raise ConnectionError
        return x

    model = pw.ProductionModel(
        predict,
        bulkhead=pw.Bulkhead(max_concurrent=1),
        circuit=pw.CircuitBreaker(window=2, open_for=5.0, half_open_calls=1),
        fallback=pw.Constant(0),
    )
    assert model._engine.fast is not None
    assert [model(-1), model(-1)] == [0, 0]
    assert [model(1) for _ in range(5)] == [0] * 5  # refused by the breaker: the one permit comes back each time
    clock.advance(5.0)
    assert model(7) == 7 and calls == [-1, -1, 7]
    assert model.circuit is not None and model.circuit.state == "closed"
    bulkhead = model.stats().bulkhead
    assert bulkhead.in_use == 0 and bulkhead.full == 0  # the max_concurrent=1 permit never leaked


def test_a_probe_the_rate_limit_refuses_is_given_back(clock: FakeClock) -> None:
    def predict(x: int) -> int:
        if x < 0:
            raise ConnectionError
        return x

    model = pw.ProductionModel(
        predict,
        circuit=pw.CircuitBreaker(window=1, open_for=1.0, half_open_calls=1),
        rate_limit=pw.RateLimit(calls=1, per=60.0),  # inside the breaker
    )
    assert model.circuit is not None
    with pytest.raises(ConnectionError):
        model(-1)  # the minute's one permit; the failure opens the circuit
    clock.advance(1.0)
    assert model.circuit.state == "half_open"
    with pytest.raises(pw.RateLimitedError):
        model(5)  # the breaker lets the probe through, the rate limit refuses it
    assert model.circuit.state == "half_open"
    assert model.stats().circuit.probes == 0  # given back, it never ran: not a probe let through
    clock.advance(60.0)  # a permit again: had the probe kept its slot, this call would be refused
    assert model(6) == 6 and model.circuit.state == "closed" and model.stats().circuit.probes == 1


def test_a_hedged_race_is_one_outcome_to_the_breaker() -> None:
    release = threading.Event()
    calls: list[int] = []
    lock = threading.Lock()

    def predict(x: int) -> str:
        with lock:
            calls.append(x)
            n = len(calls)
        if n == 1:
            release.wait(10)  # the first attempt hangs until the call is over: the hedge wins
        return f"attempt {n}"

    model = pw.ProductionModel(
        predict, hedge=pw.Hedge(after=0.01, max_extra=1), circuit=pw.CircuitBreaker(window=2)
    )  # (a hedge waits real seconds, as in its own tests)
    try:
        assert model(1) == "attempt 2"
    finally:
        release.set()
    assert len(calls) == 2 and model.circuit is not None and model.circuit.state == "closed"
    assert model.stats().circuit.calls == 1  # one race of two attempts: one outcome in the window


def test_cache_hits_make_no_attempt_and_never_reach_the_breaker(clock: FakeClock) -> None:
    model = pw.ProductionModel(
        lambda x: x * 2, cache=pw.Cache(maxsize=16), circuit=pw.CircuitBreaker(window=4), fallback=pw.Constant(-1)
    )
    assert model(3) == 6  # a miss: one attempt
    assert model.circuit is not None
    model.circuit.open()
    assert model(3) == 6  # a hit is served before the breaker is asked
    assert model(4) == -1  # a miss is refused
    assert model.stats().circuit.refused == 1


def test_a_retry_budget_and_an_open_circuit_spend_nothing(clock: FakeClock) -> None:
    model = pw.ProductionModel(
        down,
        retry=pw.Retry(attempts=3, on=ConnectionError, budget=pw.RetryBudget(ratio=0.5, min_per_second=1)),
        circuit=pw.CircuitBreaker(window=2),
        fallback=pw.Constant(0),
    )
    assert model(1) == 0  # two failed attempts open it; the third is refused, and not retried
    stats: Any = model.stats()
    assert stats.failures == {"circuit_open": 1, "exception": 2}
    assert model(1) == 0 and model.stats().failures["circuit_open"] == 2
