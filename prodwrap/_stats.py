"""Per-model counters, safe under threads, with a lock-free success path.

The success path does two C-level operations, each atomic under the GIL: ``next()`` on an
``itertools.count`` (its value is the call's sequence number) and one store into a
preallocated latency ring. Everything else (fallbacks, errors, abandoned attempts) is rare
and updates under a lock. ``snapshot()`` derives ``ok`` as calls minus the other outcomes.
"""

from __future__ import annotations

import itertools
import math
import threading
from typing import TYPE_CHECKING

from prodwrap._record import Stats

if TYPE_CHECKING:
    from prodwrap._record import CallRecord

RING = 8192  # latency samples kept for percentiles (a power of two)
MASK = RING - 1


def percentiles(samples: list[float], qs: tuple[float, ...]) -> tuple[float | None, ...]:
    """Percentiles with linear interpolation between closest ranks (numpy's default method);
    None for each when there are no samples."""
    if not samples:
        return tuple(None for _ in qs)
    ordered = sorted(samples)
    last = len(ordered) - 1
    out: list[float | None] = []
    for q in qs:
        pos = q / 100 * last
        low = int(pos)
        high = min(low + 1, last)
        out.append(ordered[low] + (ordered[high] - ordered[low]) * (pos - low))
    return tuple(out)


class StatsRecorder:
    __slots__ = (
        "_abandoned",
        "_failures",
        "_late",
        "_lock",
        "_observer_errors",
        "_outcomes",
        "_reads",
        "_served",
        "ring",
        "seq",
    )

    def __init__(self) -> None:
        self.seq = itertools.count()
        self._reads = 0  # sequence numbers taken by snapshot(), not by calls
        self._lock = threading.Lock()
        self._outcomes: dict[str, int] = {}  # outcomes other than a primary "ok"
        self._served: dict[str, int] = {}
        self._failures: dict[str, int] = {}
        self._abandoned = 0
        self._late = 0
        self._observer_errors = 0
        self.ring: list[float] = [float("nan")] * RING

    def record(self, rec: CallRecord) -> None:
        """A finished call with a record (the success path without one is counted by the
        finish point itself: one store into ``ring`` at ``next(seq)``, lock-free)."""
        if rec.errors is None and rec.outcome == "ok" and rec.served_by == "primary":
            self.ring[next(self.seq) & MASK] = rec.latency
            return
        outcome, served_by, reasons = rec.outcome, rec.served_by, rec.reasons
        outcomes, served, failures = self._outcomes, self._served, self._failures
        with self._lock:
            if outcome != "ok" or served_by != "primary":
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                if outcome != "error":
                    served[served_by] = served.get(served_by, 0) + 1
            if reasons:
                for reason in reasons:
                    failures[reason] = failures.get(reason, 0) + 1
            self.ring[next(self.seq) & MASK] = rec.latency

    def abandoned(self) -> None:
        with self._lock:
            self._abandoned += 1

    def late_error(self, exc: BaseException) -> None:
        """An abandoned attempt raised after its caller had given up on it."""
        with self._lock:
            self._late += 1

    def observer_failed(self) -> None:
        with self._lock:
            self._observer_errors += 1

    def snapshot(self) -> Stats:
        with self._lock:
            taken = next(self.seq)
            self.ring[taken & MASK] = float("nan")  # this slot gets no sample: keep no stale one
            calls = taken - self._reads
            self._reads += 1
            outcomes = dict(self._outcomes)
            served = dict(self._served)
            failures = dict(self._failures)
            abandoned = self._abandoned
            late, observer_errors = self._late, self._observer_errors
            samples = [v for v in self.ring if not math.isnan(v)]  # NaN marks an empty slot
        # Calls the primary served without any failure were counted by sequence number only.
        primary_ok = calls - sum(outcomes.values())
        if primary_ok:
            outcomes["ok"] = outcomes.get("ok", 0) + primary_ok
            served["primary"] = served.get("primary", 0) + primary_ok
        p50, p95, p99 = percentiles(samples, (50, 95, 99))
        return Stats(
            calls=calls,
            outcomes=dict(sorted(outcomes.items())),
            served_by=dict(sorted(served.items())),
            failures=dict(sorted(failures.items())),
            latency_p50=p50,
            latency_p95=p95,
            latency_p99=p99,
            abandoned=abandoned,
            observer_errors=observer_errors,
            late_errors=late,
        )
