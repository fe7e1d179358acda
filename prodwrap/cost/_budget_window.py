"""One budget compiled: its window in the store, reserved and settled by compare-and-swap.

A window's value in the ``StateStore`` is ``(window start, committed)``: the pico-dollars
spent or reserved in it by the calls it admitted. It changes only by ``swap`` (compare and
swap, after a ``get``), so concurrent calls, in threads or in processes sharing a store,
never reserve past the limit together. A value kept for an earlier window counts as 0 (the
window reset); a settlement for a window that has ended is dropped (a call counts in the
window that admitted it).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from prodwrap import _clock
from prodwrap._context import TAGS, tag_text
from prodwrap._stats import counted
from prodwrap.cost._calendar import Calendar
from prodwrap.state import MemoryStore, StateStore

if TYPE_CHECKING:
    from prodwrap.cost._budget import Budget

_clocks = _clock.current
TRIES = 1000  # compare-and-swaps lost in a row before the store counts as failing
MAX_SCOPES = 10_000  # tag texts whose keys are remembered (and listed in stats) per budget
WITHIN, OVER, REFUSED = 0, 1, 2  # what a reservation came to
Held = tuple[tuple["Window", str, int], ...]  # (window, key, window start) of each reservation
Ticket = tuple[int, Held]  # (pico-dollars reserved in each, where)
Admit = Callable[[Any, tuple[Any, ...], dict[str, Any]], bool]


class Window:
    """One budget, compiled: its calendar, its keys in the store, its counters."""

    __slots__ = (
        "budget",
        "by",
        "calendar",
        "cut",
        "fixed",
        "force",
        "get",
        "given",
        "keys",
        "limit",
        "lock",
        "model",
        "prefix",
        "refusals",
        "reserved",
        "store",
        "swap",
        "taken",
        "warnings",
    )

    def __init__(self, budget: Budget, model: str, store: StateStore, fixed: int | None) -> None:
        self.budget = budget
        self.model = model
        self.limit: int = budget._units
        self.by = budget.by
        self.force = budget.action == "warn"
        self.calendar = Calendar(budget.per, budget.zone)
        self.prefix = f"{model}:budget:{budget.per or 'lifetime'}:{budget.action}" + (f":{self.by}" if self.by else "")
        self.cut = len(self.prefix) - len(self.by or "")  # key[cut:] is the scope "<by>=<value>"
        self.keys: dict[str, str] = {}  # a tag value's text (tag_text) -> its scope's key
        self.store = store
        self.get: Callable[[str], Any] = store.values_get if type(store) is MemoryStore else store.get
        self.swap = store.swap
        self.refusals = itertools.count()
        self.warnings = itertools.count()
        # What this process's calls in flight reserved: with a fixed price, reservations taken
        # less those given back (or settled), times the price; otherwise a sum under a lock.
        self.fixed = fixed
        self.taken = itertools.count()
        self.given = itertools.count()
        self.lock = threading.Lock()
        self.reserved = 0

    def key(self) -> str:
        """This call's key: one per text of the ``by`` tag's value (:func:`tag_text`, as the
        ledger and rate limits key it: ``1`` and ``"1"`` share a scope, ``1`` and ``True`` do
        not, whichever comes first); calls without the tag share ``"<by>=None"``'s."""
        by = self.by
        if by is None:
            return self.prefix
        value = TAGS.get().get(by)
        text = value if type(value) is str else tag_text(value)  # (a str subclass may print otherwise)
        key = self.keys.get(text)
        if key is None:
            key = f"{self.prefix}={text}"
            if len(self.keys) < MAX_SCOPES:
                self.keys[text] = key
        return key

    def scope(self, key: str) -> str:
        return key[self.cut :] if self.by else self.model

    def reserve(self, key: str, start: int, amount: int, force: bool) -> int:
        """Reserve ``amount`` in the window: WITHIN the limit, OVER it (only when ``force``),
        or REFUSED (nothing reserved). The limit holds while what is committed stays at most
        the limit, and a window that is spent admits nothing, not even a call projected to
        cost 0."""
        get, swap, limit = self.get, self.swap, self.limit
        for _ in range(TRIES):
            old = get(key)
            committed = 0 if old is None or old[0] != start else old[1]
            over = committed >= limit or committed + amount > limit
            if over and not force:
                return REFUSED
            if swap(key, old, (start, committed + amount)):
                if self.fixed is None:
                    with self.lock:
                        self.reserved += amount
                else:
                    next(self.taken)
                return OVER if over else WITHIN
        raise RuntimeError(f"{key}: {TRIES} compare-and-swaps lost in a row")

    def settle(self, key: str, start: int, amount: int, actual: int) -> None:
        """A reservation of ``amount`` turned out to cost ``actual`` (0: given back unused)."""
        if self.fixed is None:
            with self.lock:
                self.reserved -= amount
        else:
            next(self.given)
        if actual != amount:
            self.add(key, start, actual - amount)

    def add(self, key: str, start: int, delta: int) -> None:
        get, swap = self.get, self.swap
        for _ in range(TRIES):
            old = get(key)
            if old is None or old[0] != start:
                return  # the window ended: the call counted in it, and that is over
            if swap(key, old, (start, max(0, old[1] + delta))):
                return
        raise RuntimeError(f"{key}: {TRIES} compare-and-swaps lost in a row")

    def committed(self, key: str, start: int) -> int:
        old = self.get(key)
        return 0 if old is None or old[0] != start else int(old[1])

    def in_flight(self) -> int:
        """Pico-dollars this process's calls in flight have reserved."""
        if self.fixed is None:
            return self.reserved
        return (counted(self.taken) - counted(self.given)) * self.fixed


def one_admit(window: Window, amount: int, stash: ContextVar[Ticket | None], general: Admit) -> Admit:
    """:meth:`BudgetCore.reserve` for one budget at a fixed price, its steps inlined."""
    get, swap, limit, calendar, key_of, taken = (
        window.get,
        window.swap,
        window.limit,
        window.calendar,
        window.key,
        window.taken,
    )
    keep, clocks = stash.set, _clocks
    prefix = None if window.by else window.prefix

    def fast_admit(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        now = clocks.clock.time()
        current = calendar.current
        start = current[0] if current[0] <= now < current[1] else calendar.window(now)[0]
        key = prefix or key_of()
        try:
            old = get(key)
            committed = 0 if old is None or old[0] != start else old[1]
            if committed >= limit or committed + amount > limit:
                return False  # the walk refuses it (or lets it go over, to warn)
            if not swap(key, old, (start, committed + amount)):
                return general(value, args, kwargs)  # another call came first: the loop
        except Exception:
            return False  # the walk asks the store again (and counts a fault that persists)
        next(taken)
        keep((amount, ((window, key, start),)))
        return True

    return fast_admit


def one_settled(window: Window) -> Callable[[Any, Any], None]:
    """:meth:`BudgetCore._settled_fixed` for one budget."""
    given = window.given

    def fast_observe(value: Any, out: Any) -> None:
        next(given)

    return fast_observe
