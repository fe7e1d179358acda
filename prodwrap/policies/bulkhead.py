"""The bulkhead: at most ``max_concurrent`` attempts of the primary run at once.

A permit is taken before each attempt of the primary (retries included; fallbacks run
outside the bulkhead) and given back when the attempt ends. With none free, the attempt
waits up to ``max_wait`` seconds (never past the call's deadline) for one to be given back,
longest waiter first; if none comes, it is refused with ``BulkheadFullError`` (reason
``"bulkhead_full"``, never retried), and the fallbacks serve the call if there are any.

A sync attempt abandoned at its deadline keeps running on its worker thread (Python cannot
kill a thread), so it keeps its permit until that thread really ends: the bulkhead bounds
the predicts actually running, not the callers still waiting for them.

The permits are per process and per model (DESIGN §3, State: concurrency is a local
resource), so they are not kept in a ``StateStore``.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prodwrap._gates import Permits
from prodwrap._log import logger
from prodwrap._stage import Build, Seam, Stage, Wait
from prodwrap.errors import BulkheadFullError
from prodwrap.policies._numbers import count, seconds

if TYPE_CHECKING:
    from prodwrap._engine import Target
    from prodwrap._record import CallRecord

log = logger("bulkhead")


@dataclass(frozen=True, slots=True)
class Bulkhead:
    """At most ``max_concurrent`` attempts of the primary at once (``bulkhead=``).

    Args:
        max_concurrent: how many attempts may run at once (an int >= 1).
        max_wait: seconds an attempt may wait for a permit when none is free (default 0:
            refused at once). ``math.inf`` waits as long as the call's deadline allows (with no
            deadline, until a permit is free). A wait never goes past the call's deadline.

    Raises:
        ConfigurationError: ``max_concurrent`` is not an int >= 1, or ``max_wait`` is not a
            number of seconds >= 0.
    """

    max_concurrent: int
    max_wait: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_concurrent", count("Bulkhead", "max_concurrent", self.max_concurrent))
        object.__setattr__(self, "max_wait", seconds("Bulkhead", "max_wait", self.max_wait, zero=True, infinite=True))

    def stages(self, build: Build) -> Sequence[Stage]:
        """The bulkhead's stage on the attempt seam (one set of permits per model)."""
        return (BulkheadStage(self, build),)

    def describe(self) -> dict[str, Any]:
        """``max_wait`` None: no limit but the call's deadline."""
        wait = None if self.max_wait == math.inf else self.max_wait
        return {"max_concurrent": self.max_concurrent, "max_wait": wait}


@dataclass(frozen=True, slots=True)
class BulkheadStats:
    """``model.stats().bulkhead``: a snapshot of the bulkhead.

    Attributes:
        max_concurrent: the permits there are.
        in_use: permits held now (by running attempts, abandoned ones included).
        peak: the most permits held at once so far.
        waiting: attempts waiting for a permit now.
        waits: attempts that had to wait for a permit (whether or not they got one).
        full: attempts refused (``BulkheadFullError``): none free at once, or none in time.
        held_by_abandoned: permits held now by attempts abandoned at their deadline whose
            threads are still running.
    """

    max_concurrent: int
    in_use: int
    peak: int
    waiting: int
    waits: int
    full: int
    held_by_abandoned: int


class BulkheadStage(Stage):
    """The bulkhead on the attempt seam, outermost there (DESIGN §1).

    On the success path the first attempt's permit is taken without blocking (``fast_admit``:
    when none is free the walk decides, and may wait) and given back after it
    (``fast_done``). A failed first attempt is handed to the walk, whose ``after_attempt``
    gives its permit back, or, for an attempt abandoned at its deadline, leaves it with the
    attempt's thread until that ends. The stage is the ``Gate`` its waits wait on, so it
    counts the waits that came to nothing.
    """

    name = "bulkhead"
    seam = Seam.ATTEMPT
    section = "bulkhead"

    def __init__(self, policy: Bulkhead, build: Build) -> None:
        self.policy = policy
        self.model, self.version = build.name, build.version
        self.max_wait = policy.max_wait
        self.permits = permits = Permits(policy.max_concurrent)
        self._lock = threading.Lock()  # the counters (off the success path)
        self._waits = self._full = self._held_late = 0
        # The success path calls the permits directly: take(value, args, kwargs) without
        # blocking, give() if a later hook says no, give(seconds) after a success.
        self.fast_admit = permits.take
        self.fast_undo = permits.give
        self.fast_done = permits.give

    # -- the attempt seam ----------------------------------------------------------------------

    def before_attempt(self, call: CallRecord, target: Target) -> Exception | Wait | None:
        if call.phase >= 0 or self.permits.take():  # fallbacks run outside the bulkhead
            return None
        if self.max_wait > 0:
            with self._lock:
                self._waits += 1
            return Wait(self, self.max_wait, self._error(True))
        self._refused()
        return self._error(False)

    def undo_attempt(self, call: CallRecord, target: Target) -> None:
        """A later stage refused the attempt, or the call ended during it (cancelled): a sync
        attempt abandoned on its worker keeps the permit until its thread ends."""
        if call.phase < 0:
            self._give_back(call.late)

    def after_attempt(self, call: CallRecord, target: Target, error: Exception | None, seconds: float) -> None:
        if call.phase < 0:  # (call.late: an abandoned attempt's job, or a hedge's discarded ones)
            self._give_back(call.late)

    def _give_back(self, late: Any) -> None:
        if late is None:
            self.permits.give()
            return
        with self._lock:  # abandoned: its thread still runs
            self._held_late += 1
        late.then(self._give_late)

    def _give_late(self) -> None:
        """An abandoned attempt's thread has ended: its permit is free."""
        with self._lock:
            self._held_late -= 1
        self.permits.give()

    # -- the gate a WAIT act waits on ----------------------------------------------------------

    def acquire(self, seconds: float) -> bool:
        if self.permits.acquire(seconds):
            return True
        self._refused()
        return False

    async def aacquire(self, seconds: float) -> bool:
        if await self.permits.aacquire(seconds):
            return True
        self._refused()
        return False

    # -- refusals --------------------------------------------------------------------------------

    def _error(self, waited: bool) -> BulkheadFullError:
        n = self.policy.max_concurrent
        how = "none became free in time" if waited else "none free"
        return BulkheadFullError(f"{self.model}: bulkhead full ({n} of {n} permits in use; {how})")

    def _refused(self) -> None:
        with self._lock:
            self._full += 1
        if log.isEnabledFor(logging.INFO):
            log.info(
                "%s: bulkhead full (%d permits in use): attempt refused",
                self.model,
                self.policy.max_concurrent,
                extra={"model": self.model, "version": self.version, "reason": "bulkhead_full"},
            )

    # -- inspection ------------------------------------------------------------------------------

    def stats(self) -> BulkheadStats:
        permits = self.permits
        with self._lock:
            waits, full, held = self._waits, self._full, self._held_late
        return BulkheadStats(
            max_concurrent=permits.n,
            in_use=permits.in_use,
            peak=permits.peak,
            waiting=permits.waiting,
            waits=waits,
            full=full,
            held_by_abandoned=held,
        )


__all__ = ["Bulkhead", "BulkheadStage", "BulkheadStats"]
