"""Budgets on the seam: a reservation on the admission seam, its settlement among the observers.

:class:`BudgetCheck` (admission seam, after the cache: a hit spends nothing) reserves the
call's projected cost in every budget's current window before the call, all or nothing: the
cost model's estimate (``PerCall``, ``PerItem``, ``PerToken(max_output_tokens=)``), else the
running mean of what recent calls cost (0 until one has been settled). A window's value in
the ``StateStore`` is ``(window start, committed)``: pico-dollars spent or reserved by the
calls it admitted, changed only by compare-and-swap (``get``/``swap``), so concurrent calls
(threads, or processes sharing a store) never reserve past the limit together.
:class:`BudgetSettle` (observer seam, after the cost observer) settles the reservation to
what the call was charged (``Prediction.cost``: failed attempts and fallbacks that charge
themselves included) by adding the difference, so a call that cost what it reserved (a
``PerCall`` price on the success path) writes nothing more. A settlement for a window that
has ended is dropped: a call counts in the window it was admitted in.

On the success path ``fast_admit`` reserves (True) or sends the call to the walk (False),
where ``admit`` decides again and refuses, or lets it go over the limit with ``action="warn"``.
What the success path reserved is kept for the call in a ``ContextVar`` (one per model: right
for threads and for tasks alike), read by ``fast_observe``, by ``observe`` when the first
attempt failed and the walk took over, and by ``fast_undo``. No ``Decimal`` and no record on
the success path; with a fixed price, no lock of the stage's own either (what is reserved in
flight is counted with two ``itertools.count``; otherwise it is summed under a lock).

A fault of the store or of the estimate never costs the caller the prediction: it is counted
(``BudgetStats.faults``) and logged once per burst, and the call goes on unreserved.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from prodwrap import _clock
from prodwrap._log import Throttle, logger
from prodwrap._stage import Refuse, Seam, Stage
from prodwrap._stats import counted
from prodwrap.cost._budget import Budget, BudgetStats, budgets_of
from prodwrap.cost._budget_window import OVER, REFUSED, Held, Ticket, Window, one_admit, one_settled
from prodwrap.cost._calendar import utc
from prodwrap.cost._money import money
from prodwrap.errors import BudgetExceededError, ConfigurationError
from prodwrap.state import MemoryStore

if TYPE_CHECKING:
    from prodwrap._record import CallRecord
    from prodwrap._stage import Build
    from prodwrap.cost._models import Priced

log = logger("budget")
_throttle = Throttle(log)
_clocks = _clock.current
MEAN_OVER = 100  # the running mean of calls' cost weighs about the last this many calls


class BudgetCore:
    """What both stages share: the model's budgets, the projection and the reservations."""

    def __init__(self, budgets: Sequence[Budget], build: Build, model: Priced) -> None:
        own = MemoryStore()  # the model's own store, for budgets given none
        self.name = build.name
        self.fixed = model.fixed  # what every attempt costs, when it depends on nothing
        fixed = self.fixed
        self.windows = tuple(Window(b, build.name, own if b.store is None else b.store, fixed) for b in budgets)
        self.estimated = model.estimated
        self.mean = 0.0  # running mean of calls' cost (pico-dollars), when nothing is estimated
        self.seen = itertools.count()
        self.faults = itertools.count()
        self.spent: Callable[[CallRecord | None], int] | None = None  # a call's cost (set with cost=)
        self.stash: ContextVar[Ticket | None] = ContextVar(f"prodwrap_budget:{build.name}", default=None)
        self.fast_admit: Callable[[Any, tuple[Any, ...], dict[str, Any]], bool] = self.reserve
        self.fast_observe: Callable[[Any, Any], None] = self._settle_fast
        if fixed is not None:  # the success path's call cost what it reserved: nothing to settle
            self.fast_observe = self._settled_fixed
            if len(self.windows) == 1:  # the common case, its steps inlined
                self.fast_admit = one_admit(self.windows[0], fixed, self.stash, self.reserve)
                self.fast_observe = one_settled(self.windows[0])

    # -- reserving ----------------------------------------------------------------------------

    def projected(self, value: Any) -> int:
        """The call's projected cost in pico-dollars: the estimate, else the running mean."""
        if self.fixed is not None:
            return self.fixed
        try:
            amount = self.estimated(value)
        except Exception as exc:
            self.fault(exc, "the cost model's estimate")
            amount = None
        return int(self.mean + 0.5) if amount is None else amount

    def reserve(self, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """The success path's admission: reserve within every limit (True), or leave the call
        to the walk (False)."""
        amount = self.projected(value)
        now = _clocks.clock.time()
        held: Held = ()
        try:
            for window in self.windows:
                current = window.calendar.current
                start = current[0] if current[0] <= now < current[1] else window.calendar.window(now)[0]
                key = window.key()
                if window.reserve(key, start, amount, False) is REFUSED:
                    self.release(held, amount)
                    return False
                held += ((window, key, start),)
        except Exception:
            self.release(held, amount)
            return False  # the walk asks the store again (and counts a fault that persists)
        self.stash.set((amount, held))
        return True

    def admit(self, call: CallRecord, value: Any) -> Refuse | None:
        state = call.state
        if state is None:
            state = call.state = {}
        state[self] = (0, ())  # this call's reservations (none yet)
        amount = self.projected(value)
        now = _clocks.clock.time()
        held: Held = ()
        over: list[tuple[Window, str, float]] = []
        for window in self.windows:
            start, end = window.calendar.window(now)
            key = window.key()
            try:
                came = window.reserve(key, start, amount, window.force)
            except Exception as exc:
                self.fault(exc, "the store")
                continue  # unreserved in this window: the call goes on
            if came is REFUSED:
                self.release(held, amount)
                next(window.refusals)
                error = BudgetExceededError(
                    scope=window.scope(key),
                    limit=window.budget.limit,  # type: ignore[arg-type]
                    spent=money(window.committed(key, start)),
                    resets_at=utc(end),
                )
                return Refuse(error, "budget", final=window.budget.action == "raise")
            if came is OVER:
                over.append((window, key, end))
            held += ((window, key, start),)
        state[self] = (amount, held)
        for window, key, end in over:  # (warned only once the call is admitted by every budget)
            self.warn(window, key, amount, end)
        return None

    def warn(self, window: Window, key: str, amount: int, end: float) -> None:
        next(window.warnings)
        resets = utc(end)
        _throttle.warning(
            window.prefix,
            '%s: over budget (%s, %s USD per %s): a call projected at %s USD goes on (action="warn"); resets %s',
            self.name,
            window.scope(key),
            window.budget.limit,
            window.budget.per or "lifetime",
            money(amount),
            "never" if resets is None else resets.isoformat(),
            extra={"model": self.name, "reason": "budget"},
        )

    # -- settling -------------------------------------------------------------------------------

    def release(self, held: Held, amount: int) -> None:
        """Give back reservations the call will not use."""
        self.settle((amount, held), 0, learn=False)

    def settle(self, ticket: Ticket, actual: int, learn: bool = True) -> None:
        amount, held = ticket
        for window, key, start in held:
            try:
                window.settle(key, start, amount, actual)
            except Exception as exc:
                self.fault(exc, "the store")
        if learn and self.fixed is None:  # learn what calls cost, for the next projections
            n = next(self.seen) + 1  # (an estimate: a lost update under threads is harmless)
            self.mean += (actual - self.mean) / min(n, MEAN_OVER)

    def fast_undo(self) -> None:
        ticket = self.stash.get()
        if ticket is not None:
            self.stash.set(None)  # (``observe`` must not give it back again)
            self.release(ticket[1], ticket[0])

    def _settled_fixed(self, value: Any, out: Any) -> None:
        """The success path's call, at a fixed price: it cost what it reserved."""
        for window in self.windows:
            next(window.given)

    def _settle_fast(self, value: Any, out: Any) -> None:
        ticket = self.stash.get()
        if ticket is not None:
            spent = self.spent
            self.settle(ticket, ticket[0] if spent is None else spent(None))

    def observe(self, call: CallRecord) -> None:
        state = call.state
        if state is not None and self in state:
            ticket = state.pop(self)  # the walk's own
        elif call.attempts:
            # The success path reserved, then handed the call to the walk (its first attempt
            # failed) or to the finish point with a record: its reservation is this context's.
            # (Every other call that made an attempt went through ``admit``.)
            ticket = self.stash.get()
        else:
            return  # served by the cache, or refused before any budget was asked
        if ticket is not None and ticket[1]:
            bill = call.bill
            self.settle(ticket, 0 if bill is None else bill.units)

    # -- faults and stats -----------------------------------------------------------------------

    def fault(self, exc: Exception, what: str) -> None:
        next(self.faults)
        _throttle.warning(
            f"{self.name}:budget:fault",
            "%s: budget: %s raised %s: %s (the call goes on unreserved)",
            self.name,
            what,
            type(exc).__name__,
            exc,
            exc_info=exc,
            extra={"model": self.name, "reason": "budget_fault"},
        )

    def stats(self) -> tuple[BudgetStats, ...]:
        now = _clocks.clock.time()
        out = []
        for window in self.windows:
            budget = window.budget
            start, end = window.calendar.window(now)
            committed = 0
            scopes: dict[str, Decimal] = {}
            for key in (window.prefix,) if window.by is None else dict.fromkeys(tuple(window.keys.values())):
                try:
                    value = window.store.get(key)
                except Exception as exc:
                    self.fault(exc, "the store")
                    continue
                if value is not None and value[0] == start:
                    committed += value[1]
                    if window.by is not None:
                        scopes[window.scope(key)] = money(value[1])
            out.append(
                BudgetStats(
                    limit=budget.limit,  # type: ignore[arg-type]
                    per=budget.per,
                    by=budget.by,
                    action=budget.action,
                    tz=budget.tz,
                    spent=money(committed),
                    reserved=money(window.in_flight()),
                    window_start=None if budget.per is None else utc(start),
                    resets_at=utc(end),
                    refusals=counted(window.refusals),
                    warnings=counted(window.warnings),
                    faults=counted(self.faults),
                    scopes=dict(sorted(scopes.items(), key=lambda item: -item[1])),
                )
            )
        return tuple(out)


class BudgetCheck(Stage):
    """The budgets' admission stage: reserve the call's projected cost, or refuse the call."""

    name = "budget"
    seam = Seam.ADMISSION
    section = "budget"
    undo_interrupted = False  # an interrupted attempt ran: the finish settles it to its charge

    def __init__(self, core: BudgetCore) -> None:
        self.core = core
        self.fast_admit = core.fast_admit
        self.fast_undo = core.fast_undo

    def admit(self, call: CallRecord, value: Any) -> Refuse | None:
        try:
            return self.core.admit(call, value)
        except Exception as exc:  # a fault of the stage: the call goes on, unreserved
            self.core.fault(exc, "the budget check")
            return None

    def stats(self) -> tuple[BudgetStats, ...]:
        return self.core.stats()


class BudgetSettle(Stage):
    """The budgets' observer: settle the call's reservation to what it was charged."""

    name = "budget"
    seam = Seam.OBSERVER

    def __init__(self, core: BudgetCore) -> None:
        self.budgets = core
        self.fast_observe = core.fast_observe
        if core.fixed is None:
            # ``compile_cost`` gives ``core.spent`` what a call cost (on the success path too);
            # at a fixed price the success path's call cost what it reserved.
            self.core = core

    def observe(self, call: CallRecord) -> None:
        self.budgets.observe(call)


def compile_budgets(value: Any, build: Build) -> list[Stage]:
    """``budget=`` as its two stages (ConfigurationError for a budget that cannot work)."""
    from prodwrap.cost._models import cost_model

    budgets = budgets_of(value)
    settings = build.settings
    if settings.cost is None:
        raise ConfigurationError('budget= counts what cost= charges: give cost= as well (such as pw.PerCall("0.01"))')
    if not settings.fallback and any(b.action == "fallback" for b in budgets):
        raise ConfigurationError(
            'Budget(action="fallback") sends refused calls to the fallbacks: give fallback= as well'
        )
    core = BudgetCore(budgets, build, cost_model(settings.cost))
    return [BudgetCheck(core), BudgetSettle(core)]
