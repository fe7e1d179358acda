"""The cachetools caches the cache keeps its entries in, counting what they drop."""

from __future__ import annotations

from typing import Any

from cachetools import LRUCache, TTLCache

from prodwrap import _clock


class LRU(LRUCache[Any, Any]):
    """Least recently used first out; counts the entries it drops for room (``evicted``)."""

    evicted = 0
    expired = 0

    def popitem(self) -> tuple[Any, Any]:
        item = super().popitem()
        self.evicted += 1
        return item


class TTL(TTLCache[Any, Any]):
    """The same with a time to live; also counts the entries that expire (``expired``)."""

    evicted = 0
    expired = 0

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
