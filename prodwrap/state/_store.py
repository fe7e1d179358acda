"""The state-store interface and the in-process store."""

from __future__ import annotations

import math
import threading
from typing import Any, Protocol, runtime_checkable

_SLICES = 10  # a sliding window is kept as this many slices of its length


@runtime_checkable
class StateStore(Protocol):
    """Atomic operations on named state. Every method is atomic for its key; ``now`` is the
    caller's clock reading in seconds (prodwrap's monotonic clock, or epoch seconds for a
    store shared across machines), so a fake clock drives a store as it drives the rest.

    Keys are namespaced by the caller (``"<model>:<policy>:<part>"``).
    """

    def take(self, key: str, amount: float, capacity: float, rate: float, now: float) -> float:
        """Token bucket ``key``: ``capacity`` tokens, refilled continuously at ``rate`` per second,
        full when first used. Take ``amount`` tokens if there are that many and return 0.0;
        else take nothing and return the seconds until there will be (``inf`` if never)."""
        ...

    def give(self, key: str, amount: float, capacity: float, rate: float, now: float) -> None:
        """Put ``amount`` tokens back (capped at ``capacity``); a negative amount takes more
        tokens, which may leave the bucket in debt (below zero) until it refills."""
        ...

    def add(self, key: str, amount: float, window: float, now: float) -> float:
        """Add ``amount`` to the sliding sum ``key`` and return the sum over the last
        ``window`` seconds (to a tenth of the window: older slices drop out whole)."""
        ...

    def get(self, key: str) -> Any:
        """The value stored under ``key`` (None when nothing is)."""
        ...

    def swap(self, key: str, expected: Any, new: Any) -> bool:
        """Store ``new`` under ``key`` if the value there is ``expected`` (compared with
        ``==``; None: nothing stored); True when it did."""
        ...


class _Bucket:
    __slots__ = ("at", "tokens")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at


class _Sliding:
    __slots__ = ("sums", "total", "until")

    def __init__(self) -> None:
        self.sums = [0.0] * _SLICES
        self.until = -math.inf  # the end of the newest slice (in slice units)
        self.total = 0.0


class MemoryStore:
    """A :class:`StateStore` in this process's memory, thread-safe (one lock, held for a few
    arithmetic operations). The default of every policy that keeps state."""

    __slots__ = ("_buckets", "_lock", "_slides", "_values")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._slides: dict[str, _Sliding] = {}
        self._values: dict[str, Any] = {}

    def _bucket(self, key: str, capacity: float, rate: float, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(capacity, now)
        elif now > bucket.at:
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.at) * rate)
            bucket.at = now
        return bucket

    def take(self, key: str, amount: float, capacity: float, rate: float, now: float) -> float:
        with self._lock:
            bucket = self._bucket(key, capacity, rate, now)
            if bucket.tokens >= amount:
                bucket.tokens -= amount
                return 0.0
            if rate <= 0 or amount > capacity:
                return math.inf
            return (amount - bucket.tokens) / rate

    def give(self, key: str, amount: float, capacity: float, rate: float, now: float) -> None:
        with self._lock:
            bucket = self._bucket(key, capacity, rate, now)
            bucket.tokens = min(capacity, bucket.tokens + amount)

    def add(self, key: str, amount: float, window: float, now: float) -> float:
        width = window / _SLICES
        current = math.floor(now / width)
        with self._lock:
            slide = self._slides.get(key)
            if slide is None:
                slide = self._slides[key] = _Sliding()
            sums = slide.sums
            if current < slide.until:  # a reading a little older than the newest: count it there
                current = int(slide.until)
            elif current > slide.until:  # slices that ended drop out
                stale = current - slide.until
                if stale >= _SLICES:
                    sums[:] = [0.0] * _SLICES
                    slide.total = 0.0
                else:
                    for i in range(int(slide.until) + 1, current + 1):
                        j = i % _SLICES
                        slide.total -= sums[j]
                        sums[j] = 0.0
                slide.until = current
            if amount:
                sums[current % _SLICES] += amount
                slide.total += amount
            return slide.total if slide.total > 1e-9 else 0.0

    def get(self, key: str) -> Any:
        return self._values.get(key)

    @property
    def values_get(self) -> Any:
        """``get`` without its call layer (the dict's own ``get``), for readers on a hot path."""
        return self._values.get

    def swap(self, key: str, expected: Any, new: Any) -> bool:
        with self._lock:
            if self._values.get(key) != expected:
                return False
            self._values[key] = new
            return True
