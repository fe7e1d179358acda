"""The cache's tables: the lock-free ``front`` of an LRU table, hits counted in ``served`` and
folded, and the recency those hits apply (``prodwrap.policies._cache_tables``)."""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import cachetools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import prodwrap as pw
from prodwrap._context import within_deadline
from prodwrap.policies import _cache_tables
from prodwrap.policies._cache_stage import CacheCore
from prodwrap.policies._cache_tables import FOLD_EVERY, LRU, Entry
from prodwrap.testing import no_sleep


def core_of(model: pw.ProductionModel[Any, Any, Any]) -> CacheCore:
    return next(s.core for s in model._engine.stages if s.name == "cache")  # type: ignore[attr-defined, no-any-return]


def held(model: pw.ProductionModel[Any, Any, Any]) -> set[Any]:
    """The inputs whose answers the cache holds (int inputs: their flat key is ``(int, x)``)."""
    core = core_of(model)
    keys = set(core.cache.keys())
    if core.front is not None:
        assert mirrors(core.cache)
    return {key[1] for key in keys}


def mirrors(table: Any) -> bool:
    """``front`` holds what the cachetools table holds (read without moving anything)."""
    return set(table.front) == set(table.keys()) and all(
        entry is cachetools.Cache.__getitem__(table, key) for key, entry in table.front.items()
    )


def entry(key: Any, output: Any = 1) -> Entry:
    return Entry(key, output, False, 0.5, 3)


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Threads switch as often as the interpreter lets them, so races have room to happen."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


# -- the order an LRU table evicts in -----------------------------------------------------------


def test_hits_and_inserts_interleaved_evict_the_least_recently_used() -> None:
    calls: list[int] = []
    model = pw.ProductionModel(lambda x: calls.append(x) or x * 10, cache=pw.Cache(maxsize=3))
    for x in (1, 2, 3, 1, 2):  # three misses, then hits on 1 and 2 (served without the lock)
        model(x)
    model(4)  # room is made: 3 is the least recently used
    assert held(model) == {1, 2, 4}
    model(1)
    model(5)  # 2 goes: 1 was hit after it
    assert held(model) == {1, 4, 5}
    model(5)
    model(6)  # 4 goes: 1 and 5 were hit after it
    assert held(model) == {1, 5, 6}
    assert calls == [1, 2, 3, 4, 5, 6]
    stats = model.stats().cache
    assert (stats.hits, stats.misses, stats.evictions, stats.size) == (4, 6, 3, 3)


def test_a_hit_on_the_walk_comes_after_the_hits_before_it() -> None:
    """A hit under the lock (on the walk) is ordered after the success path's hits still
    waiting for their fold, as it came after them."""
    model = pw.ProductionModel(lambda x: x, cache=pw.Cache(maxsize=2))
    model(1)
    model(2)
    model(1)  # served without the lock: its move waits for the fold
    with within_deadline(1e18):  # a calling model's deadline: the call takes the walk
        assert model.predict_detailed(2).outcome == "cached"
    model(3)  # 1 goes: 2 was hit after it
    assert held(model) == {2, 3}


@settings(max_examples=60, deadline=None)
@given(
    calls=st.lists(st.tuples(st.integers(0, 5), st.booleans()), max_size=40),
    maxsize=st.integers(1, 4),
    ttl=st.booleans(),
)
def test_the_cache_evicts_as_a_plain_lru_would(calls: list[tuple[int, bool]], maxsize: int, ttl: bool) -> None:
    """Any run of hits (on the success path or the walk) and misses holds what an
    ``OrderedDict`` LRU holds after each call, and calls the predict when it would miss."""
    with no_sleep():  # (a TTL table: its entries never expire here, but it is read under the lock)
        predicted: list[int] = []
        model = pw.ProductionModel(
            lambda x: predicted.append(x) or -x, cache=pw.Cache(maxsize=maxsize, ttl=3600.0 if ttl else None)
        )
        reference: OrderedDict[int, None] = OrderedDict()
        for x, walked in calls:
            misses = len(predicted)
            if walked:
                with within_deadline(1e18):
                    assert model(x) == -x
            else:
                assert model(x) == -x
            if x in reference:
                reference.move_to_end(x)
                assert len(predicted) == misses
            else:
                reference[x] = None
                if len(reference) > maxsize:
                    reference.popitem(last=False)
                assert predicted[misses:] == [x]
            assert held(model) == set(reference)
        stats = model.stats().cache
        assert stats.hits + stats.misses == len(calls) and stats.misses == len(predicted)


def test_hits_are_folded_every_so_many_and_before_each_insertion() -> None:
    model = pw.ProductionModel(lambda x: x, cache=pw.Cache(maxsize=2))
    model(1)
    model(2)
    core = core_of(model)
    for _ in range(FOLD_EVERY + 1):  # the last of these folds them all (the list stays short)
        model(1)
    assert core.served == [] and core.cache.hits == FOLD_EVERY + 1
    model(2)  # pending: the table's own order still has 2 first
    assert len(core.served) == 1
    model(3)  # the insertion folds it first: 1 goes, not 2
    assert held(model) == {2, 3}
    assert model.stats().cache.hits == FOLD_EVERY + 2


# -- what a fold does with hits read without the lock -------------------------------------------


def test_a_hit_on_an_entry_evicted_or_replaced_meanwhile_is_counted_not_revived() -> None:
    table = LRU(2)
    a, b = entry(("a",)), entry(("b",))
    table[a.key], table[b.key] = a, b
    table.served.append(a)  # read from front, and then (another thread, under the lock) evicted
    del table[a.key]
    replaced = entry(("b",), 2)
    table.served.append(b)  # read, and then replaced
    table.fold()
    table[b.key] = replaced
    table.served.append(b)
    c = entry(("c",))
    table[c.key] = c  # the pending hit on the replaced entry moves nothing, revives nothing
    assert mirrors(table) and table.front == {("b",): replaced, ("c",): c}
    assert (table.hits, table.saved, table.saved_cost, table.evicted) == (3, 1.5, 9, 0)


def test_a_hit_counted_while_the_fold_takes_the_list_is_kept_for_the_next_fold() -> None:
    """Deterministic: the list appends a hit right after the fold reads its length."""
    table = LRU(4)
    a = entry(("a",))
    table[a.key] = a

    class Racing(list[Entry]):
        racing = True

        def __len__(self) -> int:
            n = super().__len__()
            if self.racing:
                self.racing = False
                self.append(a)  # a hit counted between the fold's len() and its del
            return n

    table.served = Racing([a])
    table.fold()
    assert table.hits == 1 and list.__len__(table.served) == 1  # the late one left in the list
    table.fold()
    assert (table.hits, table.saved, table.saved_cost) == (2, 1.0, 6)


def test_a_hit_appended_while_a_fold_runs_is_left_for_the_next_fold(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fold takes the list's length, then that slice: a hit appended after it stays."""
    model = pw.ProductionModel(lambda x: x, cost=pw.PerCall("0.25"), cache=pw.Cache(maxsize=8))
    model(1)
    model(1)
    counter = _cache_tables.Counter
    during: list[int] = []

    def hit_meanwhile(entries: Any) -> Any:
        if not during:
            during.append(model(1))  # served without the lock while this fold holds it
        return counter(entries)

    monkeypatch.setattr(_cache_tables, "Counter", hit_meanwhile)
    first = model.stats().cache
    assert during == [1] and first.hits == 1 and len(core_of(model).served) == 1
    second = model.stats().cache
    assert (second.hits, second.saved_cost) == (2, Decimal("0.50"))


# -- many threads -------------------------------------------------------------------------------


@pytest.mark.parametrize("output", ["number", "dict"])
def test_16_threads_of_hits_inserts_and_evictions_lose_nothing(output: str, fast_switching: None) -> None:
    """16 threads call over 24 inputs through a cache of 8: every answer is its input's, every
    call is counted once (a hit or a miss, and each hit's saving), and ``front`` stays the
    cachetools table's exact mirror."""
    threads, rounds, inputs, price = 16, 150, 24, Decimal("0.001")

    def answer(x: int) -> Any:
        return x * 3 if output == "number" else {"x": x, "seen": []}

    model = pw.ProductionModel(answer, cost=pw.PerCall(str(price)), cache=pw.Cache(maxsize=8))
    barrier = threading.Barrier(threads)
    wrong: list[tuple[int, Any]] = []

    def run(offset: int) -> None:
        barrier.wait()
        for i in range(rounds):
            x = (offset + i * (1 + offset % 3)) % inputs if i % 4 else offset % 5  # a few hot inputs
            got = model(x)
            if got != answer(x):
                wrong.append((x, got))
            elif output == "dict":
                got["seen"].append(offset)  # a caller mutating what it was served

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not any(worker.is_alive() for worker in workers) and wrong == []
    stats = model.stats()
    cache = stats.cache
    assert cache is not None and cache.hits > 0 and cache.evictions > 0
    assert cache.hits + cache.misses == threads * rounds == stats.calls
    assert stats.outcomes.get("cached", 0) == cache.hits
    assert cache.saved_cost == price * cache.hits
    core = core_of(model)
    assert not core.served and core.flights == {} and core.pending == {}
    assert len(held(model)) == cache.size <= 8
    assert core.front is not None
    assert all(e.key[0] is int and e.output == answer(e.key[1]) for e in core.front.values())  # untouched by callers
