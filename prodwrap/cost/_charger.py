"""What a model's cost stages share (``Charger``): the cost model, the model's meter and the
ledger, and how an attempt is priced when the cost model raises."""

from __future__ import annotations

import threading
from functools import partial
from typing import TYPE_CHECKING, Any

from prodwrap._log import Throttle, logger
from prodwrap.cost._ledger import Ledger, Meter
from prodwrap.cost._models import Charged, Custom, Priced
from prodwrap.cost._usage import UsageError

if TYPE_CHECKING:
    from prodwrap._record import CallRecord
    from prodwrap._stage import Build

log = logger("cost")
_faults = Throttle(log)


class Charger:
    """What both stages share: the cost model, the model's meter, the ledger."""

    def __init__(self, model: Priced | None, build: Build, ledger: Ledger, meter: Meter | None = None) -> None:
        self.model = model
        self.masking = build.masking  # a cost model's error may quote the input
        self.name = build.name
        self.version = build.version
        self.ledger = ledger
        self.record = ledger.record
        self.meter = Meter(build.name, build.version, ledger) if meter is None else meter
        self.hedged = getattr(build.settings, "hedge", None) is not None
        self.stash: dict[int, float] = {}  # thread -> the success path's attempt duration
        self.handoff: dict[int, int] | None = None  # thread -> its success-path cost, for the cache
        # The model's meters by (ledger, version), this one's included (see compile_cost).
        self.history: dict[tuple[int, str | None], Meter] = {(id(ledger), build.version): self.meter}

    def meters(self) -> list[Meter]:
        """The meters of every pipeline the model has run (``stage``/``promote``/``rollback``
        compile new ones), each ledger folded first: what ``stats()`` adds up."""
        meters = list(self.history.values())
        for ledger in {id(m.ledger): m.ledger for m in meters}.values():
            ledger.drain()
        return meters

    def price(self, value: Any, out: Any, error: BaseException | None, seconds: float) -> Charged:
        """One attempt's charge (a cost model that raises: unpriced, counted, logged; one
        that gives no price: unpriced, logged)."""
        try:
            charged = self.model.charge(value, out, error, seconds)  # type: ignore[union-attr]
        except Exception as exc:
            return self.fault(exc, value, out)
        if charged[2]:
            self.unpriced()
        return charged

    def fault(self, exc: Exception, value: Any, out: Any = None) -> Charged:
        """The cost model raised ``exc`` pricing an attempt on ``value``: counted, logged once
        per burst (the sensitive values of the input and of the output, ``out``, masked), and
        the attempt left unpriced. A corrupt usage in the output (``UsageError``) is no fault
        of the cost model: the attempt is unpriced, logged as such, naming the field."""
        if isinstance(exc, UsageError):  # (under the unpriced line's throttle key: one burst)
            _faults.warning(
                f"{self.name}:unpriced",
                "%s: an attempt is unpriced: %s (counted in stats().unpriced)",
                self.name,
                exc,
                extra={"model": self.name, "version": self.version, "reason": "unpriced"},
            )
            return 0, None, True
        next(self.meter.faults)
        _faults.warning(
            f"{self.name}:cost",
            "%s: the cost model raised %s: %s (the attempt is unpriced)",
            self.name,
            type(exc).__name__,
            exc,
            exc_info=exc,
            extra={"model": self.name, "version": self.version, "reason": "cost_fault"},
            masked=partial(self.masking.mask_for, value, out),
        )
        return 0, None, True

    def unpriced(self) -> None:
        """An attempt the cost model gave no price, without raising (a fault says why itself)."""
        parts = () if self.model is None else self.model.parts()
        custom = any(isinstance(part, Custom) for part in parts)
        why = "the cost model returned None for it" if custom else "its output reports no token usage"
        if custom and len(parts) > 1:
            why = "the cost model returned None for it, or its output reports no token usage"
        _faults.warning(
            f"{self.name}:unpriced",
            "%s: an attempt is unpriced: %s (counted in stats().unpriced)",
            self.name,
            why,
            extra={"model": self.name, "version": self.version, "reason": "unpriced"},
        )

    def spent(self, call: CallRecord | None) -> int:
        """What a call cost, in pico-dollars (None: the success path's call on this thread),
        for the cache to record as the saving of each hit on the entry the call fills."""
        if call is None:
            return 0 if self.handoff is None else self.handoff.get(threading.get_ident(), 0)
        bill = call.bill
        return 0 if bill is None else bill.units
