"""What a shadow learns: one record per comparison, the running tally, and the report.

:class:`Comparison` is the small frozen record of one candidate run (emitted into a test
capture, kept as a mismatch example, carried by ``ShadowMismatchError``); its input and
outputs are redacted as the audit log redacts them (sensitive fields of the model's specs
hashed, values made JSON-able). :class:`Tally` counts under one lock, taken only on a
candidate's worker or task, never on the primary's path. :class:`ShadowReport` is what
``model.shadow_report()`` and ``stats().shadow`` return.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from prodwrap._stats import counted, percentiles

WINDOW = 8192  # latency samples kept per side, for percentiles
EXAMPLES = 5  # mismatch examples kept (the most recent)
_Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile
_SHOWN = 200  # characters of an output shown in a strict-mode mismatch's message


def wilson(successes: int, n: int, z: float = _Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95 % by default); None when ``n`` is 0.

    Unlike the normal approximation it stays inside [0, 1] and is sound for rates near 0 or 1
    and for small ``n``: what an agreement rate of 998 in 1000 needs.
    """
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mismatch(comparison: Comparison, shown: Callable[[str], str]) -> str:
    """What a strict-mode mismatch says of ``comparison``: the candidate's error, or both
    outputs, each masked by ``shown`` first and then cut to ``_SHOWN`` characters (a secret a
    cut went through would show its start)."""
    if comparison.error is not None:
        return f"the candidate raised {comparison.error}"
    primary, candidate = (_cut(shown(repr(v))) for v in (comparison.primary, comparison.candidate))
    return f"primary {primary} != candidate {candidate}"


def _cut(text: str) -> str:
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


@dataclass(frozen=True, slots=True)
class Comparison:
    """One candidate run, compared with the primary (or failed).

    Attributes:
        name: the candidate's name.
        input: the validated input, redacted (JSON-able; sensitive fields hashed).
        primary: the primary's output, redacted.
        candidate: the candidate's output, redacted (None when it failed).
        error: the candidate's exception type name (``"PredictionTimeout"`` past its
            ``timeout``), or None.
        agreed: the comparator said they agree (False for a failed run, or a comparator that raised).
        ignored: a difference ``ignore=`` accepted (not a mismatch).
        primary_latency: the primary's seconds for this call.
        candidate_latency: the candidate's seconds (on prodwrap's clock).
    """

    name: str
    input: Any
    primary: Any
    candidate: Any
    error: str | None
    agreed: bool
    ignored: bool
    primary_latency: float | None
    candidate_latency: float

    @property
    def mismatch(self) -> bool:
        """A difference that counts: the candidate returned an output that disagreed and was
        not ignored (a failed run is a candidate error, not a mismatch)."""
        return self.error is None and not self.agreed and not self.ignored


@dataclass(frozen=True, slots=True)
class ShadowReport:
    """How a candidate compares with the primary (``model.shadow_report()``, ``stats().shadow``).

    Attributes:
        name: the candidate's name.
        n: comparisons made (candidate runs that returned an output; ignored ones included).
        agreements: comparisons the comparator agreed on.
        ignored: differences ``ignore=`` accepted (neither agreements nor mismatches).
        mismatched: the other comparisons (``n - agreements - ignored``; a comparator that
            raised counts here).
        agreement_rate: ``agreements / (n - ignored)``; None before the first.
        agreement_ci: its 95 % Wilson score interval ``(low, high)``; None before the first.
        candidate_errors: candidate runs that raised or ran past ``timeout``.
        candidate_timeouts: those of them that ran past ``timeout``.
        candidate_error_rate: ``candidate_errors / (n + candidate_errors)``; None before any run.
        skipped: sampled calls not run because ``max_pending`` runs were pending (or after close).
        dropped: runs queued but never started when the model was closed (and an async
            candidate's runs that closing it cancelled).
        pending: runs queued or running now.
        not_served: sampled calls the primary did not serve (fallback, cache, canary candidate,
            error): not compared.
        faults: ``compare``/``ignore``/``enabled``/``on_mismatch``/``key`` raising (counted, logged).
        primary_latency_p50, primary_latency_p95: the primary's seconds on the calls shadowed.
        candidate_latency_p50, candidate_latency_p95: the candidate's seconds, every run.
        primary_cost: the primary's mean cost per call (USD), None without ``cost=``.
        candidate_cost: the candidate's mean cost per run (USD), from its own ledger when it is
            a ``ProductionModel`` with ``cost=``; else None.
        mismatches: the most recent mismatches (at most 5), redacted.
    """

    name: str
    n: int
    agreements: int
    ignored: int
    mismatched: int
    agreement_rate: float | None
    agreement_ci: tuple[float, float] | None
    candidate_errors: int
    candidate_timeouts: int
    candidate_error_rate: float | None
    skipped: int
    dropped: int
    pending: int
    not_served: int
    faults: int
    primary_latency_p50: float | None
    primary_latency_p95: float | None
    candidate_latency_p50: float | None
    candidate_latency_p95: float | None
    primary_cost: Decimal | None
    candidate_cost: Decimal | None
    mismatches: tuple[Comparison, ...]


class Tally:
    """The running counts of one shadow (updated off the primary's path, under one lock)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.n = 0
        self.agreements = 0
        self.ignored = 0
        self.errors = 0
        self.timeouts = 0
        # counted lock-free (``next()``: atomic under the GIL), on the caller's path too
        self.skipped = itertools.count()
        self.dropped = itertools.count()  # async runs close() cancelled
        self.not_served = itertools.count()
        self.faults = itertools.count()
        self.primary: deque[float] = deque(maxlen=WINDOW)
        self.candidate: deque[float] = deque(maxlen=WINDOW)
        self.examples: deque[Comparison] = deque(maxlen=EXAMPLES)

    def ran(
        self, agreed: bool, ignored: bool, error: bool, timeout: bool, primary: float | None, candidate: float
    ) -> None:
        with self.lock:
            if error:
                self.errors += 1
                self.timeouts += timeout
            else:
                self.n += 1
                self.agreements += agreed
                self.ignored += ignored
            if primary is not None:
                self.primary.append(primary)
            self.candidate.append(candidate)

    def count(self, what: str) -> None:
        next(getattr(self, what))

    def example(self, comparison: Comparison) -> None:
        with self.lock:
            self.examples.append(comparison)

    def report(
        self, name: str, pending: int, dropped: int, primary_cost: Decimal | None, candidate_cost: Decimal | None
    ) -> ShadowReport:
        with self.lock:
            n, agreements, ignored, errors = self.n, self.agreements, self.ignored, self.errors
            counts = (self.timeouts, counted(self.skipped), counted(self.not_served), counted(self.faults))
            primary, candidate, examples = list(self.primary), list(self.candidate), tuple(self.examples)
        judged = n - ignored
        p50, p95 = percentiles(primary, (50, 95))
        c50, c95 = percentiles(candidate, (50, 95))
        runs = n + errors
        return ShadowReport(
            name=name,
            n=n,
            agreements=agreements,
            ignored=ignored,
            mismatched=judged - agreements,
            agreement_rate=agreements / judged if judged else None,
            agreement_ci=wilson(agreements, judged),
            candidate_errors=errors,
            candidate_timeouts=counts[0],
            candidate_error_rate=errors / runs if runs else None,
            skipped=counts[1],
            dropped=dropped,
            pending=pending,
            not_served=counts[2],
            faults=counts[3],
            primary_latency_p50=p50,
            primary_latency_p95=p95,
            candidate_latency_p50=c50,
            candidate_latency_p95=c95,
            primary_cost=primary_cost,
            candidate_cost=candidate_cost,
            mismatches=examples,
        )
