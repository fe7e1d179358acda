"""A ledger's index in its store: the values of each dimension, appended in chunks.

The totals of a dimension (a tag, ``"model"``, ...) are kept one key per value, so reading
them needs the list of values: the index. It only grows, and a fold adds the values it met
first as one chunk, a tuple in a slot of its own (``<name>:index#<n>:<dim>``), reserved by
compare and swap on the dimension's slot count (``<name>:index#:<dim>``): two ``swap`` calls
and the new values' length, however many values are listed already, with the store's
``get``/``swap`` alone. Ledgers sharing the store never write over each other's chunks (a
slot lost to another writer sends the chunk to the next), and a chunk whose write failed
leaves its slot empty, skipped by readers. Before it appends, a ledger reads the chunks
written since it last looked (each chunk once in its life: the whole index at its first
append to a dimension), so a value another ledger listed, or this ledger's earlier life on a
store that persists, is not listed again; one that two writers append at the same moment may
be listed twice, and readers count it once. The whole-index tuple an older version kept
(``<name>:index:<dim>``) is read too, never written.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

from prodwrap.state import StateStore


class Index:
    """The values of each dimension of one ledger (``name``) in ``store``. It keeps, per
    dimension it has added to, the ``repr`` of each value listed (this ledger's, at most its
    ``max_values`` and two more, and those of the ledgers sharing the store)."""

    __slots__ = ("listed", "prefix", "read", "store")

    def __init__(self, store: StateStore, name: str) -> None:
        self.store = store
        self.prefix = f"{name}:index"
        self.listed: dict[str, set[str]] = {}  # per dimension: the reprs of the values listed in the store
        self.read: dict[str, int] = {}  # per dimension: the slots read into ``listed`` so far

    def add(self, dim: str, values: Iterable[str | None]) -> None:
        """List ``values`` (texts, or None) under ``dim``, those not listed yet, as one chunk.

        Raises:
            Exception: what the store raised (nothing is lost: ``add`` them again).
        """
        store, prefix = self.store, self.prefix
        listed = self.listed.get(dim)
        if listed is None:
            listed = self.listed[dim] = set(map(repr, store.get(f"{prefix}:{dim}") or ()))
            self.read[dim] = 0
        count = f"{prefix}#:{dim}"
        old = store.get(count)
        slots = int(old or 0)
        for slot in range(self.read[dim], slots):  # (the chunks written since the last look)
            listed.update(map(repr, store.get(f"{prefix}#{slot}:{dim}") or ()))
        self.read[dim] = slots
        new = tuple(v for v in values if repr(v) not in listed)
        if not new:
            return
        while True:
            slot = int(old or 0)
            if not store.swap(count, old, slot + 1):
                old = store.get(count)
                continue  # another writer reserved that slot first: the next one
            if store.swap(f"{prefix}#{slot}:{dim}", None, new):
                break
        listed.update(map(repr, new))
        if slot == slots:  # (no chunk came in between: ours is read already)
            self.read[dim] = slot + 1

    def values(self, dim: str) -> Iterator[Any]:
        """Every value listed under ``dim``, once each (by ``repr``), in the order listed: texts
        and None, and any raw value an older ledger listed."""
        get, prefix = self.store.get, self.prefix
        seen: set[str] = set()
        slots = range(int(get(f"{prefix}#:{dim}") or 0))
        for key in itertools.chain((f"{prefix}:{dim}",), (f"{prefix}#{slot}:{dim}" for slot in slots)):
            for value in get(key) or ():
                shown = repr(value)
                if shown not in seen:
                    seen.add(shown)
                    yield value
