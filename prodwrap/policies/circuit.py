"""The circuit breaker: stop calling a dependency that keeps failing, probe it, recover.

:class:`CircuitBreaker` is the policy (``circuit=`` of a model, ``@pw.circuit``): small,
immutable, validated here. It compiles into one attempt-seam stage
(``prodwrap.policies._breaker``) holding the state machine, with resilience4j's semantics as
DESIGN §3 spells them out::

                   failure rate or slow-call rate >= its threshold
                   (once min_calls attempts are in the window)
        CLOSED ────────────────────────────────────────────────▶ OPEN
          ▲                                    open_for has       │  ▲   the probes' failure or
          │                                    fully passed       ▼  │   slow-call rate >= its threshold
          └────────────────────────────────────────────────── HALF_OPEN
            all half_open_calls probes in, both rates below their thresholds

    Every return to closed starts an empty window. ``model.circuit.open()`` forces it open
    (open_for does not end that); ``close()`` closes it, with an empty window, from any state.

Also here: :class:`Circuit` (``model.circuit``), :class:`Transition` (what is logged and
handed to listeners) and :class:`CircuitStats` (``stats().circuit``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from prodwrap.errors import ConfigurationError
from prodwrap.policies._numbers import count, fraction, seconds
from prodwrap.state import MemoryStore, StateStore

if TYPE_CHECKING:
    from prodwrap._stage import Build, Stage
    from prodwrap.policies._breaker import BreakerStage

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
MAX_WINDOW = 10_000_000  # attempts: the window keeps a byte per attempt in it (10 MB at most)

Record = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]


def _is_types(value: object) -> bool:
    if isinstance(value, type):
        return issubclass(value, BaseException)
    return (
        isinstance(value, tuple)
        and bool(value)
        and all(isinstance(t, type) and issubclass(t, BaseException) for t in value)
    )


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    """A circuit breaker for the primary's attempts (fallbacks are outside it).

    Args:
        failure_rate: opens when the share of failed attempts in the window is at least this
            (a fraction in (0, 1]; 0.5 is 50 %).
        slow_call_rate: opens when the share of slow attempts is at least this ((0, 1]).
        slow_call: an attempt is slow when it takes longer than this many seconds on
            prodwrap's clock (None: no attempt is slow, so ``slow_call_rate`` never trips it).
        window: the count-based window: the last ``window`` attempts (an int from 1 to
            :data:`MAX_WINDOW`, 10,000,000: it keeps a byte per attempt in it).
        min_calls: no verdict before this many attempts are in the window (default: the
            window's size, as resilience4j's; clamped to ``window``).
        open_for: seconds the circuit stays open before it lets probes through.
        half_open_calls: the probes let through when half-open; it decides when all are in.
        record: which exceptions count as failures: exception types, or a predicate
            ``exc -> bool``. Others count as successes (and still reach the caller). Default:
            every exception of an attempt (timeouts and invalid outputs included).
        store: where the breaker's state (closed, open or half-open, since when, forced)
            is kept, keyed ``"<model>:circuit"``; default a ``MemoryStore`` per model. The
            window of outcomes and the probe count stay in the process.

    Raises:
        ConfigurationError: a rate at 0 or above 1, a zero or negative ``slow_call``,
            ``open_for``, ``half_open_calls``, ``window`` or ``min_calls``, a ``record`` that
            is neither exception types nor a callable, a ``store`` that is no ``StateStore``, a
            ``window`` above :data:`MAX_WINDOW`.
    """

    failure_rate: float = 0.5
    slow_call_rate: float = 1.0
    slow_call: float | None = None
    window: int = 100
    min_calls: int | None = None
    open_for: float = 60.0
    half_open_calls: int = 10
    record: Record | None = None
    store: StateStore | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        owner = "CircuitBreaker"
        set_(self, "failure_rate", fraction(owner, "failure_rate", self.failure_rate))
        set_(self, "slow_call_rate", fraction(owner, "slow_call_rate", self.slow_call_rate))
        if self.slow_call is not None:
            set_(self, "slow_call", seconds(owner, "slow_call", self.slow_call))
        window = count(owner, "window", self.window, most=MAX_WINDOW, unit=" attempts (a byte of memory each)")
        set_(self, "window", window)
        min_calls = window if self.min_calls is None else count(owner, "min_calls", self.min_calls)
        set_(self, "min_calls", min(min_calls, window))  # no verdict can wait for more than the window holds
        set_(self, "open_for", seconds(owner, "open_for", self.open_for))
        set_(self, "half_open_calls", count(owner, "half_open_calls", self.half_open_calls))
        record = self.record
        if record is not None and not (_is_types(record) or (callable(record) and not isinstance(record, type))):
            raise ConfigurationError(f"CircuitBreaker.record takes exception types or a predicate, got {record!r}")
        if self.store is not None and not isinstance(self.store, StateStore):
            raise ConfigurationError(f"CircuitBreaker.store must be a StateStore (get, swap, ...), got {self.store!r}")

    def counts(self, exc: BaseException) -> bool:
        """Whether ``exc`` counts as a failure (``record=``); a predicate that raises is the
        caller's to handle."""
        record = self.record
        if record is None:
            return True
        if isinstance(record, type | tuple):
            return isinstance(exc, record)
        return bool(record(exc))

    def stages(self, build: Build) -> Sequence[Stage]:
        """One attempt-seam stage (DESIGN §1: inside the retry, outside hedge and rate limit)."""
        from prodwrap.policies._breaker import BreakerStage

        return (BreakerStage(self, build.name, self.store if self.store is not None else MemoryStore()),)

    def describe(self) -> dict[str, Any]:
        record = self.record
        if record is None:
            shown: Any = "every exception"
        elif isinstance(record, type | tuple):
            shown = [t.__name__ for t in (record if isinstance(record, tuple) else (record,))]
        else:
            shown = getattr(record, "__qualname__", repr(record))
        return {
            "failure_rate": self.failure_rate,
            "slow_call_rate": self.slow_call_rate,
            "slow_call": self.slow_call,
            "window": self.window,
            "min_calls": self.min_calls,
            "open_for": self.open_for,
            "half_open_calls": self.half_open_calls,
            "record": shown,
            "store": None if self.store is None else type(self.store).__name__,
        }


class Transition(NamedTuple):
    """One change of a breaker's state, as logged and handed to listeners.

    ``reason``: ``"failure_rate"`` or ``"slow_call_rate"`` (the window's or the probes' rate
    reached its threshold), ``"open_for"`` (the wait ended), ``"probes_passed"``,
    ``"forced"`` (``open()``) or ``"manual"`` (``close()``). ``at``: prodwrap's clock.
    """

    model: str
    from_state: str
    to_state: str
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class CircuitStats:
    """The ``stats().circuit`` section (counts since the model was built, in this process).

    Attributes:
        state: ``"closed"``, ``"open"`` or ``"half_open"``.
        trips: transitions to open (the rates' verdicts and ``open()`` alike; ``open()`` on a
            circuit already open is none).
        time_open: seconds spent open, the current open spell included (prodwrap's clock).
        probes: half-open probes let through (one a later stage refused, given back, is not).
        refused: attempts refused (open, or half-open with every probe out).
        calls: attempts in the closed state's window (while open or half-open: in the
            window that opened it; every return to closed empties it).
        failure_rate: the window's failure rate (None before ``min_calls`` attempts are in).
        slow_call_rate: the window's slow-call rate (None likewise).
        faults: the breaker's own faults (store, ``record=`` predicate, listeners).
    """

    state: str
    trips: int
    time_open: float
    probes: int
    refused: int
    calls: int
    failure_rate: float | None
    slow_call_rate: float | None
    faults: int


class Circuit:
    """``model.circuit``: a model's circuit breaker, to read and to steer by hand.

    Attributes:
        listeners: callables handed every :class:`Transition` (after it is logged); one that
            raises is counted in ``stats().circuit.faults`` and logged, never raised.
    """

    __slots__ = ("_stage", "listeners")

    def __init__(self, stage: BreakerStage) -> None:
        self._stage = stage
        self.listeners = stage.listeners

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half_open"`` (open turns half-open on read once
        ``open_for`` has passed). Never raises: while the store raises, ``"closed"`` (the
        breaker steps aside), the fault counted in ``stats().circuit.faults``."""
        return self._stage.state()

    def open(self) -> None:
        """Force the circuit open: every attempt is refused until :meth:`close`.

        Raises:
            ProdwrapError: the store raised (the fault counted; chained from its error).
        """
        self._stage.force(OPEN)

    def close(self) -> None:
        """Close the circuit, with an empty window (from any state, forced open included).

        Raises:
            ProdwrapError: the store raised (the fault counted; chained from its error).
        """
        self._stage.force(CLOSED)

    def stats(self) -> CircuitStats:
        """The same section as ``model.stats().circuit``."""
        return self._stage.stats()

    def __repr__(self) -> str:
        return f"<Circuit {self._stage.model!r} {self.state}>"


__all__ = ["Circuit", "CircuitBreaker", "CircuitStats", "Record", "Transition"]
