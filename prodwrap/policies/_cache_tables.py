"""The cachetools caches the cache keeps its entries in, counting what they drop and serve.

Every change to a table is made under its core's lock (``_cache_stage.CacheCore.lock``). A hit
is counted without it: the entry is appended to the table's ``served`` list (one list append,
atomic under the GIL), and a fold (``_Counts.fold``, under the lock) takes the list's length
and deletes that slice (what is appended meanwhile stays for the next fold), as
``prodwrap.cost._ledger`` folds its tallies, and adds those hits, seconds and cost. A
:class:`TTL` table is read under the lock: cachetools checks the entry's age and moves it to
the most recent end there and then.

An :class:`LRU` table also keeps ``front``, a plain dict of its entries, written only where
cachetools writes its own (every insertion, eviction, deletion and clear goes through
``__setitem__``, ``__delitem__`` or ``clear``) and read on the success path without the lock.
A hit read there does not move its entry to the most recent end at once: the entry it appended
to ``served`` is that hit's touch, applied by the next fold through cachetools' own lookup. A
fold runs before every insertion (the only place cachetools evicts) and every ``FOLD_EVERY``
hits, so the entry evicted is the least recently used one, exactly, as one thread sees it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from typing import Any

from cachetools import LRUCache, TTLCache

from prodwrap import _clock
from prodwrap._stage import Serve

FOLD_EVERY = 1024  # hits appended to ``served`` before the success path folds them


class Entry:
    """What the cache holds for one key (compared and hashed by identity)."""

    __slots__ = ("cost", "decision", "key", "output", "seconds")

    def __init__(self, key: Hashable, output: Any, copied: bool, seconds: float, cost: int) -> None:
        self.key = key
        self.output = output  # the output, or its copy (``copied``)
        self.seconds = seconds  # the latency of the call that filled it (what each hit saves)
        self.cost = cost  # pico-dollars that call was charged (what each hit saves)
        # What each hit is served (None: a copy of ``output`` each time); none allocates.
        self.decision = None if copied else Serve(output, "cached", "cache")


class _Counts:
    """The counters both tables keep, and the hits not yet folded into them."""

    evicted = 0
    expired = 0
    hits = 0
    saved = 0.0  # seconds the hits saved
    saved_cost = 0  # pico-dollars the hits saved

    def __init__(self) -> None:
        self.served: list[Entry] = []  # the hits not folded yet, in order

    def count(self, entry: Entry) -> None:
        """A hit read under the lock: counted (its recency applied) by the next fold, as every
        hit is."""
        served = self.served
        served.append(entry)
        if len(served) > FOLD_EVERY:
            self.fold()

    def fold(self) -> None:
        """Count the hits appended to ``served`` so far (under the core's lock)."""
        served = self.served
        n = len(served)
        if not n:
            return
        batch = served[:n]
        del served[:n]
        self.hits += n
        # (each entry hit and how often, in C: the latest hit's entry first)
        counts = Counter(reversed(batch))
        for entry, hits in counts.items():
            self.saved += entry.seconds * hits
            self.saved_cost += entry.cost * hits
        self.touch(reversed(counts))

    def touch(self, entries: Iterable[Entry]) -> None:
        """Apply what hits on ``entries`` (each once, the last hit last) do to the entries'
        order: nothing here."""


class LRU(_Counts, LRUCache[Any, Any]):
    """Least recently used first out; counts the entries it drops for room (``evicted``), and
    mirrors its entries in ``front`` for lock-free reads."""

    def __init__(self, maxsize: int) -> None:
        _Counts.__init__(self)
        LRUCache.__init__(self, maxsize)
        self.front: dict[Hashable, Entry] = {}

    def __setitem__(self, key: Any, value: Any) -> None:
        if self.served:
            self.fold()  # (the hits' recency first: this insertion may evict)
        super().__setitem__(key, value)
        self.front[key] = value

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)  # (``popitem``, so every eviction, comes here too)
        del self.front[key]

    def clear(self) -> None:
        super().clear()
        self.front.clear()

    def popitem(self) -> tuple[Any, Any]:
        item = super().popitem()
        self.evicted += 1
        return item

    def lookup(self, key: Hashable) -> Entry | None:
        """The entry held for ``key`` (under the lock, or not): it moves to the most recent end
        in the fold that counts its hit, as every hit's does, never here (a move made at once
        would come before those of the hits waiting for that fold)."""
        return self.front.get(key)

    def touch(self, entries: Iterable[Entry]) -> None:
        """Move each entry to the most recent end in turn (as its last hit would have): an
        entry evicted or replaced since it was read is not brought back."""
        front = self.front
        for entry in entries:
            if front.get(entry.key) is entry:
                self[entry.key]  # cachetools' own lookup moves it to the end


class TTL(_Counts, TTLCache[Any, Any]):
    """The same with a time to live, read under the lock (each lookup checks the clock and
    moves the entry itself); also counts the entries that expire (``expired``)."""

    def __init__(self, maxsize: int, ttl: float) -> None:
        _Counts.__init__(self)
        TTLCache.__init__(self, maxsize, ttl, timer=now)

    def lookup(self, key: Hashable) -> Entry | None:
        """The entry held for ``key``, unexpired, moved to the most recent end (under the lock)."""
        try:
            entry: Entry = self[key]  # (``get`` is two call layers more)
        except KeyError:
            return None
        return entry

    def popitem(self) -> tuple[Any, Any]:
        item = super().popitem()
        self.evicted += 1
        return item

    def expire(self, time: Any = None) -> Any:
        gone = super().expire(time)
        self.expired += len(gone)
        return gone


def now() -> float:
    return _clock.current.clock.monotonic()  # the clock in force now (a fake one in tests)
