"""Per-model counters, safe under threads, with a lock-free success path.

The success path does two C-level operations, each atomic under the GIL: ``next()`` on an
``itertools.count`` (its value is the call's sequence number) and one store into a
preallocated latency ring. Everything else (fallbacks, errors, abandoned attempts) is rare
and updates under a lock. ``snapshot()`` derives ``ok`` as calls minus the other outcomes.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter

import numpy as np

from prodwrap._record import Stats

RING = 8192  # latency samples kept for percentiles (a power of two)
MASK = RING - 1


class StatsRecorder:
    __slots__ = ("_abandoned", "_failures", "_lock", "_outcomes", "_reads", "_served", "ring", "seq")

    def __init__(self) -> None:
        self.seq = itertools.count()
        self._reads = 0  # sequence numbers taken by snapshot(), not by calls
        self._lock = threading.Lock()
        self._outcomes: Counter[str] = Counter()  # outcomes other than a primary "ok"
        self._served: Counter[str] = Counter()
        self._failures: Counter[str] = Counter()
        self._abandoned = 0
        self.ring: list[float] = [float("nan")] * RING

    def ok(self, latency: float) -> None:
        """A call the primary served on the success path (lock-free).

        The sync fast path inlines this very statement (``_drivers.predict_sync``).
        """
        self.ring[next(self.seq) & MASK] = latency

    def finish(self, outcome: str, served_by: str, latency: float, reasons: list[str] | None) -> None:
        """Any call that met a failure on the way (slow path)."""
        with self._lock:
            if outcome != "ok" or served_by != "primary":
                self._outcomes[outcome] += 1
                if outcome != "error":
                    self._served[served_by] += 1
            if reasons:
                self._failures.update(reasons)
            self.ring[next(self.seq) & MASK] = latency

    def abandoned(self) -> None:
        with self._lock:
            self._abandoned += 1

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
            samples = np.array(self.ring, dtype=float)
        # Calls the primary served without any failure were counted by sequence number only.
        primary_ok = calls - sum(outcomes.values())
        if primary_ok:
            outcomes["ok"] = outcomes.get("ok", 0) + primary_ok
            served["primary"] = served.get("primary", 0) + primary_ok
        samples = samples[~np.isnan(samples)]
        if samples.size:
            p50, p95, p99 = (float(v) for v in np.percentile(samples, [50, 95, 99]))
        else:
            p50 = p95 = p99 = None  # type: ignore[assignment]
        return Stats(
            calls=calls,
            outcomes=dict(sorted(outcomes.items())),
            served_by=dict(sorted(served.items())),
            failures=dict(sorted(failures.items())),
            latency_p50=p50,
            latency_p95=p95,
            latency_p99=p99,
            abandoned=abandoned,
        )
