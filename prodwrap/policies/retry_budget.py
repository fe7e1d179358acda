"""The retry budget: retries (and hedges) capped to a share of recent calls (Finagle's rule).

Within a sliding ``window`` of seconds, a retry is allowed while
``retries <= min_per_second * window + ratio * calls``; an exhausted budget means no retry
(counted): the call goes straight to its fallbacks, or raises its last failure. Under a
dependency that fails every call, the attempts made are then at most
``calls * (1 + ratio) + min_per_second * window`` per window, whatever ``Retry(attempts=)`` says.

Calls and retries are sliding sums in a :class:`~prodwrap.state.StateStore`, so a shared store
makes one budget for many processes. Counting a call costs the success path one clock reading
and one ``itertools.count`` step, no lock: the calls of a tenth of the window are counted in
the process and added to the store together, when the next tenth begins or when a retry is
asked for.
"""

from __future__ import annotations

import itertools
import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prodwrap import _clock
from prodwrap._log import Throttle, logger
from prodwrap._stage import Seam, Stage, inline_admit
from prodwrap._stats import counted
from prodwrap.errors import ConfigurationError
from prodwrap.policies._numbers import amount, seconds
from prodwrap.state import MemoryStore, StateStore

if TYPE_CHECKING:
    from prodwrap._engine import Target
    from prodwrap._record import CallRecord
    from prodwrap._stage import Build

log = logger("retry_budget")
_faults = Throttle(log)
_clocks = _clock.current

# A call counted (see _stage.inline_admit): a new tenth of the window folds the last one first.
_COUNT = """\
{p}now = {p}clocks.clock.monotonic()
if {p}now >= {p}stage._until:
    {p}stage._fold({p}now)
next({p}calls)
said = True
"""
SLICES = 10  # calls are added to the store once per tenth of the window
MIN_WINDOW = 1.0  # seconds: Finagle's least TTL; a shorter window is slices of a few ms, a budget of nothing


@dataclass(frozen=True, slots=True)
class RetryBudget:
    """A cap on retries as a share of recent calls, given as ``pw.Retry(..., budget=...)``.

    Args:
        ratio: retries allowed per call over the window (0.2: one retry for every five calls);
            0 leaves only the floor.
        min_per_second: the floor: retries allowed per second of the window whatever the
            traffic, so a quiet model can still retry (``min_per_second * window`` per window).
        window: the sliding window, in seconds (at least :data:`MIN_WINDOW`, 1 s, as Finagle's).
        store: where the calls and retries are counted (default: a ``MemoryStore`` of the
            model's own); a shared store makes one budget for every model using the same name.

    A hedge (``pw.Hedge``) draws on the same budget: each extra attempt spends one retry.
    """

    ratio: float = 0.2
    min_per_second: float = 10
    window: float = 10.0
    store: StateStore | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ratio", amount("RetryBudget", "ratio", self.ratio, zero=True))
        object.__setattr__(
            self, "min_per_second", amount("RetryBudget", "min_per_second", self.min_per_second, zero=True)
        )
        object.__setattr__(self, "window", seconds("RetryBudget", "window", self.window, least=MIN_WINDOW))
        if self.ratio == 0 and self.min_per_second == 0:
            raise ConfigurationError("RetryBudget(ratio=0, min_per_second=0) allows no retry at all: use no Retry")
        if self.store is not None and not isinstance(self.store, StateStore):
            raise ConfigurationError(f"RetryBudget.store must be a StateStore, got {self.store!r}")

    @property
    def floor(self) -> float:
        """Retries allowed per window whatever the traffic (``min_per_second * window``)."""
        return self.min_per_second * self.window

    def stages(self, build: Build) -> list[Stage]:
        return [RetryBudgetStage(self, build.name)]

    def describe(self) -> dict[str, Any]:
        return {
            "ratio": self.ratio,
            "min_per_second": self.min_per_second,
            "window": self.window,
            "store": None if self.store is None else type(self.store).__name__,
        }


@dataclass(frozen=True, slots=True)
class RetryBudgetStats:
    """``stats().retry_budget``: calls counted, retries spent, retries denied (the budget was
    exhausted), and faults of the store (logged; a retry asked for during one goes ahead)."""

    calls: int
    retries: int
    denied: int
    faults: int = 0


class RetryBudgetStage(Stage):
    """Counts every call once (its first attempt) and answers ``spend(now)`` before each retry."""

    name = "retry budget"
    seam = Seam.ATTEMPT
    section = "retry_budget"

    def __init__(self, policy: RetryBudget, model: str) -> None:
        self.policy = policy
        self.model = model
        self.store: StateStore = policy.store if policy.store is not None else MemoryStore()
        self.calls_key = f"{model}:retry_budget:calls"
        self.retries_key = f"{model}:retry_budget:retries"
        self.window = policy.window
        self.width = policy.window / SLICES
        self._calls = itertools.count()  # calls counted in this process (next() is atomic)
        self._undone = itertools.count()  # ... of which the success path handed back
        self._folded = 0  # how many of them the store has
        self._until = -math.inf  # the end of the tenth of the window the calls not folded belong to
        self._lock = threading.Lock()  # folding only: never on a call that is not folding
        self._spent = itertools.count()
        self._denied = itertools.count()
        self._faults = itertools.count()
        self._exhausted = False
        names = {"clocks": _clocks, "stage": self, "calls": self._calls}
        self.fast_admit = inline_admit(_COUNT, names)  # (its lines run inline on the success path)
        self.fast_undo = self._undone.__next__
        self.spend = self._spend

    # -- counting calls ----------------------------------------------------------------------

    def before_attempt(self, call: CallRecord, target: Target) -> None:
        if call.attempts == 0 and call.phase < 0:  # the call's first attempt: a call
            self.fast_admit(None, (), {})  # type: ignore[misc]

    def _fold(self, now: float) -> None:
        """Add the calls counted since the last fold to the store, dated in the tenth of the
        window they were counted in (never raises: a store fault is counted and logged, and
        those calls are added at the next fold)."""
        with self._lock:
            until = self._until
            pending = counted(self._calls) - counted(self._undone) - self._folded
            if now >= until:
                try:
                    self._until = (math.floor(now / self.width) + 1) * self.width
                except (OverflowError, ValueError) as exc:  # a clock reading no slice holds (inf): a fault
                    self._fault(exc)
                    return
            if not pending:
                return
            at = now if now < until or until == -math.inf else until - self.width
            try:
                self.store.add(self.calls_key, pending, self.window, at)
            except Exception as exc:
                self._fault(exc)
                return
            self._folded += pending

    # -- spending retries --------------------------------------------------------------------

    def _spend(self, now: float) -> bool:
        """May one more retry (or hedge) be spent now? True spends it."""
        self._fold(now)
        store, window = self.store, self.window
        try:
            calls = store.add(self.calls_key, 0, window, now)
            allowed = self.policy.floor + self.policy.ratio * calls
            retries = store.add(self.retries_key, 1, window, now)  # spent first, given back if over:
            if retries > allowed + 1e-9:  # concurrent spenders never overshoot together
                store.add(self.retries_key, -1, window, now)
                granted = False
            else:
                granted = True
        except Exception as exc:  # a store that fails: the retry goes ahead, as without a budget
            self._fault(exc)
            return True
        next(self._spent if granted else self._denied)
        if granted == self._exhausted:  # a transition: logged once, at INFO
            self._exhausted = not granted
            if granted:
                log.info("%s: retry budget available again", self.model, extra={"model": self.model})
            else:
                log.info(
                    "%s: retry budget exhausted (%d retries in the last %g s); no retry until it refills",
                    self.model,
                    int(retries - 1),
                    window,
                    extra={"model": self.model, "reason": "retry_budget"},
                )
        return granted

    def _fault(self, exc: Exception) -> None:
        next(self._faults)
        _faults.warning(
            f"{self.model}:retry_budget",
            "%s: the retry budget's store raised %s: %s",
            self.model,
            type(exc).__name__,
            exc,
            exc_info=exc,
            extra={"model": self.model, "reason": "store_error"},
        )

    def stats(self) -> RetryBudgetStats:
        return RetryBudgetStats(
            calls=counted(self._calls) - counted(self._undone),
            retries=counted(self._spent),
            denied=counted(self._denied),
            faults=counted(self._faults),
        )


__all__ = ["RetryBudget", "RetryBudgetStage", "RetryBudgetStats"]
