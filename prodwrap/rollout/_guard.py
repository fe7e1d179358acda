"""The canary's guard: when the candidate is worse than the primary, on the same traffic.

:class:`Guard` is the policy (``pw.Guard``); :func:`judge` is its verdict on the counts so far,
pure arithmetic that a stage calls under its lock.

The error-rate test is Fisher's exact test, one-sided: given the errors of both variants
together, how likely is it that the candidate got at least as many of them as it did if both
fail equally often (the hypergeometric upper tail)? It is exact at any count, so it holds at
``min_calls=100`` with error rates near zero, where the two-proportion z-test's normal
approximation overstates significance (3 errors in 100 calls against a primary failing 1 % of
the time: z = 1.74 "significant", while even a known 1 % rate gives 3 or more errors 8 % of the
time). The guard looks again as calls come in (every ``min_calls // 10`` candidate calls), and
each look would give noise another chance; so look ``k`` tests at ``0.05 * 6 / (pi**2 * k**2)``
(the looks' levels add up to at most 0.05): a candidate as good as the primary is rolled back
with probability at most 5 % however long the canary runs, and the first look, at
``min_calls``, is significant at 97 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from prodwrap.policies._numbers import count, fraction, seconds

RUNNING, INCONCLUSIVE, ROLLED_BACK, PROMOTED = "running", "inconclusive", "rolled_back", "promoted"
ALPHA = 0.05  # the chance, over every look together, that noise rolls back a good candidate


def _fraction(name: str, value: object) -> float:
    return fraction("Guard", name, value, zero=True, one=False)


def _count(name: str, value: object) -> int:
    return count("Guard", name, value)


@dataclass(frozen=True, slots=True)
class Guard:
    """When a canary's candidate is taken out of traffic automatically (``Canary(guard=)``).

    Args:
        max_error_rate: the candidate's error rate (failed attempts / attempts) it must exceed
            for a breach, as a fraction in [0, 1); its excess over the primary's must be
            significant too (one-sided Fisher exact test, see the module's docstring).
        max_p95_latency: seconds (prodwrap's clock, per attempt): a breach once ``min_calls``
            candidate attempts are in and their p95 is above it. None: no latency limit.
        max_mismatch_rate: needs shadow comparisons, which a canary does not make (one variant
            runs per call): given to a canary, it is a ``ConfigurationError``. Run a
            ``pw.Shadow`` of the candidate and read ``model.shadow_report()`` for agreement.
        min_calls: candidate attempts before any verdict but ``max_consecutive_failures``
            (until then the state is ``"inconclusive"``); with ``steps``, the attempts each
            step must see before the next.
        max_consecutive_failures: a breach when the candidate fails this many attempts in a
            row, whatever ``min_calls`` says. None: no such limit.

    Raises:
        ConfigurationError: a rate outside [0, 1), a latency that is not a positive number of
            seconds, a count below 1.
    """

    max_error_rate: float
    max_p95_latency: float | None = None
    max_mismatch_rate: float | None = None
    min_calls: int = 100
    max_consecutive_failures: int | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "max_error_rate", _fraction("max_error_rate", self.max_error_rate))
        latency = self.max_p95_latency
        if latency is not None:
            set_(self, "max_p95_latency", seconds("Guard", "max_p95_latency", latency))
        if self.max_mismatch_rate is not None:
            set_(self, "max_mismatch_rate", _fraction("max_mismatch_rate", self.max_mismatch_rate))
        set_(self, "min_calls", _count("min_calls", self.min_calls))
        if self.max_consecutive_failures is not None:
            set_(self, "max_consecutive_failures", _count("max_consecutive_failures", self.max_consecutive_failures))

    @property
    def look_every(self) -> int:
        """Candidate attempts between two looks of the error-rate test, after ``min_calls``."""
        return max(1, self.min_calls // 10)

    def describe(self) -> dict[str, Any]:
        return {
            "max_error_rate": self.max_error_rate,
            "max_p95_latency": self.max_p95_latency,
            "max_mismatch_rate": self.max_mismatch_rate,
            "min_calls": self.min_calls,
            "max_consecutive_failures": self.max_consecutive_failures,
            "test": "one-sided Fisher exact, alpha 0.05 over all looks",
        }


class Verdict(NamedTuple):
    """What the guard says: ``state`` (``"running"``, ``"inconclusive"`` or
    ``"rolled_back"``), why a breach is one, and the error-rate test's p-value (None: not run)."""

    state: str
    reason: str | None
    p_value: float | None


def level(look: int) -> float:
    """The significance level of look ``look`` (1-based): the looks' levels sum to ``ALPHA``."""
    return ALPHA * 6 / (math.pi**2 * look * look)


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_greater(errors: int, calls: int, other_errors: int, other_calls: int) -> float:
    """One-sided Fisher exact p-value that the first group fails more often than the other:
    P(X >= errors) for X hypergeometric (the errors of both, drawn into ``calls`` of them).

    Each tail is summed from its end nearest the mean, where its largest term is: above the
    mean the upper tail itself, below it one minus the lower tail. (Summed from ``errors``
    upwards when that is far below the mean, the first term underflows to 0.0 and so would
    the p-value: a candidate far better than the primary judged significantly worse.)"""
    total, failed = calls + other_calls, errors + other_errors
    low, top = max(0, calls - (total - failed)), min(failed, calls)
    if errors <= low:
        return 1.0  # no fewer errors were possible
    if errors * total > calls * failed:  # above the mean: the upper tail's terms only shrink
        return min(1.0, _hypergeometric_tail(errors, top, 1, calls, failed, total))
    return max(0.0, 1.0 - _hypergeometric_tail(errors - 1, low, -1, calls, failed, total))


def _hypergeometric_tail(x: int, end: int, step: int, calls: int, failed: int, total: int) -> float:
    """P(X = x) + P(X = x + step) + ... up to ``end``, for X the errors among ``calls`` of
    ``total`` calls of which ``failed`` failed; ``x`` is on the tail's side of the mean, so
    the first term is the largest and the sum stops once the terms no longer count."""
    term = math.exp(_log_choose(failed, x) + _log_choose(total - failed, calls - x) - _log_choose(total, calls))
    p = 0.0
    while True:
        p += term
        if x == end or term < p * 1e-17:
            return p
        if step > 0:  # pmf(x + 1) / pmf(x)
            term *= (failed - x) * (calls - x) / ((x + 1) * (total - failed - calls + x + 1))
        else:  # pmf(x - 1) / pmf(x)
            term *= x * (total - failed - calls + x) / ((failed - x + 1) * (calls - x + 1))
        x += step


def binomial_greater(errors: int, calls: int, rate: float) -> float:
    """P(X >= errors) for X ~ Binomial(calls, rate): the test against ``max_error_rate`` itself
    when the primary has had no calls to compare with (a canary on all the traffic)."""
    if errors <= 0:
        return 1.0
    if rate <= 0:
        return 0.0
    below = sum(
        math.exp(_log_choose(calls, x) + x * math.log(rate) + (calls - x) * math.log1p(-rate)) for x in range(errors)
    )
    return max(0.0, 1.0 - below)


def judge(
    guard: Guard, look: int, calls: int, errors: int, primary_calls: int, primary_errors: int, p95: float | None
) -> Verdict:
    """The guard's verdict on the candidate's ``calls`` and ``errors`` against the primary's, at
    look ``look`` (the consecutive-failure limit is the stage's: it needs no counts)."""
    if calls < guard.min_calls:
        return Verdict(INCONCLUSIVE, None, None)
    limit = guard.max_p95_latency
    if limit is not None and p95 is not None and p95 > limit:
        return Verdict(ROLLED_BACK, f"p95 latency {p95:.3g} s is above max_p95_latency {limit:g} s", None)
    rate = errors / calls
    if rate <= guard.max_error_rate:
        return Verdict(RUNNING, None, None)
    if primary_calls:
        p = fisher_greater(errors, calls, primary_errors, primary_calls)
        against = f"the primary's {primary_errors / primary_calls:.1%} ({primary_errors} of {primary_calls})"
    else:
        p = binomial_greater(errors, calls, guard.max_error_rate)
        against = "max_error_rate (no primary calls to compare with)"
    if p <= level(look):
        reason = (
            f"error rate {rate:.1%} ({errors} of {calls}) is above max_error_rate {guard.max_error_rate:.1%} "
            f"and significantly above {against}: one-sided Fisher exact p = {p:.2g} at look {look}"
        )
        return Verdict(ROLLED_BACK, reason, p)
    return Verdict(INCONCLUSIVE, None, p)
