"""Charging on the seam: an attempt stage prices every attempt, an observer records the call.

:class:`ChargeStage` (attempt seam) prices each attempt of the primary as it ends, failed
ones and every attempt a hedge started included, onto the call's :class:`Bill`
(``CallRecord.bill``). A fallback that is a ``ProductionModel`` is charged by its own
pipeline: while its attempt runs, ``COLLECT`` holds a list its cost observer adds its
charges to, and they join the bill under the fallback's name. Plain callables and
``pw.Constant`` cost nothing.

:class:`CostObserver` (observer seam, first of the observers) hands the finished call to the
ledger and to a calling model's ``COLLECT``. On the success path it prices the one attempt
in ``fast_observe(value, out)``, which has the output a token price reads; a price per second
gets the attempt's duration from ``ChargeStage.fast_attempt``, kept for the thread until
``fast_observe`` on the same thread takes it (nothing runs between the two on that thread).
The success-path charge is one ``deque.append`` (one list append, a call counted in its
kind's tally, for a ``PerCall`` call without tags outside a calling model): no lock, no
``Decimal``, no record.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from prodwrap import _clock
from prodwrap._context import EVER, NO_TAGS, TAGS, set_tags
from prodwrap._stage import Seam, Serve, Stage
from prodwrap._target import MODEL
from prodwrap.cost._charge import Bill, Line
from prodwrap.cost._charger import Charger
from prodwrap.cost._ledger import BATCH, NESTED, Ledger
from prodwrap.cost._models import cost_model
from prodwrap.cost._money import money
from prodwrap.errors import ConfigurationError

if TYPE_CHECKING:
    from prodwrap._engine import Target
    from prodwrap._record import CallRecord
    from prodwrap._stage import Build


class Collected(list[Line]):
    """The charges of a fallback model's call, collected for the calling model, which records
    them in ``ledger``: a fallback sharing that ledger leaves the totals to its caller."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__()
        self.ledger = ledger


COLLECT: ContextVar[Collected | None] = ContextVar("prodwrap_charges", default=None)
# The tags while a calling model's COLLECT is set outside every pw.context: none, but not
# NO_TAGS, so that TAGS alone tells the success path's plain case (PLAIN) that neither is set.
CALLED: Mapping[str, Any] = MappingProxyType({})
PLAIN = ((TAGS, NO_TAGS, EVER),)  # the plain case's guard: no tags, no calling model

_LOST = RuntimeError("a hedged attempt that lost its race (its output was discarded)")
_clocks = _clock.current
_ENDED = RuntimeError("the call ended while the attempt ran (cancelled or interrupted)")


def charges_cost(model: Any) -> bool:
    """Whether a fallback ``ProductionModel`` charges through its own pipeline."""
    return any(isinstance(stage, CostObserver) for stage in model._engine.stages)


class ChargeStage(Stage):
    """The attempt seam's charge: every attempt of the primary, onto the call's bill."""

    name = "cost"
    seam = Seam.ATTEMPT
    section = "unpriced"
    success_at_finish = True  # the success path's attempt is priced by CostObserver.fast_observe

    def __init__(self, charger: Charger) -> None:
        self.charger = charger
        model = charger.model
        if model is not None and model.needs_seconds:
            stash = charger.stash
            get_ident = threading.get_ident

            def fast_attempt(seconds: float) -> None:
                stash[get_ident()] = seconds

            self.fast_attempt = fast_attempt

    def after_attempt(self, call: CallRecord, target: Target, error: Exception | None, seconds: float) -> None:
        if call.phase >= 0:  # a fallback: a model charges itself; callables and constants cost 0
            if target.kind is MODEL:
                self._collected(call, target)
            return
        charger = self.charger
        if charger.model is None:
            return
        bill = call.bill
        if bill is None:
            bill = call.bill = Bill()
        version = charger.version if target.version is None else target.version  # (a canary's candidate)
        n = call.raced if charger.hedged else 1  # every attempt a hedge started is charged
        first = call.attempts - n + 1
        spans = call.spans if n > 1 else None  # a raced attempt is charged its own seconds
        for i in range(n):
            won = n == 1 or i == call.won
            output = call.result if error is None and won else None
            failed = _LOST if error is None and not won else error  # a loser of a race that was won
            took = seconds if spans is None else spans[i]
            amount, tokens, missing = charger.price(call.input, output, failed, took)
            bill.lines.append(Line(charger.name, version, target.name, first + i, amount, tokens, missing, None))

    def undo_attempt(self, call: CallRecord, target: Target) -> None:
        """The call ended while this attempt ran (cancelled, interrupted): it consumed compute
        all the same, and is charged as a failed attempt (a token price: unpriced). The
        charge stage is the innermost: no later stage can refuse an attempt it let through,
        and a hedge's extra attempt that never started (``call.racing``) costs nothing."""
        if call.phase >= 0 or call.racing:
            return
        self.after_attempt(call, target, _ENDED, max(0.0, _clocks.clock.monotonic() - call.began))

    def _collected(self, call: CallRecord, target: Target) -> None:
        bill = call.bill
        pending = None if bill is None else bill.pending
        if pending is None:
            return
        bill.pending = None
        token, tagged, collected = pending
        with contextlib.suppress(ValueError):  # (reset in another context: dropped with it)
            COLLECT.reset(token)
            if tagged is not None:
                TAGS.reset(tagged)
        bill.lines.extend(line._replace(served_by=target.name) for line in collected)

    def stats(self) -> int:
        return sum(meter.unpriced for meter in self.charger.meters())


class CollectingStage(ChargeStage):
    """A :class:`ChargeStage` for a model with fallbacks that charge themselves: ``COLLECT``
    is set for each such fallback's attempt."""

    def __init__(self, charger: Charger) -> None:
        super().__init__(charger)
        self.fast_admit = _yes

    def before_attempt(self, call: CallRecord, target: Target) -> None:
        if call.phase >= 0 and target.kind is MODEL:
            bill = call.bill
            if bill is None:
                bill = call.bill = Bill()
            collected = Collected(self.charger.ledger)
            tagged = set_tags(CALLED) if TAGS.get() is NO_TAGS else None  # (see PLAIN)
            bill.pending = (COLLECT.set(collected), tagged, collected)

    def undo_attempt(self, call: CallRecord, target: Target) -> None:
        if call.phase >= 0 and target.kind is MODEL:
            self._collected(call, target)  # what it spent before it ended is still charged
        else:
            super().undo_attempt(call, target)


def _yes(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    return True


class CostObserver(Stage):
    """Records every finished call in the ledger (and with a calling model's ``COLLECT``)."""

    name = "cost"
    seam = Seam.OBSERVER
    section = "cost"

    def __init__(self, charger: Charger) -> None:
        self.charger = charger
        self.ledger = charger.ledger
        fixed = None if charger.model is None else charger.model.fixed
        self.fast_observe = _priced_hook(charger) if fixed is None else _fixed_hook(charger, fixed)
        self.fast_served = _served_hook(charger)

    def observe(self, call: CallRecord) -> None:
        charger = self.charger
        bill = call.bill
        if bill is None:
            bill = call.bill = Bill()
            model = charger.model
            if model is not None and call.attempts and call.errors is None and call.outcome == "ok":
                # the success path's attempt, on a record (another observer reads one)
                seconds = charger.stash.pop(threading.get_ident(), 0.0) if model.needs_seconds else 0.0
                amount, tokens, missing = charger.price(call.input, call.value, None, seconds)
                bill.lines.append(Line(charger.name, charger.version, "primary", 1, amount, tokens, missing, None))
            elif model is not None and call.attempts and call.reasons in (["cancelled"], ["interrupted"]):
                # the success path's attempt, ended by its caller mid-way: it ran all the same
                amount, tokens, missing = charger.price(call.input, None, _ENDED, call.latency)
                bill.lines.append(Line(charger.name, charger.version, "primary", 1, amount, tokens, missing, None))
        lines = tuple(bill.lines)
        sink = COLLECT.get()
        if sink is not None and sink.ledger is charger.ledger:  # the caller records it all, as its own
            charger.record(((charger.meter, TAGS.get(), NESTED, lines, int(bill.unpriced)), bill.units))
            sink.extend(line if line.ledger is not charger.ledger else line._replace(ledger=None) for line in lines)
            return
        charger.record(((charger.meter, TAGS.get(), call.outcome, lines, int(bill.unpriced)), bill.units))
        if sink is not None:
            sink.extend(line if line.ledger is not None else line._replace(ledger=charger.ledger) for line in lines)

    def stats(self) -> Decimal:
        return money(sum(meter.units for meter in self.charger.meters()))


def _served_hook(charger: Charger) -> Callable[[Any, Serve], None]:
    """A call an admission stage served on the success path (a cache hit): no attempt, no
    charge; the ledger records the call, as ``observe`` records it from a record."""
    meter, ledger, tags, collecting = charger.meter, charger.ledger, TAGS.get, COLLECT.get
    pending = ledger.pending
    append = pending.append

    def served(value: Any, decision: Serve) -> None:
        sink = collecting()
        outcome = NESTED if sink is not None and sink.ledger is ledger else decision.outcome
        append(((meter, tags(), outcome, (), 0), 0))  # (Ledger.record, inline)
        if len(pending) >= BATCH:
            ledger.fold_soon()

    def plain(outcome: str) -> tuple[Any, list[None], Callable[[], None]]:
        """Outside every ``pw.context`` and calling model: the call counted in its kind's tally."""
        return PLAIN, ledger._tally((meter, NO_TAGS, outcome, (), 0), 0, served), ledger.fold_soon

    served.plain = plain  # type: ignore[attr-defined]
    return served


def _fixed_hook(charger: Charger, amount: int) -> Callable[[Any, Any], None]:
    """The success path's charge when every attempt costs ``amount`` (``PerCall``): one entry
    appended to the ledger's pending calls (a prebuilt one for a call without tags outside a
    calling model: no allocation). For those calls the hook's ``plain`` lets the compiled
    success path count the call in the kind's ``Ledger._tally`` without calling the hook, and
    fold every 1024 calls (its ``tick``)."""
    meter, ledger, handoff = charger.meter, charger.ledger, charger.handoff
    pending = ledger.pending
    append, tags, collecting, get_ident = pending.append, TAGS.get, COLLECT.get, threading.get_ident
    line = Line(charger.name, charger.version, "primary", 1, amount, None, False, ledger)
    shared_line = line._replace(ledger=None)
    plain = ((meter, NO_TAGS, "ok", None, 0), amount)

    def charge(value: Any, out: Any) -> None:
        sink = collecting()
        if sink is None:
            called = tags()
            append(plain if called is NO_TAGS else ((meter, called, "ok", None, 0), amount))
        else:
            shared = sink.ledger is ledger  # a fallback of a model sharing the ledger
            append(((meter, tags(), NESTED if shared else "ok", None, 0), amount))
            sink.append(shared_line if shared else line)
        if len(pending) >= BATCH:
            ledger.fold_soon()
        if handoff is not None:
            handoff[get_ident()] = amount

    if handoff is None:  # (see prodwrap._stage.Stage.fast_observe; the cache reads each call's cost)
        charge.plain = (PLAIN, ledger._tally(*plain, charge), ledger.fold_soon)  # type: ignore[attr-defined]
    return charge


def _priced_hook(charger: Charger) -> Callable[[Any, Any], None]:
    """The success path's charge of the one attempt, from its input, output and duration."""
    meter, ledger, handoff, model = charger.meter, charger.ledger, charger.handoff, charger.model
    pending = ledger.pending
    append, tags, collecting, get_ident = pending.append, TAGS.get, COLLECT.get, threading.get_ident
    stash = charger.stash if model is not None and model.needs_seconds else None
    charge = model.charge if model is not None else None
    name, version = charger.name, charger.version
    lines = None if charge is not None else ()
    kinds = ((meter, NO_TAGS, "ok", lines, 0), (meter, NO_TAGS, "ok", lines, 1))  # by missing

    def priced(value: Any, out: Any) -> None:
        seconds = 0.0 if stash is None else stash.pop(get_ident(), 0.0)
        if charge is None:
            amount, tokens, missing = 0, None, False
        else:
            try:
                amount, tokens, missing = charge(value, out, None, seconds)
            except Exception as exc:
                amount, tokens, missing = charger.fault(exc, value, out)  # (counts, logs)
            else:
                if missing:
                    charger.unpriced()
        sink = collecting()
        shared = sink is not None and sink.ledger is ledger  # a fallback of a model sharing the ledger
        called = tags()
        if sink is None and called is NO_TAGS:
            append((kinds[missing], amount))
        else:
            append(((meter, called, NESTED if shared else "ok", lines, int(missing)), amount))
        if len(pending) >= BATCH:
            ledger.fold_soon()
        if handoff is not None:
            handoff[get_ident()] = amount
        if sink is not None:
            sink.append(Line(name, version, "primary", 1, amount, tokens, missing, None if shared else ledger))

    return priced


def compile_cost(
    settings: Any, build: Build, stages: list[Stage], own_ledger: Ledger | None = None, stats: Any = None
) -> None:
    """Add the cost stages to ``stages`` for ``cost=``/``ledger=`` (or fallbacks that charge
    themselves): the observer first among the observers (the cache reads what a call cost),
    the charge innermost on the attempt seam."""
    from prodwrap._model import ProductionModel  # (the model module imports the compiler)

    collecting = any(isinstance(fb, ProductionModel) and charges_cost(fb) for fb in settings.fallback)
    ledger = settings.ledger
    if settings.cost is None and not collecting:
        if ledger is not None:
            raise ConfigurationError("ledger= records what cost= charges: give cost= as well")
        return
    if ledger is not None and not isinstance(ledger, Ledger):
        raise ConfigurationError(f"ledger= takes a pw.Ledger, got {ledger!r}")
    model = None if settings.cost is None else cost_model(settings.cost)
    ledger = ledger or own_ledger or Ledger(name=f"{build.name}:ledger")
    # The model's meters, one per ledger and version, kept by its stats recorder across the
    # pipelines it runs (stage/promote/rollback compile new ones): stats().cost goes on.
    key = (id(ledger), build.version)
    known = None if stats is None else stats.meters.get(key)
    charger = Charger(model, build, ledger, known)
    if stats is not None:
        stats.meters.setdefault(key, charger.meter)
        charger.history = stats.meters
    for stage in stages:
        core = getattr(stage, "core", None)
        # the cache (its hits save what a fill cost) and the budgets (they settle to what a call cost)
        if stage.seam is Seam.OBSERVER and hasattr(core, "spent"):
            # (a stage kept from an earlier engine: its calls still in flight hand off here too)
            prior = getattr(getattr(core, "spent", None), "__self__", None)
            charger.handoff = prior.handoff if isinstance(prior, Charger) and prior.handoff is not None else {}
            core.spent = charger.spent  # type: ignore[union-attr]
    stages.insert(0, CostObserver(charger))
    stages.append(CollectingStage(charger) if collecting else ChargeStage(charger))


def meter_of(stages: Any) -> Charger | None:
    for stage in stages:
        if isinstance(stage, CostObserver):
            return stage.charger
    return None
