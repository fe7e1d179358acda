"""The breaker's counts: the closed state's window of outcomes and the half-open probes.

Both are plain arithmetic on a few integers, O(1) per attempt; the breaker holds its lock
around every call of theirs. An outcome is a small code: bit 0 a failure, bit 1 a slow call
(a slow failure is ``FAILED | SLOW`` and counts in both rates).
"""

from __future__ import annotations

import itertools

from prodwrap._stats import counted

OK, FAILED, SLOW = 0, 1, 2


class Window:
    """The last ``size`` outcomes (a ring buffer, a byte each, grown as outcomes come in: a
    big window costs memory for the outcomes seen, not for its size) with running failure and
    slow counts.

    ``generation`` is the state's generation the window belongs to: every return to closed
    starts a new generation, and with it an empty window.

    Once ``min_calls`` outcomes are in (``primed``), a success can no longer open the circuit
    (it lowers both rates, or keeps them), so the success path only counts it, lock-free:
    ``next(window.pending)``, atomic under the GIL. The pending successes enter the ring, in
    O(1) each, the next time the window is counted into or read (under the breaker's lock).
    ``next(window.withdrawn)`` takes one back (counted as a success before it was known: the
    attempt then failed, or never ran).
    """

    __slots__ = (
        "codes",
        "drained",
        "failed",
        "failure_rate",
        "generation",
        "i",
        "min_calls",
        "n",
        "pending",
        "primed",
        "size",
        "slow",
        "slow_rate",
        "withdrawn",
    )

    def __init__(self, size: int, min_calls: int, failure_rate: float, slow_rate: float) -> None:
        self.size = size
        self.min_calls = min_calls
        self.failure_rate = failure_rate
        self.slow_rate = slow_rate
        self.reset(0)

    def reset(self, generation: int) -> None:
        """Empty the window (for the closed state of ``generation``)."""
        self.generation = generation
        self.i = self.n = self.failed = self.slow = 0
        self.codes = bytearray()  # (it grows to ``size`` again as the outcomes come in)
        self.pending = itertools.count()
        self.withdrawn = itertools.count()
        self.drained = 0
        self.primed = False

    def _put(self, code: int) -> None:
        i = self.i
        if self.n < self.size:  # not full yet: i == n == len(codes)
            self.n += 1
            self.codes.append(code)
        else:  # full: the oldest outcome drops out
            old = self.codes[i]
            if old:
                self.failed -= old & FAILED
                self.slow -= old >> 1
            self.codes[i] = code
        self.i = i + 1 if i + 1 < self.size else 0
        if code:
            self.failed += code & FAILED
            self.slow += code >> 1

    def drain(self) -> None:
        """Put the success path's pending successes into the ring (the last ``size`` of
        them are all that can still be in it)."""
        taken = counted(self.pending) - counted(self.withdrawn)
        k = taken - self.drained
        if k > 0:  # (below 0: more withdrawn than pending yet; the next ones pay it back)
            self.drained = taken
            for _ in range(min(k, self.size)):
                self._put(OK)
            # (``primed`` changes in ``add`` only, after a verdict: a success counted across a
            # reset may land here before min_calls are in)

    def add(self, code: int) -> str | None:
        """Count one outcome (the oldest drops out of a full window); the reason to open
        (``"failure_rate"``, ``"slow_call_rate"``) when the verdict is to open, else None."""
        was_primed = self.primed
        self.drain()
        self._put(code)
        self.primed = self.n >= self.min_calls
        if code or (self.primed and not was_primed):
            return self.verdict()
        return None  # a success after min_calls: every earlier verdict said "closed"

    def verdict(self) -> str | None:
        n = self.n
        if n < self.min_calls:
            return None
        if self.failed / n >= self.failure_rate:
            return "failure_rate"
        if self.slow / n >= self.slow_rate:
            return "slow_call_rate"
        return None

    def rates(self) -> tuple[int, float | None, float | None]:
        """Attempts in the window, and its failure and slow-call rates (None below min_calls)."""
        self.drain()
        n = self.n
        if n < self.min_calls or n == 0:
            return n, None, None
        return n, self.failed / n, self.slow / n


class Probes:
    """The half-open state's probes: ``limit`` let through, decided when all are in."""

    __slots__ = ("done", "failed", "failure_rate", "generation", "given", "limit", "slow", "slow_rate")

    def __init__(self, limit: int, failure_rate: float, slow_rate: float) -> None:
        self.limit = limit
        self.failure_rate = failure_rate
        self.slow_rate = slow_rate
        self.reset(-1)

    def reset(self, generation: int) -> None:
        """No probe out yet (for the half-open state of ``generation``)."""
        self.generation = generation
        self.given = self.done = self.failed = self.slow = 0

    def take(self) -> bool:
        """Let one more probe through, if one is left."""
        if self.given >= self.limit:
            return False
        self.given += 1
        return True

    def give_back(self) -> None:
        """A probe let through never reached the dependency (a later stage refused it, or the
        call was cancelled): its slot is free again."""
        if self.given > self.done:
            self.given -= 1

    def add(self, code: int) -> str | None:
        """One probe's outcome; once all are in, the verdict: ``"failure_rate"`` or
        ``"slow_call_rate"`` (open again) or ``"probes_passed"`` (close), else None."""
        self.done += 1
        self.failed += code & FAILED
        self.slow += code >> 1
        if self.done < self.limit:
            return None
        if self.failed / self.done >= self.failure_rate:
            return "failure_rate"
        if self.slow / self.done >= self.slow_rate:
            return "slow_call_rate"
        return "probes_passed"
