"""pw.Ledger's index of tag values in the store: appended in chunks, O(new values) a fold."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import prodwrap as pw
from prodwrap.state import MemoryStore


class CountingStore(MemoryStore):
    """Counts the ``swap`` calls on the ledger's index keys and the values they wrote."""

    def __init__(self) -> None:
        super().__init__()
        self.swaps = 0  # every swap
        self.index_swaps = 0  # swaps of an index key (its slot count or a chunk)
        self.index_written = 0  # items of the tuples written under index keys
        self.index_read = 0  # items of the tuples read from index keys

    def get(self, key: str) -> Any:
        value = super().get(key)
        if ":index" in key and isinstance(value, tuple):
            self.index_read += len(value)
        return value

    def swap(self, key: str, expected: Any, new: Any) -> bool:
        self.swaps += 1
        if ":index" in key:
            self.index_swaps += 1
            self.index_written += len(new) if isinstance(new, tuple) else 0
        return super().swap(key, expected, new)

    def reset(self) -> None:
        self.swaps = self.index_swaps = self.index_written = self.index_read = 0


def listed(store: MemoryStore, dim: str, name: str = "ledger") -> list[Any]:
    """Every value in the index's chunks, in order (repeats too)."""
    slots = store.get(f"{name}:index#:{dim}") or 0
    return [v for slot in range(slots) for v in store.get(f"{name}:index#{slot}:{dim}") or ()]


def tagged(model: pw.ProductionModel[Any, Any], values: range) -> None:
    for i in values:
        with pw.context(request_id=f"r-{i}"):
            model(i)


def test_a_fold_of_new_values_costs_the_store_work_of_those_values_only() -> None:
    store = CountingStore()
    ledger = pw.Ledger(store)
    model = pw.ProductionModel(lambda x: x, cost=pw.PerCall("0.01"), ledger=ledger)
    for start in range(0, 8000, 1000):  # 8000 values indexed, in 8 folds
        tagged(model, range(start, start + 1000))
        ledger.drain()
    store.reset()
    tagged(model, range(8000, 8100))  # 100 new values: one fold
    ledger.drain()
    # One compare and swap reserves a slot, one writes the 100 values there: not one swap of
    # the whole index (8000 values and more) per new value.
    assert (store.index_swaps, store.index_written, store.index_read) == (2, 100, 0)
    assert store.swaps <= 100 + 2 + 10  # the 100 values' sums, the index, the few other totals
    store.reset()
    tagged(model, range(8000, 8100))  # values indexed already: nothing more in the index
    ledger.drain()
    assert (store.index_swaps, store.index_written, store.index_read) == (0, 0, 0)
    by = ledger.total(by="request_id")
    assert len(by) == 8100 and set(by.values()) == {Decimal("0.01"), Decimal("0.02")}
    assert sum(by.values()) == ledger.total() == Decimal("82.00")


def test_ledgers_sharing_a_store_keep_each_others_values_and_count_each_once() -> None:
    store = MemoryStore()
    one, two = pw.Ledger(store), pw.Ledger(store)  # two processes, say
    a = pw.ProductionModel(lambda x: x, name="a", cost=pw.PerCall("1"), ledger=one)
    b = pw.ProductionModel(lambda x: x, name="b", cost=pw.PerCall("1"), ledger=two)
    for customer in ("acme", "initech", "acme"):
        with pw.context(customer=customer):
            a(0)
    one.drain()
    for customer in ("initech", "umbrella"):  # "initech": indexed by both ledgers
        with pw.context(customer=customer):
            b(0)
    two.drain()
    with pw.context(customer="hooli"):
        a(0)
    expected = {"acme": Decimal("2"), "initech": Decimal("2"), "hooli": Decimal("1"), "umbrella": Decimal("1")}
    assert one.total(by="customer") == two.total(by="customer") == expected
    assert listed(store, "tag:customer") == ["acme", "initech", "umbrella", "hooli"]  # once each


class Overtaken(MemoryStore):
    """A store where another ledger reserves and fills the next index slot first, once."""

    def __init__(self) -> None:
        super().__init__()
        self.other: pw.Ledger | None = None

    def swap(self, key: str, expected: Any, new: Any) -> bool:
        other = self.other
        if other is not None and key == "ledger:index#:tag:customer":
            self.other = None
            other._index.add("tag:customer", ("theirs",))  # between this writer's get and its swap
            other._add("ledger:by:tag:customer:'theirs'", 10**12)
            other._add("ledger:units", 10**12)
        return super().swap(key, expected, new)


def test_a_slot_another_ledger_reserved_first_is_never_written_over() -> None:
    store = Overtaken()
    ledger = pw.Ledger(store)
    model = pw.ProductionModel(lambda x: x, cost=pw.PerCall("1"), ledger=ledger)
    with pw.context(customer="ours"):
        model(0)
    store.other = pw.Ledger(store)
    assert ledger.total(by="customer") == {"ours": Decimal("1"), "theirs": Decimal("1")}
    assert store.get("ledger:index#:tag:customer") == 2


class FailingChunk(MemoryStore):
    """A store that raises on the first write of an index chunk (its slot already reserved)."""

    failed = False

    def swap(self, key: str, expected: Any, new: Any) -> bool:
        if key == "chunked:index#0:tag:customer" and not self.failed:
            self.failed = True
            raise ConnectionError("store down")
        return super().swap(key, expected, new)


def test_a_chunk_whose_write_failed_goes_in_the_next_slot() -> None:
    store = FailingChunk()
    ledger = pw.Ledger(store, name="chunked")  # (a name of its own: the fault's log line is throttled by name)
    model = pw.ProductionModel(lambda x: x, cost=pw.PerCall("1"), ledger=ledger)
    with pw.context(customer="acme"):
        model(0)
    ledger.fold_soon()  # the chunk's write fails: counted, kept for the next fold
    assert ledger.faults == 1
    with pw.context(customer="initech"):
        model(0)
    assert ledger.total(by="customer") == {"acme": Decimal("1"), "initech": Decimal("1")}
    assert store.get("chunked:index#0:tag:customer") is None  # the slot left empty, skipped
    assert store.get("chunked:index#1:tag:customer") == ("acme", "initech")  # one chunk: both


def test_the_whole_index_an_older_ledger_kept_is_read_with_the_chunks() -> None:
    store = MemoryStore()
    for key, value in (("index:tag:customer", ("acme",)), ("by:tag:customer:'acme'", 10**12), ("units", 10**12)):
        store.swap(f"ledger:{key}", None, value)  # as a ledger before the chunks wrote them
    ledger = pw.Ledger(store)
    model = pw.ProductionModel(lambda x: x, cost=pw.PerCall("1"), ledger=ledger)
    for customer in ("acme", "initech"):
        with pw.context(customer=customer):
            model(0)
    assert ledger.total(by="customer") == {"acme": Decimal("2"), "initech": Decimal("1")}


def test_a_ledger_made_again_on_a_store_that_persists_lists_only_new_values() -> None:
    store = CountingStore()
    before = pw.Ledger(store)
    model = pw.ProductionModel(lambda x: x, cost=pw.PerCall("1"), ledger=before)
    tagged(model, range(3))
    before.drain()
    store.reset()
    after = pw.Ledger(store)  # the process restarted, say
    model = pw.ProductionModel(lambda x: x, cost=pw.PerCall("1"), ledger=after)
    tagged(model, range(1, 5))
    after.drain()
    assert store.index_read == 3 + 4  # read once: the 3 ids, one model, version, served_by, outcome
    assert listed(store, "tag:request_id") == ["r-0", "r-1", "r-2", "r-3", "r-4"]  # once each
    assert after.total(by="request_id") == {
        "r-1": Decimal("2"),
        "r-2": Decimal("2"),
        "r-0": Decimal("1"),
        "r-3": Decimal("1"),
        "r-4": Decimal("1"),
    }
