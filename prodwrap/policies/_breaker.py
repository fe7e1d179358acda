"""The circuit breaker's stage: the state machine on the attempt seam.

The state (``"closed"``, ``"open"`` or ``"half_open"``, since when, forced open or not, and a
generation that every transition bumps) lives in a :class:`~prodwrap.state.StateStore` under
``"<model>:circuit"`` and changes by ``swap`` only, so a shared store could replace the
in-process one. The window of outcomes and the half-open probe count stay in the process
(``_circuit_window``), behind one lock held for a few integer operations.

On the success path the breaker is one hook, ``fast_admit``: it reads the state (no lock:
anything but closed sends the call to the walk) and, once the window holds ``min_calls``
outcomes, counts the attempt as a success there and then (``next()`` on a counter, no lock,
no clock read; ``success_at_admit``). A first attempt that fails is handed to the walk, whose
``after_attempt`` takes that success back and counts the failure. With ``slow_call=`` set the
duration matters, so ``fast_admit`` only reads the state and ``fast_attempt`` counts the
outcome. The walk's hooks refuse attempts while open, hand out the half-open probes, count
every outcome and give back a probe that never ran.

A fault of the breaker's own (a store that raises, a ``record=`` predicate or a transition
listener that raises) never fails the call: it is counted (``stats().circuit.faults``) and
logged at WARNING once per burst; a breaker whose store fails lets attempts through.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any, NamedTuple

from prodwrap import _clock
from prodwrap._log import Throttle, logger
from prodwrap._stage import Seam, Stage, inline_admit
from prodwrap._stats import counted
from prodwrap.errors import CircuitOpenError, ProdwrapError
from prodwrap.policies._circuit_window import FAILED, OK, SLOW, Probes, Window
from prodwrap.policies.circuit import CLOSED, HALF_OPEN, OPEN, Circuit, CircuitStats, Transition
from prodwrap.state import MemoryStore

if TYPE_CHECKING:
    from prodwrap._engine import Target
    from prodwrap._record import CallRecord
    from prodwrap.policies.circuit import CircuitBreaker
    from prodwrap.state import StateStore

_INITIAL = (CLOSED, 0.0, False, 0)  # (state, since, forced, generation)

# The success path's admission with no slow_call= (see _stage.inline_admit): closed, and once
# the window holds min_calls outcomes (until then a success may open it: the walk counts
# them), the attempt is counted a success at once (lock-free; one that fails takes it back).
_ADMIT_COUNTED = """\
{p}held = {p}get({p}key)
if ({p}held is None or {p}held[0] == {p}CLOSED) and {p}window.primed:
    next({p}window.pending)
    said = True
else:
    said = False
"""

log = logger("circuit")
_faults = Throttle(logger("circuit"))
_clocks = _clock.current


class _Mark(NamedTuple):
    """What the breaker keeps on a call's record about its current attempt."""

    probe: bool
    generation: int


class BreakerStage(Stage):
    """The compiled :class:`~prodwrap.policies.circuit.CircuitBreaker` of one model."""

    name = "circuit breaker"
    seam = Seam.ATTEMPT
    section = "circuit"

    def __init__(self, policy: CircuitBreaker, model: str, store: StateStore) -> None:
        self.policy = policy
        self.model = model
        self.store = store
        self.key = f"{model}:circuit"
        self.listeners: list[Callable[[Transition], object]] = []  # span events hook in here
        self._lock = threading.Lock()
        min_calls = policy.min_calls or policy.window
        self._window = Window(policy.window, min_calls, policy.failure_rate, policy.slow_call_rate)
        self._probes = Probes(policy.half_open_calls, policy.failure_rate, policy.slow_call_rate)
        self._trips = itertools.count()
        self._refused = itertools.count()
        self._probed = itertools.count()
        self._unprobed = itertools.count()  # probes given back: a later stage refused the attempt
        self._fault_count = itertools.count()
        self._time_open = 0.0  # seconds of the open spells that ended
        self._closed_at = -math.inf  # perf_counter() when this process last saw it close
        self._slow = policy.slow_call
        # The in-process store's own dict read, one call less per call (its get() is exactly that)
        self._get = store.values_get if type(store) is MemoryStore else store.get  # (not a subclass)
        try:
            store.swap(self.key, None, _INITIAL)  # a shared store may hold a state already: kept
        except Exception as exc:
            self._fault("store", exc)
        if self._slow is None:  # no duration needed: the success is counted as it is admitted
            self.success_at_admit = True
            names = {"get": self._get, "key": self.key, "CLOSED": CLOSED, "window": self._window}
            self.fast_admit = inline_admit(_ADMIT_COUNTED, names)  # (its lines run inline on the success path)
            self.fast_undo = self._withdraw
        else:
            self.fast_admit = self._closed
            self.fast_attempt = self._fast_attempt
        self.handle = Circuit(self)

    # -- the success path ------------------------------------------------------------------

    def _closed(self, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        held = self._get(self.key)
        return held is None or held[0] == CLOSED

    def _withdraw(self) -> None:
        next(self._window.withdrawn)  # a later stage said no: the attempt may never run

    def _fast_attempt(self, seconds: float) -> None:
        slow = self._slow
        if slow is not None and seconds > slow:
            self._count(SLOW, None)
            return
        window = self._window
        if window.primed:
            next(window.pending)  # lock-free: it enters the ring when the window is next read
        else:
            self._count(OK, None)

    # -- the general path --------------------------------------------------------------------

    def before_attempt(self, call: CallRecord, target: Target) -> Exception | None:
        if call.phase >= 0 or target.name != "primary":
            return None  # fallbacks (and a routed candidate) are outside the breaker
        try:
            held = self._held(_clocks.clock.monotonic())
        except Exception as exc:  # a failing store: the breaker steps aside
            self._fault("store", exc)
            return None
        state, since, _, generation = held
        marks = call.state
        if marks is None:
            marks = call.state = {}
        if state == CLOSED:
            marks[self] = _Mark(False, generation)
            return None
        if state == HALF_OPEN:
            with self._lock:
                probes = self._probes
                if probes.generation != generation:
                    probes.reset(generation)
                taken = probes.take()
            if taken:
                next(self._probed)
                marks[self] = _Mark(True, generation)
                return None
            marks.pop(self, None)
            next(self._refused)
            return CircuitOpenError(
                f"{self.model}: the circuit is half-open and all {self.policy.half_open_calls} probes are out"
            )
        marks.pop(self, None)
        next(self._refused)
        if held[2]:
            return CircuitOpenError(f"{self.model}: the circuit is forced open (until circuit.close())")
        left = since + self.policy.open_for - _clocks.clock.monotonic()
        return CircuitOpenError(f"{self.model}: the circuit is open; probes in {max(left, 0.0):.3g} s")

    def undo_attempt(self, call: CallRecord, target: Target) -> None:
        mark = call.state.pop(self, None) if call.state else None
        if mark is not None and mark.probe:
            next(self._unprobed)  # (it never ran: not a probe let through)
            with self._lock:
                if self._probes.generation == mark.generation:
                    self._probes.give_back()

    def after_attempt(self, call: CallRecord, target: Target, error: Exception | None, seconds: float) -> None:
        if call.phase >= 0 or target.name != "primary":
            return
        mark = call.state.pop(self, None) if call.state else None
        code = OK
        if error is not None and self._counts(error):
            code = FAILED
        slow = self._slow
        if slow is not None and seconds > slow:
            code |= SLOW
        if mark is not None and mark.probe:
            self._probe(code, mark.generation)
        elif mark is not None:  # let through while closed, on the walk
            self._count(code, mark.generation)
        elif not self.success_at_admit:  # the success path's first attempt: it failed
            self._count(code, None, started=call.start)
        elif code != OK:  # the same, already counted as a success when admitted
            self._count(code, None, withdraw=True, started=call.start)

    # -- counting and deciding -------------------------------------------------------------

    def _counts(self, error: Exception) -> bool:
        try:
            return self.policy.counts(error)
        except Exception as exc:  # a predicate's bug: the outcome counts, as without record=
            self._fault("record", exc)
            return True

    def _read(self) -> Any:
        held = self._get(self.key)
        return _INITIAL if held is None else tuple(held)

    def _held(self, now: float) -> Any:
        """The state now: an open circuit whose ``open_for`` has passed is half-open."""
        held = self._read()
        if held[0] == OPEN and not held[2] and now - held[1] >= self.policy.open_for:
            # half-open since open_for ended, whenever this is read
            held = self._move(held, HALF_OPEN, "open_for", held[1] + self.policy.open_for)
        return held

    def _count(self, code: int, generation: int | None, withdraw: bool = False, started: float | None = None) -> None:
        """An attempt let through while closed ended (``generation``: the closed state's
        it was let through in; None: the success path's, which knows only when its call
        ``started`` (``perf_counter()``): the closed state's this process last saw begin
        before that; ``withdraw``: it was counted as a success when admitted)."""
        try:
            held = self._read()
        except Exception as exc:
            self._fault("store", exc)
            return
        if held[0] != CLOSED or (generation is not None and generation != held[3]):
            return  # its window is gone: the circuit opened (and maybe closed again) meanwhile
        with self._lock:
            window = self._window
            if window.generation != held[3]:
                window.reset(held[3])  # closed again (here or by a process sharing the store)
                self._closed_at = perf_counter()
            if generation is None and started is not None and started < self._closed_at:
                return  # let through before the circuit last closed: its window is gone too
            if withdraw:
                next(window.withdrawn)
            reason = window.add(code)
        if reason is not None:
            self._move(held, OPEN, reason, _clocks.clock.monotonic())

    def _probe(self, code: int, generation: int) -> None:
        with self._lock:
            probes = self._probes
            if probes.generation != generation:
                return  # a probe of a half-open spell that already ended
            verdict = probes.add(code)
        if verdict is None:
            return
        try:
            held = self._read()
        except Exception as exc:
            self._fault("store", exc)
            return
        if held[0] == HALF_OPEN and held[3] == generation:
            to = CLOSED if verdict == "probes_passed" else OPEN
            self._move(held, to, verdict, _clocks.clock.monotonic())

    def _move(self, held: Any, to: str, reason: str, now: float, forced: bool = False) -> Any:
        """Swap the state ``held`` for ``to``; the state there now (``held`` changed first:
        the other change stands)."""
        new = (to, now, forced, held[3] + 1)
        with self._lock:
            raw = self._get(self.key)
            expected = _INITIAL if raw is None else raw
            if tuple(expected) != held or not self.store.swap(self.key, raw, new):
                return self._read()
            if held[0] == OPEN:
                self._time_open += max(0.0, now - held[1])
            if to == OPEN and held[0] != OPEN:  # a trip is a move to open (open() on an open circuit is none)
                next(self._trips)
            elif to == CLOSED:
                self._window.reset(new[3])
                self._closed_at = perf_counter()  # (the calls' own clock: a fake one may stand still)
            else:
                self._probes.reset(new[3])
        if held[0] != to:
            self._announce(Transition(self.model, held[0], to, reason, now))
        return new

    def _announce(self, transition: Transition) -> None:
        if log.isEnabledFor(logging.INFO):
            log.info(
                "%s: circuit %s -> %s (%s)",
                self.model,
                transition.from_state,
                transition.to_state,
                transition.reason,
                extra={
                    "model": self.model,
                    "from": transition.from_state,
                    "to": transition.to_state,
                    "reason": transition.reason,
                },
            )
        for listener in tuple(self.listeners):  # (as they are now: one may be added meanwhile)
            try:
                listener(transition)
            except Exception as exc:
                self._fault("listener", exc)

    def _fault(self, part: str, exc: Exception) -> None:
        next(self._fault_count)
        _faults.warning(
            f"{self.model}:circuit:{part}",
            "%s: the circuit breaker's %s raised %s: %s",
            self.model,
            part,
            type(exc).__name__,
            exc,
            exc_info=exc,
            extra={"model": self.model, "reason": f"circuit_{part}_error"},
        )

    # -- manual control and inspection ------------------------------------------------------

    def force(self, to: str) -> None:
        """``open()`` (forced open) or ``close()`` (closed, empty window), from any state."""
        reason, forced = ("forced", True) if to == OPEN else ("manual", False)
        for _ in range(100):  # a compare-and-swap loop: another change may land in between
            try:
                held = self._read()
                now = _clocks.clock.monotonic()
                if self._move(held, to, reason, now, forced) == (to, now, forced, held[3] + 1):
                    return
            except Exception as exc:  # the store's own error: counted, and said to be the store's
                self._fault("store", exc)
                verb = "open" if to == OPEN else "close"
                raise ProdwrapError(
                    f"{self.model}: the circuit's store raised {type(exc).__name__}: {exc}; {verb}() was not applied"
                ) from exc
        raise RuntimeError(f"{self.model}: the circuit's state kept changing; {to} not applied")

    def state(self) -> str:
        """The state attempts are admitted by: with a store that raises, ``"closed"`` (the
        breaker steps aside and lets them through), the fault counted."""
        try:
            return str(self._held(_clocks.clock.monotonic())[0])
        except Exception as exc:
            self._fault("store", exc)
            return CLOSED

    def stats(self) -> CircuitStats:
        now = _clocks.clock.monotonic()
        try:
            held = self._held(now)
        except Exception as exc:
            self._fault("store", exc)
            held = _INITIAL
        with self._lock:
            time_open = self._time_open + (max(0.0, now - held[1]) if held[0] == OPEN else 0.0)
            calls, failure_rate, slow_rate = self._window.rates()
        return CircuitStats(
            state=held[0],
            trips=counted(self._trips),
            time_open=time_open,
            probes=counted(self._probed) - counted(self._unprobed),
            refused=counted(self._refused),
            calls=calls,
            failure_rate=failure_rate,
            slow_call_rate=slow_rate,
            faults=counted(self._fault_count),
        )
