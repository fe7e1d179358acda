"""The canary's stages: routing on the admission seam, a meter on the attempt seam.

Routing reads the canary's state from its ``StateStore`` (a dict read for the in-process
store) and, for a keyed split, the key and its bucket (``_keys``). On the success path it is
``fast_admit``: True keeps a call the primary serves on the compiled success path; the
candidate's calls leave it with a ``Route`` to the candidate (the walk's admission then sees
``call.routed`` set and keeps that choice: a random split draws once per call).

The meter hears every attempt of the primary and of the routed candidate (fallbacks are not
variants). The primary's success-path attempt is ``fast_attempt``: one ``next()`` and one
store into a ring, no lock. The candidate's attempts (always on the walk) are counted under
one lock, where the guard decides: every breach, step and verdict is taken under that lock
and written to the store by compare-and-swap, so racing attempts never roll back twice and a
call routed after the state changed never reaches the candidate (one already routed may
finish, its retries included).

A fault of the canary's own (a store that raises, a key with no canonical form, a listener)
never fails the call: it is counted (``stats().canary.faults``) and logged at WARNING once per
burst; routing that fails sends the call to the primary.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
from collections.abc import Callable
from decimal import Decimal
from random import random
from typing import TYPE_CHECKING, Any

from prodwrap import _clock
from prodwrap._log import Throttle, logger
from prodwrap._stage import Route, Seam, Stage
from prodwrap._stats import counted, percentiles
from prodwrap._target import Kind, Target, is_async_callable
from prodwrap.errors import ConfigurationError
from prodwrap.rollout._guard import INCONCLUSIVE, ROLLED_BACK, RUNNING, Verdict, judge
from prodwrap.rollout._keys import NO_KEY, bucket, key_reader
from prodwrap.rollout.canary import CanaryEvent, CanaryHandle, CanaryStats, VariantStats, candidate_name
from prodwrap.state import MemoryStore

if TYPE_CHECKING:
    from prodwrap._record import CallRecord
    from prodwrap._stage import Build
    from prodwrap.rollout.canary import Canary

log = logger("canary")
_faults = Throttle(log)
_clocks = _clock.current

RING = 1024  # latency samples kept per variant (a power of two)
MASK = RING - 1
LIVE = (RUNNING, INCONCLUSIVE)  # states in which the candidate gets calls


class _Samples:
    """A variant's attempts, errors and latest durations. ``ok``/``failed`` are lock-free
    (``next()`` on a count, one store into the ring); the candidate's are called under the
    canary's lock."""

    __slots__ = ("calls", "errors", "ring")

    def __init__(self) -> None:
        self.calls = itertools.count()
        self.errors = itertools.count()
        self.ring = [math.nan] * RING

    def ok(self, seconds: float) -> None:
        self.ring[next(self.calls) & MASK] = seconds

    def failed(self, seconds: float) -> None:
        next(self.errors)
        self.ring[next(self.calls) & MASK] = seconds

    def counts(self) -> tuple[int, int]:
        errors = counted(self.errors)  # (errors first: never more errors than calls)
        return counted(self.calls), errors

    def p95(self) -> float | None:
        return percentiles([s for s in list(self.ring) if not math.isnan(s)], (95,))[0]


class CanaryCore:
    """What the two stages share: the candidate, the state in the store, the counts."""

    def __init__(self, policy: Canary, build: Build, target: Target) -> None:
        self.policy = policy
        self.guard = policy.guard
        self.model, self.version = build.name, build.version
        self.target = target
        self.route = Route(target)
        self.ramp = policy.ramp
        self.store = store = policy.store if policy.store is not None else MemoryStore()
        # (its version too: a candidate staged again as another version starts afresh, though
        # its function's name, a lambda's "<lambda>", is the same)
        self.key = f"{build.name}:canary:{candidate_name(policy.candidate)}"
        if target.version is not None:
            self.key += f"@{target.version}"
        self._get = store.values_get if type(store) is MemoryStore else store.get
        self.read = None if policy.key is None else key_reader(policy.key)
        self.salt = build.name  # a model's split: each model splits its customers its own way
        self.listeners: list[Callable[[CanaryEvent], object]] = []
        self.primary, self.candidate = _Samples(), _Samples()
        self._lock = threading.Lock()  # the candidate's attempts and the guard's decisions
        self._consecutive = 0
        self._looks = 0
        self._next_look = self.guard.min_calls if self.guard is not None else 0
        self._step_from = 0  # the candidate's attempts when the current step began
        self._p_value: float | None = None
        self.unkeyed = itertools.count()
        self.faults = itertools.count()
        self.ledger: Any = None  # the model's ledger (cost=), for the variants' costs
        self._cost_base: dict[Any, Decimal] = {}
        self.initial = (INCONCLUSIVE if self.guard is not None else RUNNING, 0, self.ramp[0], None)
        try:
            store.swap(self.key, None, self.initial)  # a shared store may hold a state already: kept
        except Exception as exc:
            self.fault("store", exc)
        self.handle = CanaryHandle(self)

    # -- routing -------------------------------------------------------------------------------

    def held(self) -> tuple[str, int, float, str | None]:
        """(state, step, fraction, reason) from the store (its fault: the initial state)."""
        try:
            held = self._get(self.key)
        except Exception as exc:
            self.fault("store", exc)
            return self.initial
        return self.initial if held is None else held

    def chosen(self, value: Any) -> bool:
        """Whether this call goes to the candidate (may raise: the caller counts the fault)."""
        held = self._get(self.key)
        fraction = self.ramp[0] if held is None else held[2]
        if fraction <= 0:
            return False
        read = self.read
        if read is None:
            return random() < fraction
        key = read(value)
        if key is NO_KEY:
            next(self.unkeyed)
            return False
        return bucket(self.salt, key) < fraction

    def fast_admit(self, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool | Route:
        return self.route if self.chosen(value) else True  # (one that raises: the walk asks admit)

    def admit(self, call: CallRecord, value: Any) -> Route | None:
        if call.routed is self.target:
            return None  # the success path chose the candidate for this call already
        try:
            go = self.chosen(value)
        except Exception as exc:
            self.fault("routing", exc)
            return None
        return self.route if go else None

    # -- counting and deciding -----------------------------------------------------------------

    def attempted(self, target: Target, error: Exception | None, seconds: float) -> None:
        if target is not self.target:
            (self.primary.ok if error is None else self.primary.failed)(seconds)
            return
        guard, event = self.guard, None
        with self._lock:
            samples = self.candidate
            if error is None:
                samples.ok(seconds)
                self._consecutive = 0
            else:
                samples.failed(seconds)
                self._consecutive += 1
            if guard is None:
                return
            calls, errors = samples.counts()
            verdict = None
            limit = guard.max_consecutive_failures
            if limit is not None and self._consecutive >= limit:
                verdict = Verdict(
                    ROLLED_BACK, f"{self._consecutive} consecutive failures (max_consecutive_failures={limit})", None
                )
            elif calls >= self._next_look:
                self._looks += 1
                self._next_look = calls + guard.look_every
                p95 = samples.p95() if guard.max_p95_latency is not None else None
                verdict = judge(guard, self._looks, calls, errors, *self.primary.counts(), p95)
                self._p_value = verdict.p_value if verdict.p_value is not None else self._p_value
            if verdict is not None:
                event = self._decide(verdict, calls)
        if event is not None:
            self.announce(event)

    def _decide(self, verdict: Verdict, calls: int) -> CanaryEvent | None:
        """Write the verdict to the store (under the lock); the event to announce, if any."""
        for _ in range(8):  # compare-and-swap: another replica may write at the same time
            held = self.held()
            state, step, fraction, _ = held
            if state not in LIVE:
                return None  # decided already (here or by another replica)
            event = None
            if verdict.state == ROLLED_BACK:
                new = (ROLLED_BACK, step, 0.0, verdict.reason)
                event = "rolled_back"
            elif (
                verdict.state == RUNNING and step + 1 < len(self.ramp) and calls - self._step_from >= self._min_calls()
            ):
                new = (RUNNING, step + 1, self.ramp[step + 1], None)
                event = "advanced"
            else:
                new = (verdict.state, step, fraction, None)
            if new == held:
                return None
            try:
                if not self.store.swap(self.key, held, new):
                    continue
            except Exception as exc:
                self.fault("store", exc)
                return None
            if event == "advanced":
                self._step_from = calls
            return (
                None if event is None else CanaryEvent(self.model, event, new[0], new[2], new[3], _clocks.clock.time())
            )
        return None

    def _min_calls(self) -> int:
        return self.guard.min_calls if self.guard is not None else 0

    def halt(self, reason: str, state: str = ROLLED_BACK) -> None:
        """Take the candidate out of traffic (``state``: ``"rolled_back"`` or ``"promoted"``)."""
        with self._lock:
            for _ in range(8):
                held = self.held()
                if held[0] == state:
                    return
                new = (state, held[1], 0.0, reason if state == ROLLED_BACK else None)
                try:
                    if self.store.swap(self.key, held, new):
                        break
                except Exception as exc:
                    self.fault("store", exc)
                    return
            else:
                return
        self.announce(CanaryEvent(self.model, state, state, 0.0, new[3], _clocks.clock.time()))

    def announce(self, event: CanaryEvent) -> None:
        """Log a change of state at INFO, then hand it to every listener (outside the lock)."""
        if log.isEnabledFor(logging.INFO):
            what = {
                "rolled_back": "candidate rolled back",
                "advanced": "candidate advanced",
                "promoted": "candidate promoted",
            }
            log.info(
                "%s: canary %s (fraction %g)%s",
                self.model,
                what.get(event.event, event.event),
                event.fraction,
                "" if event.reason is None else f": {event.reason}",
                extra={"model": self.model, "version": self.version, "reason": event.reason},
            )
        for listener in tuple(self.listeners):
            try:
                listener(event)
            except Exception as exc:
                self.fault("listener", exc)

    def fault(self, part: str, exc: Exception) -> None:
        next(self.faults)
        _faults.warning(
            f"{self.model}:canary:{part}",
            "%s: the canary's %s raised %s: %s",
            self.model,
            part,
            type(exc).__name__,
            exc,
            exc_info=exc,
            extra={"model": self.model, "version": self.version, "reason": "canary_fault"},
        )

    # -- inspection ------------------------------------------------------------------------------

    def bind_ledger(self, ledger: Any) -> None:
        """The model's ledger: the variants' costs are its totals by ``served_by`` from now."""
        self.ledger = ledger
        self._cost_base = dict(ledger.total(by="served_by"))

    def _cost(self, name: str) -> Decimal | None:
        if self.ledger is None:
            return None
        try:
            return Decimal(self.ledger.total(by="served_by").get(name, 0)) - self._cost_base.get(name, 0)
        except Exception as exc:
            self.fault("ledger", exc)
            return None

    def _variant(self, samples: _Samples, name: str) -> VariantStats:
        calls, errors = samples.counts()
        rate = errors / calls if calls else None
        return VariantStats(calls, errors, rate, samples.p95(), self._cost(name))

    def stats(self) -> CanaryStats:
        state, step, fraction, reason = self.held()
        with self._lock:
            candidate = self._variant(self.candidate, "candidate")
            p_value = self._p_value
        return CanaryStats(
            state=state,
            fraction=float(fraction),
            step=step,
            calls=candidate.calls,
            errors=candidate.errors,
            error_rate=candidate.error_rate,
            p95_latency=candidate.p95_latency,
            cost=candidate.cost,
            rolled_back=state == ROLLED_BACK,
            reason=reason,
            p_value=p_value,
            primary=self._variant(self.primary, "primary"),
            unkeyed=counted(self.unkeyed),
            faults=counted(self.faults),
        )


class CanaryRouter(Stage):
    """The canary on the admission seam: which variant serves each call."""

    name = "canary"
    seam = Seam.ADMISSION
    section = "canary"

    def __init__(self, core: CanaryCore) -> None:
        self.core = core
        self.handle = core.handle
        self.listeners = core.listeners  # (telemetry hooks in here, as on the breaker)
        self.fast_admit = core.fast_admit

    def admit(self, call: CallRecord, value: Any) -> Route | None:
        return self.core.admit(call, value)

    def stats(self) -> CanaryStats:
        return self.core.stats()

    def describe(self) -> dict[str, Any]:
        return self.core.policy.describe()


class CanaryMeter(Stage):
    """The canary on the attempt seam: every attempt of each variant, for the guard."""

    name = "canary"  # (one stage in describe(): the router and its meter)
    seam = Seam.ATTEMPT

    def __init__(self, core: CanaryCore) -> None:
        self.core = core
        self.fast_attempt = core.primary.ok  # the primary's success-path attempt

    def after_attempt(self, call: CallRecord, target: Target, error: Exception | None, seconds: float) -> None:
        if call.phase < 0:  # the primary or the routed candidate (fallbacks are no variant)
            self.core.attempted(target, error, seconds)


def compile_canary(policy: Canary, build: Build) -> tuple[CanaryRouter, CanaryMeter]:
    """The canary's two stages, its candidate compiled as a target named ``"candidate"``."""
    from prodwrap._model import ProductionModel  # (the model module imports the compiler)

    candidate = policy.candidate
    name = candidate_name(candidate)
    if isinstance(candidate, ProductionModel):
        if candidate._settings.fallback:
            raise ConfigurationError(
                f"canary candidate {name!r} has fallback= of its own: its failures would reach the guard as "
                "successes; give the host model the fallbacks"
            )
        if candidate.is_async and not build.is_async:
            raise ConfigurationError(f"canary candidate {name!r} is an async model; a sync model cannot await it")
        target = Target(candidate, Kind.MODEL, "candidate", True, policy.version or candidate.version)
    else:
        is_async = is_async_callable(candidate)
        if is_async and not build.is_async:
            raise ConfigurationError(f"canary candidate {name!r} is async; a sync model cannot await it")
        target = Target(candidate, Kind.ASYNC if is_async else Kind.SYNC, "candidate", True, policy.version)
    core = CanaryCore(policy, build, target)
    return CanaryRouter(core), CanaryMeter(core)
