"""Hedged attempts: when the first attempt is slow, start another and take the first success.

``pw.Hedge(after=0.1, max_extra=1)`` (DESIGN §3): for idempotent predicts only. When an attempt
of the primary has not succeeded ``after`` seconds after it started (or has failed), one more
starts, up to ``max_extra`` more; the first success wins and the others are cancelled (async)
or discarded (sync: their threads run on, their results are dropped). ``after="p95"`` takes
the 95th percentile of the model's recent successful attempts, never less than
:data:`MIN_P95` (1 ms), with no hedging until ``min_samples`` of them are in. Every extra
attempt is paid for from the retry budget when ``Retry(budget=...)`` has one (one budget
for retries and hedges: extra load stays bounded) and takes its own permit from the stages
inside the hedge (the rate limit). A sync predict's attempts run on worker threads when
hedged (the caller must be free to start the next one).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from prodwrap._stage import Build, Seam, Stage
from prodwrap._stats import counted
from prodwrap.errors import ConfigurationError
from prodwrap.policies._numbers import as_float, count

if TYPE_CHECKING:
    from prodwrap._engine import Target
    from prodwrap._record import CallRecord

_SAMPLES = 1024  # the p95 is taken over the most recent successful attempts
_EVERY = 64  # and recomputed once per this many of them
MIN_P95 = 0.001  # the least threshold "p95" learns (seconds): a hedge sooner costs about what it saves
# The most extra attempts one call may start: each is a thread (sync) or a task and a request
# to the dependency; past a few the tail gains nothing and the load multiplies.
MAX_EXTRA = 16


@dataclasses.dataclass(frozen=True, slots=True)
class Hedge:
    """Start one more attempt when the current one is slower than ``after``.

    Args:
        after: seconds (> 0), or ``"p95"``: the 95th percentile of recent successful attempts,
            at least :data:`MIN_P95` (1 ms; a fixed ``after`` may be less).
        max_extra: how many more attempts one call may start (1 to :data:`MAX_EXTRA`, 16).
        min_samples: with ``after="p95"``, how many successful attempts are needed before
            hedging begins.
    """

    after: float | Literal["p95"]
    max_extra: int = 1
    min_samples: int = 20

    def __post_init__(self) -> None:
        if not (isinstance(self.after, str) and self.after == "p95"):
            after = as_float(self.after)
            if after is None or not 0 < after < math.inf:
                raise ConfigurationError(
                    f'Hedge.after must be a finite number of seconds > 0 or "p95", got {self.after!r}'
                )
            object.__setattr__(self, "after", after)
        object.__setattr__(
            self, "max_extra", count("Hedge", "max_extra", self.max_extra, most=MAX_EXTRA, unit=" extra attempts")
        )
        object.__setattr__(self, "min_samples", count("Hedge", "min_samples", self.min_samples))

    def describe(self) -> dict[str, Any]:
        return {"after": self.after, "max_extra": self.max_extra, "min_samples": self.min_samples}

    def stages(self, build: Build) -> Sequence[Stage]:
        return (HedgeStage(self),)


class HedgeStage(Stage):
    """The attempt seam's hedge: makes the primary's attempts races (the walk, always)."""

    name = "hedge"
    seam = Seam.ATTEMPT
    section = "hedge"
    fast = False  # a hedged attempt is a race the walk hands its driver

    def __init__(self, policy: Hedge) -> None:
        self.policy = policy
        self.race_extra = policy.max_extra
        self.race = self.threshold
        self.fixed = None if policy.after == "p95" else float(policy.after)
        self.p95: float | None = None
        self.samples: list[float] = []
        self.seen = itertools.count()  # successful attempts measured
        self.races = itertools.count()  # calls that started an extra attempt
        self.extras = itertools.count()  # extra attempts started
        self.wins = itertools.count()  # races an extra attempt won

    def threshold(self, call: CallRecord) -> float | None:
        return self.fixed if self.fixed is not None else self.p95

    def undo_attempt(self, call: CallRecord, target: Target) -> None:
        if call.raced > 1:  # the call ended mid-race (cancelled): its extra attempts count all the same
            self._count(call, None)

    def after_attempt(self, call: CallRecord, target: Target, error: Exception | None, seconds: float) -> None:
        self._count(call, error)
        if error is None and self.fixed is None:
            self._sample(seconds)

    def _count(self, call: CallRecord, error: Exception | None) -> None:
        raced = call.raced
        if raced > 1:
            marks = call.state
            if marks is None:
                marks = call.state = {}
            if self not in marks:  # (a call raced again after a retry is one hedged call)
                marks[self] = True
                next(self.races)
            for _ in range(raced - 1):
                next(self.extras)
            if error is None and call.won > 0:
                next(self.wins)

    def _sample(self, seconds: float) -> None:
        n = next(self.seen)
        samples = self.samples
        if len(samples) < _SAMPLES:
            samples.append(seconds)
        else:
            samples[n % _SAMPLES] = seconds
        if n + 1 >= self.policy.min_samples and (n + 1 - self.policy.min_samples) % _EVERY == 0:
            ordered = sorted(samples)
            self.p95 = max(MIN_P95, ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)])

    def stats(self) -> dict[str, Any]:
        return {
            "after": self.fixed if self.fixed is not None else self.p95,
            "hedged_calls": counted(self.races),
            "extra_attempts": counted(self.extras),
            "won_by_extra": counted(self.wins),
        }
