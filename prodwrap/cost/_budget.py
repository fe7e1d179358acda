"""``pw.Budget``: a limit on what a model may spend per calendar window (``budget=``).

Before each call its projected cost is reserved in the budget's window, atomically (through
the ``StateStore``), and the call is refused when the reservation would take the window past
the limit; after the call the reservation is settled to what the call was charged. So calls
running at the same time can never overspend together: each one's cost is counted before it
starts. The stages live in ``prodwrap.cost._budget_stage``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from prodwrap.cost._money import Price, dollars, price, units
from prodwrap.errors import ConfigurationError
from prodwrap.state import StateStore

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

PERIODS = (None, "hour", "day", "month")
ACTIONS = ("raise", "fallback", "warn")


@dataclass(frozen=True, slots=True)
class Budget:
    """A spending limit per calendar window (``budget=``; several in a list).

    Args:
        limit: USD per window (a ``str``, ``int`` or ``Decimal``; a ``float`` warns: it is
            not exact).
        per: the window: ``"hour"`` (the clock hour), ``"day"`` (the calendar day, 23 or 25
            hours long when daylight saving time begins or ends), ``"month"`` (the calendar
            month), each in ``tz``; None: one window for the model's lifetime (the store's).
        by: the name of a ``pw.context(...)`` tag: one window per value of the tag, named by
            its text (calls without the tag share one window of their own, scope
            ``"<by>=None"``; a value whose text raises, ``"<by>=<TypeName>"``).
        action: what a call that would exceed the limit gets: ``"raise"`` (a
            ``BudgetExceededError``, even when the model has fallbacks), ``"fallback"`` (the
            fallback chain serves it; the model needs ``fallback=``) or ``"warn"`` (it goes on,
            its cost counted, and a WARNING is logged once per burst).
        tz: the time zone the windows are in (any IANA name: ``"Europe/Paris"``).
        store: where the windows' spend lives (default: a ``MemoryStore`` of the model's own);
            a shared store makes one budget for every process using it.
    """

    limit: Price
    per: Literal["hour", "day", "month"] | None = None
    by: str | None = None
    action: Literal["raise", "fallback", "warn"] = "raise"
    tz: str = "UTC"
    store: StateStore | None = None
    _units: int = field(init=False, repr=False, compare=False, default=0)
    _zone: Any = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit", price(self.limit, "Budget.limit"))
        object.__setattr__(self, "_units", units(self.limit, "Budget.limit"))  # type: ignore[arg-type]
        if self.per not in PERIODS:
            raise ConfigurationError(f'Budget.per must be None, "hour", "day" or "month", got {self.per!r}')
        if self.by is not None and (not isinstance(self.by, str) or not self.by):
            raise ConfigurationError(f"Budget.by must be the name of a pw.context tag, got {self.by!r}")
        if self.action not in ACTIONS:
            raise ConfigurationError(f'Budget.action must be "raise", "fallback" or "warn", got {self.action!r}')
        object.__setattr__(self, "_zone", zone_of(self.tz))
        if self.store is not None and not isinstance(self.store, StateStore):
            raise ConfigurationError(f"Budget.store must be a prodwrap StateStore, got {self.store!r}")

    @property
    def zone(self) -> ZoneInfo:
        """The ``tz`` time zone."""
        return self._zone  # type: ignore[no-any-return]

    def describe(self) -> dict[str, Any]:
        return {
            "limit": dollars(self.limit),  # type: ignore[arg-type]
            "per": self.per,
            "by": self.by,
            "action": self.action,
            "tz": self.tz,
            "store": None if self.store is None else type(self.store).__name__,
        }


def zone_of(tz: object) -> ZoneInfo:
    """``tz`` as a time zone (ConfigurationError naming ``Budget.tz`` for an unknown name)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # loaded when a budget is made

    if not isinstance(tz, str) or not tz:
        raise ConfigurationError(f'Budget.tz must be a time zone name such as "UTC" or "Europe/Paris", got {tz!r}')
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"Budget.tz: unknown time zone {tz!r} (an IANA name such as 'America/New_York')"
        ) from None


@dataclass(frozen=True, slots=True)
class BudgetStats:
    """One budget's part of ``model.stats().budget`` (a tuple, in the order given).

    Attributes:
        limit: USD per window. per, by, action, tz: as configured.
        spent: USD settled in the current window (with ``by``: over the tag values this process
            has seen in it).
        reserved: USD reserved in the current window by calls not settled yet.
        window_start, resets_at: the current window's bounds (aware UTC datetimes; None for a
            lifetime budget).
        refusals: calls this process refused (``action`` ``"raise"`` or ``"fallback"``).
        warnings: calls let through over the limit (``action="warn"``).
        faults: faults of the store or of the cost model's estimate (the call went on).
        scopes: with ``by``: the spend (settled and reserved) of each scope seen in the current
            window, such as ``{"customer=acme": Decimal("0.42")}``; empty otherwise.
    """

    limit: Decimal
    per: str | None
    by: str | None
    action: str
    tz: str
    spent: Decimal
    reserved: Decimal
    window_start: datetime | None
    resets_at: datetime | None
    refusals: int
    warnings: int
    faults: int
    scopes: Mapping[str, Decimal]


def budgets_of(value: Any) -> tuple[Budget, ...]:
    """``budget=`` as a tuple of budgets (ConfigurationError for anything else)."""
    given = value if isinstance(value, list | tuple) else (value,)
    for item in given:
        if not isinstance(item, Budget):
            raise ConfigurationError(f"budget= takes a pw.Budget or a list of them, got {item!r}")
    seen = set()
    for item in given:
        same = (item.per, item.by, item.action)
        if same in seen:
            raise ConfigurationError(
                f"budget=: two budgets with per={item.per!r}, by={item.by!r}, action={item.action!r}; "
                "keep the one limit that holds"
            )
        seen.add(same)
    return tuple(given)
