"""Per-model counters, safe under threads, with a lock-free success path.

The success path does two C-level operations, each atomic under the GIL: ``next()`` on an
``itertools.count`` (its value is the call's sequence number) and one store into a
preallocated latency ring. Every other count (an outcome, who served, a failure reason, an
abandoned attempt) is an ``itertools.count`` of its own (:class:`Tallies`), bumped with one
``next()`` as well, so no
path takes a lock to count; a lock is taken only to make a tally for a new key, and by
``snapshot()``. ``snapshot()`` derives ``ok`` as calls minus the other outcomes: a call is
given its sequence number before its outcome is tallied, and the snapshot reads the tallies
before the sequence, so a snapshot taken while calls are in flight may count one that is
about to be tallied as a fallback as ``ok`` still, never the other way round.
"""

from __future__ import annotations

import itertools
import math
import threading
from typing import TYPE_CHECKING, Any

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


def counted(count: itertools.count[int]) -> int:
    """How many times ``next()`` was called on ``count`` (read without moving it: its repr is
    ``count(n)``; its pickling support, the other way to read it, goes in Python 3.14)."""
    return int(repr(count)[6:-1])


class Tallies:
    """Counts by key (any hashable), bumped lock-free: ``next(tallies.get(key) or tallies.new(key))``.

    A count is made on first use, under a lock; ``next()`` on an ``itertools.count`` is
    atomic under the GIL.
    """

    __slots__ = ("_lock", "counts", "get")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[Any, itertools.count[int]] = {}
        self.get = self.counts.get

    def new(self, key: Any) -> itertools.count[int]:
        self._lock.acquire()
        try:
            return self.counts.setdefault(key, itertools.count())
        finally:
            self._lock.release()

    def read(self) -> dict[Any, int]:
        """The counts by key, of the keys counted at least once (a count is made ahead of
        use for a compiled success path, :meth:`StatsRecorder.tally`)."""
        read = ((key, counted(count)) for key, count in list(self.counts.items()))
        return {key: n for key, n in read if n}


class StatsRecorder:
    __slots__ = (
        "_abandoned",
        "_ends",
        "_failures",
        "_late",
        "_lock",
        "_observer_errors",
        "_reads",
        "_telemetry_errors",
        "meters",
        "ring",
        "seq",
    )

    def __init__(self) -> None:
        self.seq = itertools.count()
        self._reads = 0  # sequence numbers taken by snapshot(), not by calls
        self._lock = threading.Lock()  # snapshots, one at a time
        self._ends = Tallies()  # (outcome, served_by) of calls other than a primary "ok"
        self._failures = Tallies()
        self._abandoned = itertools.count()
        self._late = itertools.count()
        self._observer_errors = itertools.count()
        self._telemetry_errors = itertools.count()
        self.meters: dict[Any, Any] = {}  # the model's cost meters by (ledger, version) (prodwrap.cost)
        self.ring: list[float] = [float("nan")] * RING

    def record(self, rec: CallRecord) -> None:
        """A finished call with a record (the success path without one is counted by the
        finish point itself: one store into ``ring`` at ``next(seq)``, lock-free)."""
        if rec.errors is None and rec.outcome == "ok" and rec.served_by == "primary":
            self.ring[next(self.seq) & MASK] = rec.latency
            return
        self.ring[next(self.seq) & MASK] = rec.latency  # first: see the module's docstring
        reasons = rec.reasons
        if rec.outcome != "ok" or rec.served_by != "primary":
            self.ended((rec.outcome, rec.served_by))
        if reasons:
            tallies = self._failures
            for reason in reasons:
                next(tallies.get(reason) or tallies.new(reason))

    def ended(self, end: tuple[Any, ...]) -> None:
        """A call's (outcome, served_by), other than a primary "ok", tallied once it has its
        sequence number (one tally for the pair: outcomes and served_by always agree in a
        snapshot)."""
        tallies = self._ends
        next(tallies.get(end) or tallies.new(end))

    def tally(self, end: tuple[Any, ...]) -> itertools.count[int]:
        """The count :meth:`ended` bumps for ``end``, made now (the compiled success path
        bumps it inline: ``next(count)``)."""
        return self._ends.get(end) or self._ends.new(end)

    def abandoned(self) -> None:
        next(self._abandoned)

    def late_error(self, exc: BaseException) -> None:
        """An abandoned attempt raised after its caller had given up on it."""
        next(self._late)

    def observer_failed(self) -> None:
        next(self._observer_errors)

    def telemetry_failed(self) -> None:
        """Telemetry raised (a span processor, an exporter, a provider): the call went on."""
        next(self._telemetry_errors)

    def snapshot(self) -> Stats:
        with self._lock:
            ends = self._ends.read()  # the tallies before the sequence (module docstring)
            failures = self._failures.read()
            abandoned, late = counted(self._abandoned), counted(self._late)
            observer_errors = counted(self._observer_errors)
            telemetry_errors = counted(self._telemetry_errors)
            taken = next(self.seq)
            self.ring[taken & MASK] = float("nan")  # this slot gets no sample: keep no stale one
            calls = taken - self._reads
            self._reads += 1
            samples = [v for v in self.ring if not math.isnan(v)]  # NaN marks an empty slot
        outcomes: dict[str, int] = {}
        served: dict[str, int] = {}
        for (outcome, served_by), n in ends.items():
            outcomes[outcome] = outcomes.get(outcome, 0) + n
            if outcome != "error":
                served[served_by] = served.get(served_by, 0) + n
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
            telemetry_errors=telemetry_errors,
            late_errors=late,
        )
