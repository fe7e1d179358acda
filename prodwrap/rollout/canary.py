"""Canary routing: a candidate serves a small, sticky share of real traffic, under a guard.

:class:`Canary` is the policy (``canary=`` of a model, or ``model.stage(candidate,
mode="canary", ...)``), small, immutable and validated here. It compiles into two stages
(``prodwrap.rollout._canary_stage``): routing on the admission seam (after the cache and the
budget, DESIGN §1) and a meter on the attempt seam, outermost there, that counts every attempt
of each variant (the primary's and the candidate's) for the guard.

Also here: :class:`CanaryStats` (``stats().canary``), :class:`VariantStats`,
:class:`CanaryEvent` (what is logged and handed to listeners) and :class:`CanaryHandle`
(``model.canary``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from prodwrap.errors import ConfigurationError
from prodwrap.policies._numbers import fraction
from prodwrap.rollout._guard import Guard
from prodwrap.state import StateStore

if TYPE_CHECKING:
    from prodwrap._stage import Build, Stage
    from prodwrap.rollout._canary_stage import CanaryCore


def _share(name: str, value: object) -> float:
    return fraction("Canary", name, value)


def candidate_name(candidate: Any) -> str:
    """How a candidate is named in keys, logs and ``describe()``."""
    return str(getattr(candidate, "__name__", None) or type(candidate).__name__)


@dataclass(frozen=True, slots=True)
class Canary:
    """Send a sticky share of the traffic to ``candidate``, and take it out automatically when
    its ``guard`` is breached (``canary=``).

    Args:
        candidate: the model on trial: a callable like the primary (async only if the primary
            is) or a ``ProductionModel``. Its outputs are validated as the primary's are; its
            attempts go through the model's retry, timeout and attempt stages.
        fraction: the share of calls it serves, in (0, 1] (with ``steps``: the last step).
        key: what makes the split sticky: the name of a ``pw.context`` tag when one is set,
            else of a field of the validated input (attribute or mapping key). The same key
            value always gets the same variant, in every process. A call without the key goes
            to the primary (counted in ``unkeyed``). None: each call is split at random.
        guard: a ``pw.Guard``: when it is breached, the candidate gets no more calls. None: no
            automatic rollback.
        steps: a ramp: the candidate starts at ``steps[0]`` and moves to the next step, then to
            ``fraction``, each time the guard holds after ``guard.min_calls`` candidate
            attempts at the current step (increasing fractions below ``fraction``; needs a
            guard).
        store: where the canary's state (state, step, fraction, reason) is kept, keyed
            ``"<model>:canary:<candidate>@<version>"`` (without ``@<version>`` when the
            candidate has none): a shared store rolls every replica back at once, and a
            candidate staged again under a new version starts afresh.
            Default: a ``MemoryStore`` per model. The counts stay in the process.
        version: the candidate's version: the calls routed to it are charged, traced and
            reported (``Prediction.version``, audit lines) under it. Default: a
            ``ProductionModel`` candidate's own version (``model.stage(..., version=)`` gives
            one); None leaves them under the model's version (``served_by`` still tells them
            apart).

    Raises:
        ConfigurationError: a fraction outside (0, 1], steps that do not increase below
            ``fraction`` or come without a guard, a guard with ``max_mismatch_rate`` (a canary
            runs one variant per call: nothing to compare), a key that is not a name, a
            candidate that is not callable.
    """

    candidate: Any
    fraction: float
    key: str | None = None
    guard: Guard | None = None
    steps: Sequence[float] | None = None
    store: StateStore | None = field(default=None, compare=False, repr=False)
    version: str | None = None

    def __post_init__(self) -> None:
        if not callable(self.candidate):
            raise ConfigurationError(
                f"Canary.candidate must be a callable or a ProductionModel, got {self.candidate!r}"
            )
        object.__setattr__(self, "fraction", _share("fraction", self.fraction))
        if self.key is not None and (not isinstance(self.key, str) or not self.key):
            raise ConfigurationError(f"Canary.key must name a tag or an input field (a str), got {self.key!r}")
        guard = self.guard
        if guard is not None and not isinstance(guard, Guard):
            raise ConfigurationError(f"Canary.guard takes a pw.Guard, got {guard!r}")
        if guard is not None and guard.max_mismatch_rate is not None:
            raise ConfigurationError(
                "Guard.max_mismatch_rate needs shadow comparisons, and a canary runs one variant per call: "
                "compare with pw.Shadow (model.shadow_report()) and guard the canary on errors and latency"
            )
        if self.steps is not None:
            if isinstance(self.steps, str | bytes) or not isinstance(self.steps, Sequence) or not self.steps:
                raise ConfigurationError(f"Canary.steps takes a list of fractions, got {self.steps!r}")
            steps = tuple(_share("steps", s) for s in self.steps)
            ramp = (*steps, self.fraction)
            if any(b <= a for a, b in itertools.pairwise(ramp)):
                raise ConfigurationError(
                    f"Canary.steps must increase, each below fraction={self.fraction:g}, got {steps}"
                )
            if guard is None:
                raise ConfigurationError("Canary.steps advance when the guard holds: give guard=pw.Guard(...)")
            object.__setattr__(self, "steps", steps)
        if self.store is not None and not isinstance(self.store, StateStore):
            raise ConfigurationError(f"Canary.store must be a StateStore (get, swap, ...), got {self.store!r}")
        if self.version is not None and not isinstance(self.version, str):
            raise ConfigurationError(f"Canary.version must be a str, got {self.version!r}")

    @property
    def ramp(self) -> tuple[float, ...]:
        """The fractions the candidate serves, in order (the last is ``fraction``)."""
        return (*(self.steps or ()), self.fraction)

    def stages(self, build: Build) -> Sequence[Stage]:
        """Routing on the admission seam, then the meter outermost on the attempt seam."""
        from prodwrap.rollout._canary_stage import compile_canary

        return compile_canary(self, build)

    def describe(self) -> dict[str, Any]:
        return {
            "candidate": candidate_name(self.candidate),
            "fraction": self.fraction,
            "key": self.key,
            "guard": None if self.guard is None else self.guard.describe(),
            "steps": None if self.steps is None else list(self.steps),
            "store": None if self.store is None else type(self.store).__name__,
            "version": self.version,
        }


@dataclass(frozen=True, slots=True)
class VariantStats:
    """One variant's numbers since the canary began (attempts: retries count, fallbacks not).

    Attributes:
        calls: attempts of the variant's predict.
        errors: those that failed (raised, timed out, gave an invalid output).
        error_rate: errors / calls (None before the first call).
        p95_latency: seconds (prodwrap's clock) over its last 1024 attempts (None: none yet).
        cost: USD charged to it (``served_by`` in the model's ledger, since the canary began);
            None without ``cost=``.
    """

    calls: int
    errors: int
    error_rate: float | None
    p95_latency: float | None
    cost: Decimal | None


@dataclass(frozen=True, slots=True)
class CanaryStats:
    """``model.stats().canary``: the candidate's numbers, the primary's on the same traffic,
    and the guard's verdict.

    Attributes:
        state: ``"inconclusive"`` (no verdict yet: fewer than ``min_calls`` candidate attempts,
            or an error rate above ``max_error_rate`` whose excess is not significant yet),
            ``"running"`` (no guard, or the guard holds), ``"rolled_back"`` (the guard was
            breached: the candidate gets no calls) or ``"promoted"``.
        fraction: the share of calls the candidate gets now (0 once rolled back).
        step: the index of the current step of the ramp (0 without ``steps``).
        calls, errors, error_rate, p95_latency, cost: the candidate's (see :class:`VariantStats`).
        rolled_back: whether the guard (or ``model.canary.halt()``) took it out of traffic.
        reason: why it was rolled back (None otherwise).
        p_value: the last look's error-rate test p-value (None: not run yet).
        primary: the primary's numbers over the same time.
        unkeyed: calls without the split key (served by the primary).
        faults: the canary's own faults (a store, a key without a canonical form, a listener).
    """

    state: str
    fraction: float
    step: int
    calls: int
    errors: int
    error_rate: float | None
    p95_latency: float | None
    cost: Decimal | None
    rolled_back: bool
    reason: str | None
    p_value: float | None
    primary: VariantStats
    unkeyed: int
    faults: int


class CanaryEvent(NamedTuple):
    """A change of the canary's state, as logged and handed to listeners.

    ``event``: ``"rolled_back"`` (the guard, or ``halt()``), ``"advanced"`` (the next step of
    the ramp) or ``"promoted"``. ``at``: wall time (epoch seconds, prodwrap's clock).
    """

    model: str
    event: str
    state: str
    fraction: float
    reason: str | None
    at: float


class CanaryHandle:
    """``model.canary``: the running canary, to read and to stop by hand.

    Attributes:
        listeners: callables handed every :class:`CanaryEvent` (after it is logged); one that
            raises is counted in ``stats().canary.faults`` and logged, never raised.
    """

    __slots__ = ("_core", "listeners")

    def __init__(self, core: CanaryCore) -> None:
        self._core = core
        self.listeners: list[Callable[[CanaryEvent], object]] = core.listeners

    @property
    def state(self) -> str:
        return self._core.held()[0]

    @property
    def fraction(self) -> float:
        return float(self._core.held()[2])

    def halt(self, reason: str = "halted by hand") -> None:
        """Take the candidate out of traffic now, as a breach would (``"rolled_back"``)."""
        self._core.halt(reason)

    def stats(self) -> CanaryStats:
        """The same section as ``model.stats().canary``."""
        return self._core.stats()

    def __repr__(self) -> str:
        return f"<CanaryHandle {self._core.model!r} {self.state} fraction={self.fraction:g}>"


__all__ = ["Canary", "CanaryEvent", "CanaryHandle", "CanaryStats", "Guard", "VariantStats"]
