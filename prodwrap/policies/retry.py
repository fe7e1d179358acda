"""Retries: which failures to retry, how long to wait, when to stop.

Waits and stops are tenacity strategies (``pw.backoff`` builds one; any tenacity wait or
stop works, combined with ``+``, ``|`` and ``&`` as tenacity allows). They are consulted only
after an attempt has failed, so the success path never touches them.
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from prodwrap._log import Throttle, logger
from prodwrap._masking import NO_MASKING, Masking

if TYPE_CHECKING:
    import tenacity

    from prodwrap._record import CallRecord

from prodwrap.errors import (
    BudgetExceededError,
    BulkheadFullError,
    CircuitOpenError,
    ConfigurationError,
    InputValidationError,
    OutputValidationError,
    ProdwrapError,
    RateLimitedError,
)
from prodwrap.policies._numbers import amount, count, seconds
from prodwrap.policies._transient import is_transient, retry_after
from prodwrap.policies.retry_budget import RetryBudget

# prodwrap's own refusals: retrying them cannot help.
NEVER_RETRIED: tuple[type[Exception], ...] = (
    ConfigurationError,  # (a sync predict's coroutine: a misconfiguration is no better on a second try)
    InputValidationError,
    CircuitOpenError,
    BudgetExceededError,
    BulkheadFullError,
    RateLimitedError,
)

ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]
RetryOn = ExceptionTypes | Callable[[BaseException], bool]
WaitStrategy = Callable[["tenacity.RetryCallState"], float]
StopStrategy = Callable[["tenacity.RetryCallState"], bool]

MAX_ATTEMPTS = 100  # a typo guard: attempts above this need stop= instead

log = logger("retry")
_faults = Throttle(logger("retry"))


def _uniform() -> float:
    """A draw from [0, 1): ``random`` loads with the first jittered wait, not with prodwrap."""
    from random import random

    return random()


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff: ``initial * multiplier ** (n - 1)`` seconds, capped at ``maximum``.

    With ``jitter=True`` the wait is drawn uniformly from ``[0, that]`` ("full jitter"), which
    spreads out retries of many clients hitting the same dependency. It computes what
    tenacity's ``wait_random_exponential`` (or ``wait_exponential`` without jitter) computes,
    works wherever a tenacity wait strategy does, and adds to other tenacity waits with ``+``.
    """

    initial: float = 0.05
    maximum: float = 1.0
    multiplier: float = 2.0
    jitter: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "initial", seconds("backoff", "initial", self.initial, zero=True))
        object.__setattr__(self, "maximum", seconds("backoff", "maximum", self.maximum, zero=True))
        object.__setattr__(self, "multiplier", amount("backoff", "multiplier", self.multiplier, least=1))

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        return self.plain(retry_state.attempt_number)

    def plain(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1 = the first), in seconds.

        The formula of tenacity's ``wait_exponential`` (capped, overflow-safe) and, with
        jitter, ``wait_random_exponential`` (uniform from 0), computed here because asking
        tenacity means building its retry state first: a few microseconds a retry (a test
        holds the two to the same values).
        """
        high = self.high(attempt)
        return _uniform() * high if self.jitter else high

    def high(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` without jitter (with it, the
        most it may be)."""
        try:
            high = min(self.initial * self.multiplier ** (attempt - 1), self.maximum)
        except OverflowError:
            high = self.maximum
        return max(0.0, high)  # (finite: the three are, and an overflow is the maximum)

    def __add__(self, other: WaitStrategy) -> WaitStrategy:
        from tenacity.wait import wait_combine

        return wait_combine(self, other)

    def __radd__(self, other: WaitStrategy | int) -> WaitStrategy:
        if isinstance(other, int) and other == 0:  # sum() starts from 0
            return self
        from tenacity.wait import wait_combine

        return wait_combine(other, self)  # type: ignore[arg-type]

    def describe(self) -> dict[str, Any]:
        return {"initial": self.initial, "maximum": self.maximum, "multiplier": self.multiplier, "jitter": self.jitter}


def backoff(initial: float = 0.05, maximum: float = 1.0, multiplier: float = 2.0, jitter: bool = True) -> Backoff:
    """Exponential backoff with optional full jitter (seconds); see :class:`Backoff`."""
    return Backoff(initial=initial, maximum=maximum, multiplier=multiplier, jitter=jitter)


def _is_types(on: object) -> bool:
    if isinstance(on, type):
        return issubclass(on, BaseException)
    return isinstance(on, tuple) and bool(on) and all(isinstance(t, type) and issubclass(t, BaseException) for t in on)


@dataclass(frozen=True, slots=True)
class Retry:
    """Retry policy for the primary's attempts.

    Args:
        attempts: the most attempts in all, the first included (``retry=3`` is
            ``Retry(attempts=3)``). ``None`` means no count limit: then ``stop=`` is required.
        on: exception types to retry, or a predicate ``exc -> bool``. The default (None)
            retries transient failures only (:func:`is_transient`). prodwrap's own refusals
            (invalid input, open circuit, exhausted budget, full bulkhead, rate limited) are
            never retried;
            an invalid output only when ``on`` names ``OutputValidationError`` (or a
            predicate says so).
        wait: seconds between attempts: ``pw.backoff(...)`` (the default) or any tenacity
            wait strategy. An exception with a ``retry_after`` attribute (seconds) makes the
            wait at least that long.
        stop: any tenacity stop strategy, checked in addition to ``attempts``.
        max_retry_after: the longest ``retry_after`` honoured (seconds); a longer one,
            infinity or NaN means "not worth retrying within this call": no retry (a
            negative one asks no wait).
        budget: a :class:`RetryBudget` capping retries to a share of recent calls (None: no
            cap but ``attempts``/``stop``); an exhausted budget means no retry.

    A predicate or strategy that raises is a configuration bug: it is logged and the call
    goes on as though it said "no retry".
    """

    attempts: int | None = 3
    on: RetryOn | None = None
    wait: WaitStrategy = field(default_factory=backoff)
    stop: StopStrategy | None = None
    max_retry_after: float = 60.0
    budget: RetryBudget | None = None
    _types: tuple[type[BaseException], ...] | None = field(default=None, init=False, repr=False, compare=False)
    # ``wait.plain`` when it is a Backoff and no stop= needs tenacity's retry state.
    _plain: Any = field(default=None, init=False, repr=False, compare=False)
    # Then also its waits without jitter, after each failed attempt but the last (``_jitter``:
    # the draw from [0, 1) each is scaled by, None without jitter): a retry's wait is one lookup.
    _highs: tuple[float, ...] | None = field(default=None, init=False, repr=False, compare=False)
    _jitter: Callable[[], float] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts is None:
            if self.stop is None:
                raise ConfigurationError("Retry(attempts=None) retries forever: give stop= as well")
        else:
            object.__setattr__(self, "attempts", count("Retry", "attempts", self.attempts))
            if self.attempts > MAX_ATTEMPTS:
                raise ConfigurationError(
                    f"Retry.attempts={self.attempts} is more than {MAX_ATTEMPTS}; use stop= for long retrying"
                )
        if self.on is not None and not (_is_types(self.on) or (callable(self.on) and not isinstance(self.on, type))):
            raise ConfigurationError(f"Retry.on takes exception types or a predicate, got {self.on!r}")
        if not callable(self.wait):
            raise ConfigurationError(f"Retry.wait must be a tenacity wait strategy, got {self.wait!r}")
        if self.stop is not None and not callable(self.stop):
            raise ConfigurationError(f"Retry.stop must be a tenacity stop strategy, got {self.stop!r}")
        if _is_types(self.on):
            types = self.on if isinstance(self.on, tuple) else (self.on,)
            object.__setattr__(self, "_types", types)
        if self.stop is None and isinstance(self.wait, Backoff):
            object.__setattr__(self, "_plain", self.wait.plain)
            if self.attempts is not None and type(self.wait) is Backoff:  # (a subclass's plain() is asked)
                highs = tuple(self.wait.high(n) for n in range(1, self.attempts))  # (finite: see high())
                object.__setattr__(self, "_highs", highs)
                if self.wait.jitter:  # (random loads with the first jittered policy, not with prodwrap)
                    from random import random

                    object.__setattr__(self, "_jitter", random)
        object.__setattr__(
            self, "max_retry_after", seconds("Retry", "max_retry_after", self.max_retry_after, zero=True)
        )
        if self.budget is not None and not isinstance(self.budget, RetryBudget):
            raise ConfigurationError(f"Retry.budget takes a pw.RetryBudget(...), got {self.budget!r}")

    @classmethod
    def coerce(cls, value: Retry | int | None) -> Retry | None:
        """``retry=`` as given to a model: an attempt count, a ``Retry`` or None."""
        if value is None or isinstance(value, Retry):
            return value
        try:
            attempts = count("retry=", "attempts", value)
        except ConfigurationError:
            what = "an attempt count >= 1 (1: no retry)" if _whole(value) else "an int or pw.Retry(...)"
            raise ConfigurationError(f"retry= takes {what}, got {value!r}") from None
        return cls(attempts=attempts)

    def retries(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a failure this policy retries (the attempt count aside)."""
        if isinstance(exc, ProdwrapError):
            if isinstance(exc, NEVER_RETRIED):
                return False
            if isinstance(exc, OutputValidationError) and self._types is not None:
                return any(issubclass(t, OutputValidationError) for t in self._types)
        if self._types is not None:
            return isinstance(exc, self._types)
        on = self.on
        if on is None:
            return is_transient(exc)
        return bool(on(exc))  # type: ignore[operator]

    def delay(
        self, rec: CallRecord, exc: BaseException, now: float, model: str, masking: Masking = NO_MASKING
    ) -> float | None:
        """Seconds to wait before the next attempt after ``exc``, or None for no retry.

        Args:
            rec: the call's record (attempts so far, when it started, time slept, deadline).
            now: the clock's monotonic reading.
            model: the model's name, for log lines.
            masking: what a log line may show of the call's input (its sensitive values masked).
        """
        reason = rec.reasons[-1] if rec.reasons else None
        return self.wait_after(
            rec.attempts, exc, now, model, rec.started_at, rec.slept, rec.deadline, reason, rec.input, masking
        )

    def wait_after(
        self,
        attempts: int,
        exc: BaseException,
        now: float,
        model: str,
        started_at: float,
        slept: float,
        deadline: float | None,
        reason: str | None,
        value: Any = None,
        masking: Masking = NO_MASKING,
    ) -> float | None:
        """:meth:`delay`, from the call so far: ``attempts`` made, the clock's reading when the
        first began (``started_at``), seconds ``slept`` between them, the call's ``deadline``
        (None: none) and the ``reason`` of the last failure, for the log line, where the
        sensitive values of the call's input ``value`` are masked (``masking``) (the compiled
        failure path asks this with no record)."""
        if self.attempts is not None and attempts >= self.attempts:
            return None
        try:
            types = self._types
            if types is not None and not isinstance(exc, ProdwrapError):  # retries()' common case, inline
                if not isinstance(exc, types):
                    return None
            elif not self.retries(exc):
                return None
            highs = self._highs
            plain = self._plain
            if highs is not None:
                draw = self._jitter
                delay = highs[attempts - 1] if draw is None else draw() * highs[attempts - 1]
            elif plain is not None:
                delay = float(plain(attempts))
            else:
                state = retry_state(start=started_at, attempt=attempts, exc=exc, now=now, idle_for=slept)
                if self.stop is not None and self.stop(state):
                    return None
                delay = float(self.wait(state))
            if not math.isfinite(delay):  # NaN or forever: a wait gone wrong, said loudly (not a wait of 0 s)
                raise ValueError(f"its wait gave {delay!r} s, not a finite number of seconds")
            after = retry_after(exc)  # (one that raises is read here, as the default predicate reads it)
        except Exception as fault:  # a bug in the policy's own callables: no retry, said loudly
            _faults.warning(
                f"{model}:retry",
                "%s: the retry policy raised %s: %s (no retry)",
                model,
                type(fault).__name__,
                fault,
                exc_info=fault,
                extra={"model": model, "reason": "retry_policy_error"},
                masked=partial(masking.mask_for, value),
            )
            return None
        if delay < 0:
            delay = 0.0
        if after is not None:
            if math.isnan(after) or after > self.max_retry_after:  # longer than this call will wait
                return None
            delay = max(delay, after)  # a negative one (-inf too) asks for no wait
        # Sleeping past the deadline only to time out: move on (or fail) now instead.
        if deadline is not None and now + delay >= deadline:
            return None
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s: attempt %d failed (%s); retrying in %.3g s",
                model,
                attempts,
                type(exc).__name__,
                delay,
                extra={"model": model, "reason": reason},
            )
        return delay

    def describe(self) -> dict[str, Any]:
        on = self.on
        if on is None:
            on_desc: Any = "transient"
        elif isinstance(on, type | tuple):
            names = on if isinstance(on, tuple) else (on,)
            on_desc = [t.__name__ for t in names]
        else:
            on_desc = getattr(on, "__qualname__", repr(on))
        wait = self.wait.describe() if isinstance(self.wait, Backoff) else repr(self.wait)
        return {
            "attempts": self.attempts,
            "on": on_desc,
            "wait": wait,
            "stop": None if self.stop is None else repr(self.stop),
            "max_retry_after": self.max_retry_after,
            "budget": None if self.budget is None else self.budget.describe(),
        }


def retry_state(
    *, start: float, attempt: int, exc: BaseException, now: float, idle_for: float
) -> tenacity.RetryCallState:
    """A tenacity ``RetryCallState`` describing the failed attempt ``attempt`` (slow path only)."""
    import tenacity  # the first failure imports it (the success path never does)

    state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.start_time = start
    state.attempt_number = attempt
    future = tenacity.Future(attempt)
    future.set_exception(exc)
    state.outcome = future
    state.outcome_timestamp = now
    state.idle_for = idle_for
    return state


__all__ = ["NEVER_RETRIED", "Backoff", "Retry", "backoff", "retry_state"]


def _whole(value: object) -> bool:
    """Whether ``value`` is a whole number (not a bool)."""
    try:
        operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return False
    return not isinstance(value, bool)
