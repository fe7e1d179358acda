"""The decision engine: every decision a call needs, in pure code with no I/O.

The drivers (``_drivers.py``) ask the engine what to do and carry it out: they alone call,
wait, sleep and await. The engine never reads a clock (the driver passes ``now``), never
sleeps and never calls user code except the policies' own strategies (tenacity waits and
stops, retry predicates), which it consults only after a failure.

A decision after a failure is a ``Step``: ``(RETRY, seconds to wait)``, ``(NEXT, fallback
target)`` or ``(FAIL, exception to raise)``.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal

from prodwrap._stats import StatsRecorder
from prodwrap.errors import (
    CircuitOpenError,
    FallbackExhausted,
    InputValidationError,
    OutputValidationError,
    PredictionTimeout,
)
from prodwrap.policies.retry import Retry, retry_state
from prodwrap.policies.timeout import Timeout

if TYPE_CHECKING:
    from prodwrap._record import CallRecord
    from prodwrap.drift._monitor import DriftMonitor

RETRY: Final = 0
NEXT: Final = 1
FAIL: Final = 2
Step = tuple[int, Any]

# What the walk (Engine.walk) asks of a driver: CALL a target under a deadline, SLEEP, or
# end with DONE (the output) or FAIL (the exception to raise).
CALL: Final = 3
SLEEP: Final = 4
DONE: Final = 5
Action = tuple[int, Any, float | None]
# What a driver sends back: (succeeded, output or exception, clock now, real seconds elapsed).
Outcome = tuple[bool, Any, float, float]

# How a target is invoked. SYNC: a plain function; ASYNC: a coroutine function; MODEL: a
# ProductionModel (applies its own policies); CONSTANT: a pre-validated value (fn() serves it).
SYNC: Final = 0
ASYNC: Final = 1
MODEL: Final = 2
CONSTANT: Final = 3


class Target:
    """The primary or one fallback, compiled: how to invoke it and what it is called."""

    __slots__ = ("fn", "kind", "name", "validated")

    def __init__(self, fn: Any, kind: int, name: str, validated: bool) -> None:
        self.fn = fn
        self.kind = kind
        self.name = name
        self.validated = validated  # whether the model's output validation applies


def is_async_callable(fn: object) -> bool:
    """Whether calling ``fn`` returns a coroutine (coroutine functions, partials of them,
    instances whose ``__call__`` is a coroutine function)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    return not inspect.isroutine(fn) and inspect.iscoroutinefunction(type(fn).__call__)


def reason_of(exc: BaseException) -> str:
    """The failure reason recorded in stats and metrics for an exception."""
    if isinstance(exc, PredictionTimeout):
        return "timeout"
    if isinstance(exc, OutputValidationError):
        return "invalid_output"
    if isinstance(exc, CircuitOpenError):
        return "circuit_open"
    if isinstance(exc, InputValidationError):
        return "invalid_input"
    return "exception"


class Engine:
    """A model's compiled pipeline and the decisions taken along it (immutable)."""

    __slots__ = (
        "attempt_timeout",
        "drift",
        "fallbacks",
        "fast",
        "is_async",
        "name",
        "on_invalid",
        "primary",
        "primary_fn",
        "retry",
        "stats",
        "timed",
        "total_timeout",
        "validate_fast",
        "validate_input",
        "validate_output",
    )

    def __init__(
        self,
        *,
        fn: Callable[..., Any],
        name: str,
        is_async: bool,
        validate_input: Callable[[Any], Any] | None,
        validate_fast: Callable[[Any], Any] | None,
        validate_output: Callable[[Any], Any] | None,
        timeout: Timeout | None,
        retry: Retry | None,
        fallbacks: Sequence[Target],
        on_invalid: Literal["raise", "fallback"],
        drift: DriftMonitor | None = None,
    ) -> None:
        self.name = name
        self.is_async = is_async
        self.primary = Target(fn, ASYNC if self.is_async else SYNC, "primary", True)
        self.primary_fn = fn
        self.validate_input = validate_input
        # Tried first on the success path; may raise anything, the general walk then decides.
        self.validate_fast = validate_fast
        self.validate_output = validate_output
        self.attempt_timeout = None if timeout is None else timeout.attempt
        self.total_timeout = None if timeout is None else timeout.total
        self.timed = timeout is not None
        self.retry = retry
        self.fallbacks = tuple(fallbacks)
        self.on_invalid = on_invalid
        self.drift = drift
        self.stats = StatsRecorder()
        # The compiled success path the drivers run inline when no caller's deadline applies:
        # the first attempt, limited by the nearer of the attempt and total timeouts (if any).
        limits = [t for t in (self.attempt_timeout, self.total_timeout) if t is not None]
        self.fast: tuple[Any, ...] = (
            validate_fast,
            fn,
            validate_output,
            self.stats.ring,
            self.stats.seq,
            drift,
            min(limits, default=None),
        )

    # -- deadlines -------------------------------------------------------------------------

    def begin(self, rec: CallRecord, now: float, outer: float | None) -> None:
        """Fix the call's overall deadline: its own total timeout, clamped to the caller's."""
        rec.started_at = now
        deadline = outer
        if self.total_timeout is not None:
            own = now + self.total_timeout
            deadline = own if deadline is None else min(deadline, own)
        rec.deadline = deadline

    def attempt_deadline(self, rec: CallRecord, now: float) -> float | None:
        """When the next attempt must end: the nearer of attempt timeout and call deadline."""
        deadline = rec.deadline
        if self.attempt_timeout is not None:
            own = now + self.attempt_timeout
            if deadline is None or own < deadline:
                return own
        return deadline

    def timeout_error(self, rec: CallRecord, seconds: float) -> PredictionTimeout:
        what = f"primary attempt {rec.attempts}" if rec.phase < 0 else f"fallback {self.fallbacks[rec.phase].name}"
        return PredictionTimeout(f"{self.name}: {what} timed out after {seconds:.3g} s", timeout=seconds)

    def first_timeout(self, seconds: float) -> PredictionTimeout:
        """The timeout of the first attempt of the primary (from the success path)."""
        return PredictionTimeout(f"{self.name}: primary attempt 1 timed out after {seconds:.3g} s", timeout=seconds)

    # -- decisions after a failure ---------------------------------------------------------

    def on_invalid_input(self, rec: CallRecord, error: InputValidationError) -> Step:
        rec.fail(error, "invalid_input")
        if self.on_invalid == "fallback" and self.fallbacks:
            rec.phase = 0
            return NEXT, self.fallbacks[0]
        return FAIL, error

    def on_failure(self, rec: CallRecord, exc: Exception, now: float, elapsed: float) -> Step:
        """An attempt (or a fallback) failed with ``exc``: retry, move on, or give up.

        Args:
            now: the clock's monotonic reading.
            elapsed: real seconds since the call started (dates the start for tenacity).
        """
        rec.fail(exc, reason_of(exc))
        if rec.phase < 0 and self.retry is not None:
            delay = self._retry_delay(rec, exc, now, elapsed)
            if delay is not None:
                return RETRY, delay
        following = rec.phase + 1
        if following < len(self.fallbacks):
            rec.phase = following
            return NEXT, self.fallbacks[following]
        if not self.fallbacks:
            return FAIL, exc  # the user's own exception, unchanged
        errors = rec.errors or []
        return FAIL, FallbackExhausted(
            f"{self.name}: the primary and {len(self.fallbacks)} fallback(s) all failed", errors
        )

    def _retry_delay(self, rec: CallRecord, exc: Exception, now: float, elapsed: float) -> float | None:
        retry = self.retry
        assert retry is not None
        if not retry.retries(exc):
            return None
        if retry.attempts is not None and rec.attempts >= retry.attempts:
            return None
        if rec.started_at == 0.0:
            rec.started_at = now - elapsed
        state = retry_state(start=rec.started_at, attempt=rec.attempts, exc=exc, now=now, idle_for=rec.slept)
        if retry.stop is not None and retry.stop(state):
            return None
        delay = float(retry.wait(state))
        after = getattr(exc, "retry_after", None)
        if isinstance(after, int | float) and not isinstance(after, bool) and after > delay:
            delay = float(after)
        if not math.isfinite(delay) or delay < 0:
            delay = 0.0
        # Sleeping past the deadline only to time out: move on (or fail) now instead.
        if rec.deadline is not None and now + delay >= rec.deadline:
            return None
        return delay

    # -- the walk ------------------------------------------------------------------------------

    def walk(
        self,
        rec: CallRecord,
        target: Target,
        outer: float | None,
        failure: Exception | None,
        now: float,
        elapsed: float,
    ) -> Generator[Action, Outcome, None]:
        """Attempts, retries and fallbacks until a result or a final error, as a generator.

        It yields what to do (``CALL``, ``SLEEP``, then ``DONE`` or ``FAIL``) and is sent what
        came of it; it never calls, sleeps or reads a clock itself, so one walk serves the sync
        and the async driver alike (as tenacity's ``iter()`` does).

        Args:
            target: what to try first (the primary, or a fallback for an invalid input).
            outer: the caller's deadline (plain fallbacks run under it).
            failure: an attempt of the primary that already failed (from the fast path).
            now: the clock's monotonic reading. elapsed: real seconds since the call began.
        """
        timed = rec.deadline is not None or self.attempt_timeout is not None
        while True:
            if failure is None:
                if target.kind == CONSTANT:
                    ok, out = True, target.fn()
                else:
                    deadline = outer
                    if target is self.primary:
                        rec.attempts += 1
                        if timed:
                            deadline = self.attempt_deadline(rec, now)
                    ok, out, now, elapsed = yield CALL, target, deadline
                if ok and target.validated and self.validate_output is not None:
                    try:
                        out = self.validate_output(out)
                    except Exception as exc:  # a bad output is a failed attempt
                        ok, out = False, exc
                if ok:
                    self.served(rec, target)
                    yield DONE, out, None
                    return
                failure = out
            kind, arg = self.on_failure(rec, failure, now, elapsed)
            failure = None
            if kind == RETRY:
                rec.slept += arg
                _, _, now, elapsed = yield SLEEP, arg, None
            elif kind == NEXT:
                target = arg
            else:
                yield FAIL, arg, None
                return

    # -- results -----------------------------------------------------------------------------

    def served(self, rec: CallRecord, target: Target) -> None:
        """Record who served the call (nothing to record when the primary did)."""
        if rec.phase >= 0:
            rec.outcome = "fallback"
            rec.served_by = target.name

    def describe(self) -> dict[str, Any]:
        return {
            "timeout": {"attempt": self.attempt_timeout, "total": self.total_timeout} if self.timed else None,
            "retry": None if self.retry is None else self.retry.describe(),
            "fallback": [t.name for t in self.fallbacks],
            "on_invalid": self.on_invalid,
        }
