"""The state-store interface and the in-process store."""

from __future__ import annotations

import math
import threading
from typing import Any, Protocol, runtime_checkable

_SLICES = 10  # a sliding window is kept as this many slices of its length
SWEEP_AT = 1024  # buckets a MemoryStore holds before it first sweeps out the full ones


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
        else take nothing and return the seconds until there will be (``inf`` if never).
        A full bucket is the same as a missing one: a store may drop full buckets."""
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
    __slots__ = ("at", "capacity", "rate", "tokens")

    def __init__(self, tokens: float, at: float, capacity: float, rate: float) -> None:
        self.tokens = tokens
        self.at = at
        self.capacity = capacity  # as its first use gave them: what a sweep judges it by
        self.rate = rate


class _Sliding:
    __slots__ = ("sums", "total", "until")

    def __init__(self) -> None:
        self.sums = [0.0] * _SLICES
        self.until = -math.inf  # the end of the newest slice (in slice units)
        self.total = 0.0


class MemoryStore:
    """A :class:`StateStore` in this process's memory, thread-safe (one lock, held for a few
    arithmetic operations). The default of every policy that keeps state.

    Token buckets that have refilled to full are swept out (a full bucket behaves exactly as
    a missing one), so a bucket per tag value (``RateLimit(by=)``) stays bounded by the keys
    in use within a refill. The sweep runs when a new bucket would take the map past a size
    (:data:`SWEEP_AT`, then twice what the last sweep kept): at most about two buckets looked
    at per new bucket, amortised, and nothing on a ``take`` of a bucket that exists.
    """

    __slots__ = ("_buckets", "_lock", "_slides", "_sweep_at", "_values")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._sweep_at = SWEEP_AT
        self._slides: dict[str, _Sliding] = {}
        self._values: dict[str, Any] = {}

    def _bucket(self, key: str, capacity: float, rate: float, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._sweep_at:
                self._sweep(now)
            bucket = self._buckets[key] = _Bucket(capacity, now, capacity, rate)
        elif now > bucket.at:
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.at) * rate)
            bucket.at = now
        return bucket

    def _sweep(self, now: float) -> None:
        """Drop the buckets full by ``now`` (under the lock), and let the map grow to twice
        what is left (at least :data:`SWEEP_AT`) before the next sweep: O(1) amortised."""
        buckets = self._buckets
        full = [key for key, b in buckets.items() if b.tokens + (now - b.at) * b.rate >= b.capacity]
        for key in full:
            del buckets[key]
        self._sweep_at = max(SWEEP_AT, 2 * len(buckets))

    def take(self, key: str, amount: float, capacity: float, rate: float, now: float) -> float:
        lock = self._lock
        lock.acquire()  # (not ``with``, nor ``_bucket`` for one that exists: every attempt takes)
        try:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._bucket(key, capacity, rate, now)
            elif now > bucket.at:
                tokens = bucket.tokens + (now - bucket.at) * rate
                bucket.tokens = tokens if tokens < capacity else capacity  # (min() is a call more)
                bucket.at = now
            if bucket.tokens >= amount:
                bucket.tokens -= amount
                return 0.0
            if rate <= 0 or amount > capacity:
                return math.inf
            return (amount - bucket.tokens) / rate
        finally:
            lock.release()

    def give(self, key: str, amount: float, capacity: float, rate: float, now: float) -> None:
        with self._lock:
            bucket = self._bucket(key, capacity, rate, now)
            bucket.tokens = min(capacity, bucket.tokens + amount)

    def add(self, key: str, amount: float, window: float, now: float) -> float:
        slices = now / (window / _SLICES) if window > 0 else math.nan
        if not math.isfinite(slices):  # (math.floor would raise OverflowError or ValueError: say why)
            raise ValueError(f"MemoryStore.add({key!r}): no slice of a {window!r} s window holds the reading {now!r}")
        current = math.floor(slices)
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
