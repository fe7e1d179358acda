"""Scenarios of resilience4j's own ``CircuitBreakerStateMachineTest``, translated.

Each test is named after the original (resilience4j-circuitbreaker/src/test/java/io/github/
resilience4j/circuitbreaker/internal/CircuitBreakerStateMachineTest.java). The facts carry
over: its breaker has a failure-rate threshold of 50 %, a slow-call threshold of 4 s with a
slow-call rate of 50 %, 4 calls permitted in half-open, a 5 s wait in open, and a window that
decides once 5 calls are in (a count-based window of 5 here). ``tryAcquirePermission`` is the
stage's ``before_attempt``, ``releasePermission`` its ``undo_attempt``, ``onSuccess`` /
``onError`` with a duration its ``after_attempt``; ``transitionToForcedOpenState`` is
``model.circuit.open()`` and ``reset`` is ``model.circuit.close()``. Where resilience4j calls
``transitionToOpenState`` directly, the breaker here is opened the way a real one is: five
failed attempts.
"""

from __future__ import annotations

from typing import Any

import pytest

import prodwrap as pw
from prodwrap._record import CallRecord
from prodwrap.policies._breaker import BreakerStage
from prodwrap.testing import FakeClock


class Breaker:
    """resilience4j's vocabulary over one model's breaker stage."""

    def __init__(self, clock: FakeClock, predict: Any = None) -> None:
        policy = pw.CircuitBreaker(
            failure_rate=0.5, slow_call_rate=0.5, slow_call=4.0, window=5, open_for=5.0, half_open_calls=4
        )
        self.clock = clock
        self.model = pw.ProductionModel(predict or (lambda x: x), name="testName", circuit=policy)
        self.stage = next(s for s in self.model._engine.stages if isinstance(s, BreakerStage))
        self.primary = self.model._engine.primary
        self.circuit = self.model.circuit
        assert self.circuit is not None

    def try_acquire(self) -> CallRecord | None:
        """A permitted attempt's record, or None when refused."""
        rec = CallRecord(0.0)
        refused = self.stage.before_attempt(rec, self.primary)
        assert refused is None or isinstance(refused, pw.CircuitOpenError)
        return rec if refused is None else None

    def acquire(self) -> CallRecord:
        rec = self.try_acquire()
        assert rec is not None, "not permitted"
        return rec

    def release(self, rec: CallRecord) -> None:
        self.stage.undo_attempt(rec, self.primary)

    def on_success(self, seconds: float = 0.0, rec: CallRecord | None = None) -> None:
        self.stage.after_attempt(rec or self.acquire(), self.primary, None, seconds)

    def on_error(self, seconds: float = 0.0, rec: CallRecord | None = None) -> None:
        self.stage.after_attempt(rec or self.acquire(), self.primary, RuntimeError(), seconds)

    def open_by_failures(self) -> None:
        for _ in range(5):
            self.on_error()
        assert self.state == "open"

    def half_open(self) -> None:
        self.open_by_failures()
        self.clock.advance(5.0)
        assert self.state == "half_open"

    @property
    def state(self) -> str:
        return self.circuit.state  # type: ignore[union-attr]

    @property
    def stats(self) -> Any:
        return self.model.stats().circuit


def test_shouldThrowCallNotPermittedExceptionWhenStateIsOpen(clock: FakeClock) -> None:
    cb = Breaker(clock)
    cb.open_by_failures()
    with pytest.raises(pw.CircuitOpenError):
        cb.model(1)
    assert cb.stats.refused == 1


def test_shouldThrowCallNotPermittedExceptionWhenStateIsForcedOpen(clock: FakeClock) -> None:
    cb = Breaker(clock)
    cb.circuit.open()  # type: ignore[union-attr]
    with pytest.raises(pw.CircuitOpenError):
        cb.model(1)
    assert cb.stats.refused == 1


def test_shouldIncreaseCounterOnReleasePermission(clock: FakeClock) -> None:
    cb = Breaker(clock)
    cb.half_open()
    held = [cb.try_acquire() for _ in range(6)]
    assert [rec is not None for rec in held] == [True] * 4 + [False] * 2
    cb.release(held[0])  # type: ignore[arg-type]
    assert cb.try_acquire() is not None


def test_shouldThrowCallNotPermittedExceptionWhenNotFurtherTestCallsArePermitted(clock: FakeClock) -> None:
    cb = Breaker(clock)
    cb.half_open()
    for _ in range(4):
        cb.acquire()
    refused_before = cb.stats.refused
    assert cb.try_acquire() is None
    assert cb.stats.refused == refused_before + 1


def test_shouldOnlyPermitFourCallsInHalfOpenState(clock: FakeClock) -> None:
    cb = Breaker(clock)
    cb.half_open()
    permitted = [cb.try_acquire() for _ in range(6)]
    assert [rec is not None for rec in permitted] == [True] * 4 + [False] * 2
    for rec in permitted[:4]:
        cb.on_error(rec=rec)  # the four probes fail: open again
    assert cb.state == "open"
    clock.advance(5.0)
    assert [cb.try_acquire() is not None for _ in range(6)] == [True] * 4 + [False] * 2


def test_shouldOpenAfterFailureRateThresholdExceeded(clock: FakeClock) -> None:
    cb = Breaker(clock)
    for _ in range(3):
        cb.on_error()
        assert cb.state == "closed"
    cb.on_success()
    assert cb.state == "closed" and cb.stats.failure_rate is None  # 4 < the 5 calls it waits for
    cb.on_success()  # the window is full, 3 of 5 failed
    assert cb.state == "open"
    stats = cb.stats
    assert (stats.calls, stats.failure_rate, stats.refused) == (5, 0.6, 0)
    assert cb.try_acquire() is None and cb.stats.refused == 1


def test_shouldOpenAfterSlowCallRateThresholdExceeded(clock: FakeClock) -> None:
    cb = Breaker(clock)
    cb.on_error(5.0)  # slow
    cb.on_success(5.0)  # slow
    cb.on_error(0.1)
    cb.on_success(0.1)
    assert cb.state == "closed"
    cb.on_success(5.0)  # slow: 3 of 5, while only 2 of 5 failed
    assert cb.state == "open"
    assert (cb.stats.calls, cb.stats.slow_call_rate, cb.stats.failure_rate) == (5, 0.6, 0.4)


def test_shouldOpenAfterSlowCallRateThresholdExceededUsingMockClock(clock: FakeClock) -> None:
    def takes(seconds: int) -> int:
        clock.advance(seconds)  # the attempt's duration, measured on prodwrap's clock
        return seconds

    cb = Breaker(clock, takes)
    for i, seconds in enumerate((5, 5, 1, 1), start=1):
        cb.model(seconds)
        assert (cb.stats.calls, cb.state) == (i, "closed")
    cb.model(5)
    assert cb.state == "open"
    assert (cb.stats.calls, cb.stats.slow_call_rate) == (5, 0.6)


def test_shouldTransitionToHalfOpenAfterWaitDuration(clock: FakeClock) -> None:
    cb = Breaker(clock)
    cb.open_by_failures()
    assert cb.try_acquire() is None
    clock.advance(3.0)
    assert cb.state == "open"  # 3 of the 5 seconds
    assert cb.try_acquire() is None
    assert cb.stats.refused == 2
    clock.advance(3.0)
    assert cb.try_acquire() is not None
    assert cb.state == "half_open"


def test_shouldTransitionBackToOpenStateWhenFailureRateIsAboveThreshold(clock: FakeClock) -> None:
    cb = Breaker(clock)
    cb.half_open()
    cb.on_error()
    cb.on_error()
    cb.on_success()
    assert cb.state == "half_open"  # 3 of the 4 probes in
    cb.on_error()  # 3 of 4 failed
    assert cb.state == "open" and cb.stats.trips == 2


def test_shouldTransitionBackToOpenStateWhenSlowCallRateIsAboveThreshold(clock: FakeClock) -> None:
    cb = Breaker(clock)
    cb.half_open()
    for _ in range(3):
        cb.on_success(5.0)
    cb.on_success(1.0)  # no failure, but 3 of 4 probes slow
    assert cb.state == "open"


def test_shouldTransitionBackToClosedStateWhenFailureIsBelowThreshold(clock: FakeClock) -> None:
    cb = Breaker(clock)
    cb.half_open()
    cb.on_error()
    for _ in range(3):
        cb.on_success()
    assert cb.state == "closed"  # 1 of 4 failed
    assert (cb.stats.calls, cb.stats.failure_rate) == (0, None)  # an empty window
    cb.on_success()
    assert cb.stats.calls == 1


def test_shouldForceOpenCircuitBreaker(clock: FakeClock) -> None:
    cb = Breaker(clock)
    cb.circuit.open()  # type: ignore[union-attr]
    assert cb.try_acquire() is None
    clock.advance(6.0)  # longer than the 5 s wait: a forced-open circuit does not go half-open
    assert cb.try_acquire() is None
    assert cb.state == "open" and cb.stats.refused == 2


def test_shouldResetToClosedState(clock: FakeClock) -> None:
    cb = Breaker(clock)
    cb.open_by_failures()
    cb.circuit.close()  # type: ignore[union-attr]
    assert cb.state == "closed" and cb.try_acquire() is not None
