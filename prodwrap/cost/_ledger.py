"""``pw.Ledger``: exact cost totals by model, version, outcome and any context tag.

Calls are handed to the ledger as they finish (:meth:`Ledger.record`, one ``deque.append``:
atomic, no lock, no ``Decimal``; the success path's plain calls, one ``None`` appended to
their kind's :meth:`Ledger._tally` list), and folded into its totals in batches (every 1024
calls, and before every read) under one lock. The totals live in a :class:`~prodwrap.state.StateStore`
(a ``MemoryStore`` of the ledger's own by default) as integer pico-dollars, added with the
store's atomic ``get``/``swap`` (compare and swap), so ledgers in several processes can share
one store. A tag's values are keyed by their text (:func:`~prodwrap._context.tag_text`, as
budgets and rate limits key them), None by None (a call without the tag). Percentiles of the
cost per call are over this process's most recent calls.

Each dimension's values are listed in the store's :class:`~prodwrap.cost._index.Index`, a
fold appending those new to it as one chunk: store work in the new values, not in the values
listed already.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections import deque
from collections.abc import Iterable, Mapping
from decimal import Decimal
from itertools import repeat
from typing import TYPE_CHECKING, Any

from prodwrap._context import tag_text
from prodwrap._log import Throttle, logger
from prodwrap.cost._index import Index
from prodwrap.cost._money import money
from prodwrap.cost._runs import grouped
from prodwrap.errors import ConfigurationError
from prodwrap.policies._numbers import as_float, count
from prodwrap.state import MemoryStore, StateStore

if TYPE_CHECKING:
    from prodwrap.cost._charge import Line

log = logger("cost")
_faults = Throttle(log)
BATCH = 1024  # calls folded into the totals at a time
RESERVED = ("model", "version", "outcome", "served_by")  # the dimensions that are not tags
OTHER = "<other>"  # a tag's values beyond max_values are counted under this one
_NONE = repr(None)  # what None (no value) is known by: max_values does not count it
_popleft = deque.popleft


class Meter:
    """One model's side of a ledger: what its calls cost (``stats().cost``, ``unpriced``),
    every charge of the call included, fallbacks' too."""

    __slots__ = ("calls", "faults", "ledger", "model", "units", "unpriced", "version")

    def __init__(self, model: str, version: str | None, ledger: Ledger) -> None:
        self.model = model
        self.version = version
        self.ledger = ledger
        self.units = 0  # pico-dollars (updated under the ledger's lock)
        self.calls = 0
        self.unpriced = 0
        self.faults = itertools.count()  # faults of the cost model (counted lock-free)


# A call's kind: (meter, tags, outcome, charges or None for one charge of the meter's
# primary, 1 if unpriced). Calls of one model in one context append equal kinds one after
# another, so the fold groups runs of them (the plain ones are counted in a tally instead).
Kind = tuple[Meter, Mapping[str, Any], str, "tuple[Line, ...] | None", int]
Entry = tuple[Kind, int]  # (kind, pico-dollars)
Run = tuple[Kind, int, int, Iterable[int]]  # calls of one kind: (kind, calls, pico-dollars, each call's amount)


NESTED = "nested"  # the outcome of an entry that counts only in its model's own meter


class Ledger:
    """Exact cost totals, thread-safe, shareable across models (``ledger=``).

    Args:
        store: where the totals are kept (default: a ``MemoryStore`` of its own).
        name: the prefix of its keys in the store (ledgers sharing a store and a name share
            their totals).
        window: how many recent calls :meth:`percentile` is computed over.
        max_values: the most distinct values (texts) kept per tag; later values of that tag
            are counted under ``"<other>"`` (a tag such as a request id has one value per
            call). None is not one of them: calls with the tag set to None are always under
            None.

    Every call of every model recording into it counts once, at its cost (a cached call at
    0); a call is charged to the model, version and ``served_by`` of each of its charges, and
    to its outcome and tags as a whole.
    """

    def __init__(
        self, store: StateStore | None = None, *, name: str = "ledger", window: int = 8192, max_values: int = 10_000
    ) -> None:
        if store is not None and not isinstance(store, StateStore):
            raise ConfigurationError(f"Ledger.store must be a StateStore, got {store!r}")
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"Ledger.name must be a non-empty str, got {name!r}")
        window, max_values = count("Ledger", "window", window), count("Ledger", "max_values", max_values)
        self.store: StateStore = MemoryStore() if store is None else store
        self.name = name
        self.max_values = max_values
        self.pending: deque[Entry] = deque()
        self._tallies: dict[tuple[Any, ...], tuple[Kind, int, list[None]]] = {}  # see _tally()
        self._owners: dict[tuple[Any, ...], int] = {}  # how many live hooks count in each tally
        self._released: deque[tuple[Any, ...]] = deque()  # a tally's hook gone (appended at its collection)
        self._lock = threading.Lock()
        self._recent: deque[int] = deque(maxlen=window)  # pico-dollars of the latest calls
        self._known: dict[str, set[str]] = {}  # reprs of the texts seen per dimension (max_values, OTHER, None)
        self._owed: dict[str, int] = {}  # sums a failing store has not taken yet
        self._index = Index(self.store, name)
        self._unindexed: dict[str, list[str | None]] = {}  # per dimension: values not yet in the store's index
        self.faults = 0

    # -- recording ---------------------------------------------------------------------

    def record(self, entry: Entry) -> None:
        """A finished call (an :data:`Entry`). The success path appends to
        ``pending`` itself and calls :meth:`fold_soon` when it holds ``BATCH`` calls."""
        pending = self.pending
        pending.append(entry)
        if len(pending) >= BATCH:
            self.fold_soon()

    def _tally(self, kind: Kind, amount: int, owner: object) -> list[None]:
        """For a cost hook (``owner``): the list a call of ``kind`` at ``amount`` each is
        counted in, one ``None`` appended per call (a specialized list append: no frame, no
        lock), for the success path's calls without tags outside a calling model. The fold
        takes what the list holds, exactly (its length read, that slice deleted: each atomic),
        and counts it as that many entries of the kind. Hooks of the same kind and amount
        (a model's recompiled pipelines) share the list; once every one of them has been
        collected, the next fold counts what it still holds and drops it."""
        meter, _, outcome, lines, missing = kind
        key = (meter, outcome, lines, missing, amount)
        with self._lock:
            found = self._tallies.get(key)
            if found is None:
                found = self._tallies[key] = (kind, amount, [])
            self._owners[key] = self._owners.get(key, 0) + 1
        weakref.finalize(owner, self._released.append, key)  # (no lock taken at collection)
        return found[2]

    def _unowned(self) -> list[tuple[Kind, int, list[None]]]:
        """The tallies whose last hook has been collected, taken out (under the lock)."""
        gone = []
        released, owners = self._released, self._owners
        while released:
            key = released.popleft()
            owners[key] -= 1
            if not owners[key]:
                del owners[key]
                gone.append(self._tallies.pop(key))
        return gone

    def fold_soon(self) -> None:
        """Fold what is pending now, unless another thread is doing it (never raises)."""
        if self._lock.acquire(blocking=False):
            try:
                self._fold()
            except Exception as exc:  # (the store's faults are caught inside; this is a bug's)
                self._fault(exc)
            finally:
                self._lock.release()

    def drain(self) -> None:
        """Fold every call recorded so far into the totals (reads do it first)."""
        with self._lock:
            self._fold()

    def _fold(self) -> None:
        pending = self.pending
        n = len(pending)
        tallied: list[Run] = []
        for kind, each, counted in itertools.chain(self._tallies.values(), self._unowned()):
            k = len(counted)
            if k:
                del counted[:k]  # (what is appended after len() stays for the next fold)
                tallied.append((kind, k, each * k, repeat(each, k)))
        if not n and not tallied and not self._owed:
            return
        runs = grouped(list(map(_popleft, repeat(pending, n))))
        sums: dict[tuple[str, str | None], int] = {}
        total = calls = unpriced = 0
        recent = self._recent
        key: tuple[str, str | None]
        for (meter, tags, outcome, lines, missing), times, paid, amounts in itertools.chain(runs, tallied):
            meter.units += paid
            meter.calls += times
            meter.unpriced += missing * times
            if outcome == NESTED:  # a fallback model's call: its caller's entry counts it in the totals
                continue
            if lines is None:  # the meter's primary, one charge each
                spent = paid
                recent.extend(amounts)
                for key in (("model", meter.model), ("version", meter.version), ("served_by", "primary")):
                    sums[key] = sums.get(key, 0) + spent
            else:
                spent = 0
                for line in lines:
                    if line.ledger is self:
                        continue  # a fallback model's charge, recorded here by a caller (its own entry)
                    spent += line.units
                    for key in (("model", line.model), ("version", line.version), ("served_by", line.served_by)):
                        sums[key] = sums.get(key, 0) + line.units * times
                recent.extend(repeat(spent, times))
                spent *= times
            total += spent
            calls += times
            unpriced += missing * times
            key = ("outcome", outcome)
            sums[key] = sums.get(key, 0) + spent
            for tag, value in tags.items():  # by text, as budgets and rate limits key them (a list too)
                key = ("tag:" + tag, _text(value))
                sums[key] = sums.get(key, 0) + spent
        self._write(total, calls, unpriced, sums)

    def _write(self, total: int, calls: int, unpriced: int, sums: dict[tuple[str, str | None], int]) -> None:
        owed = self._owed
        for suffix, amount in (("units", total), ("calls", calls), ("unpriced", unpriced)):
            if amount:
                key = f"{self.name}:{suffix}"
                owed[key] = owed.get(key, 0) + amount
        for (dim, text), amount in sums.items():
            value, shown = text, repr(text)
            known = self._known.setdefault(dim, set())
            if shown not in known and text is not None and len(known) - (_NONE in known) >= self.max_values:
                value, shown = OTHER, repr(OTHER)  # (None, a call with the tag set to None, is never one of them)
            if shown not in known:
                known.add(shown)
                self._unindexed.setdefault(dim, []).append(value)
            key = f"{self.name}:by:{dim}:{shown}"
            owed[key] = owed.get(key, 0) + amount
        unindexed = self._unindexed
        for dim in list(unindexed):  # (a failing store: tried at every fold)
            try:
                self._index.add(dim, unindexed[dim])
            except Exception as exc:
                self._fault(exc)
                return
            del unindexed[dim]
        for key in list(owed):
            try:
                self._add(key, owed[key])
            except Exception as exc:
                self._fault(exc)
                return  # the rest is kept, and written with the next batch
            del owed[key]

    def _add(self, key: str, amount: int) -> None:
        store = self.store
        while True:  # compare and swap: exact under concurrent writers sharing the store
            old = store.get(key)
            if store.swap(key, old, (old or 0) + amount):
                return

    def _fault(self, exc: Exception) -> None:
        self.faults += 1
        _faults.warning(
            f"ledger:{self.name}",
            "ledger %s: the store raised %s: %s (the totals are kept and written later)",
            self.name,
            type(exc).__name__,
            exc,
            exc_info=exc,
        )

    # -- reading -----------------------------------------------------------------------

    def _get(self, suffix: str) -> int:
        return int(self.store.get(f"{self.name}:{suffix}") or 0)

    def total(self, by: str | None = None) -> Any:
        """The total cost in USD (``Decimal``); with ``by``, a dict of totals by
        ``"model"``, ``"version"``, ``"outcome"``, ``"served_by"`` or any ``pw.context`` tag,
        most expensive first. A tag's totals are keyed by the values' text (``f"{value}"``, as
        a budget's scopes are: ``1`` and ``"1"`` add up under ``"1"``), calls without the tag
        (or with None) under None."""
        self.drain()
        if by is None:
            return money(self._get("units"))
        if not isinstance(by, str) or not by:
            raise ValueError(f"Ledger.total(by=...) names a tag or one of {', '.join(RESERVED)}, got {by!r}")
        dim = by if by in RESERVED else "tag:" + by
        totals: dict[str | None, int] = {}
        for v in self._index.values(dim):  # (an older ledger sharing the store may have indexed a raw value: its text)
            name = _text(v)
            totals[name] = totals.get(name, 0) + self._get(f"by:{dim}:{v!r}")
        if dim.startswith("tag:"):
            tagged = sum(totals.values())
            untagged = self._get("units") - tagged
            if untagged or not totals:  # (added to calls tagged None, if any)
                totals[None] = totals.get(None, 0) + untagged
        ordered = sorted(totals.items(), key=lambda item: (-item[1], repr(item[0])))
        return {value: money(amount) for value, amount in ordered}

    def calls(self) -> int:
        """Calls recorded (cached and failed ones included)."""
        self.drain()
        return self._get("calls")

    def unpriced(self) -> int:
        """Calls with an attempt whose cost could not be determined."""
        self.drain()
        return self._get("unpriced")

    def cost_per_request(self) -> Decimal | None:
        """The mean cost of a call in USD (to the pico-dollar); None before the first call."""
        self.drain()
        calls = self._get("calls")
        if not calls:
            return None
        return _per(Decimal(self._get("units")) / calls)

    def percentile(self, q: float) -> Decimal | None:
        """The ``q`` quantile (0.5: median, 0.95) of the cost per call in USD, over this
        process's most recent ``window`` calls (linear interpolation); None before any."""
        x = as_float(q)  # (numpy's floats and ints too, never a bool)
        if x is None or not 0 <= x <= 1:
            raise ValueError(f"Ledger.percentile takes a quantile between 0 and 1, got {q!r}")
        q = x
        self.drain()
        with self._lock:
            ordered = sorted(self._recent)
        if not ordered:
            return None
        pos = Decimal(repr(float(q))) * (len(ordered) - 1)
        low = int(pos)
        high = min(low + 1, len(ordered) - 1)
        return _per(ordered[low] + (ordered[high] - ordered[low]) * (pos - low))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "store": type(self.store).__name__}

    def __repr__(self) -> str:
        return f"<Ledger {self.name!r} on {type(self.store).__name__}>"


def _text(value: Any) -> str | None:
    """A tag value as the ledger keys it: its text (:func:`tag_text`, as budgets and rate
    limits key it; a ``str`` is its own, a subclass of it may print otherwise), None for None
    (a call without the tag)."""
    return value if value is None or type(value) is str else tag_text(value)


def _per(units: Decimal | int) -> Decimal:
    """Pico-dollars (possibly fractional) as USD, to the pico-dollar."""
    return money(int(Decimal(units).to_integral_value()))
