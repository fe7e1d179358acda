"""A fake clock for tests: sleeping advances time instantly and is recorded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prodwrap._clock import use_clock


class FakeClock:
    """A clock that only moves when told to (or when someone sleeps on it).

    Its monotonic reading and its wall time (``time()``, epoch seconds: calendar windows,
    audit timestamps) move together.

    Args:
        start: the first monotonic reading (seconds).
        wall: the first wall time, in epoch seconds (default: the real time now).

    Attributes:
        sleeps: every sleep requested, in seconds, in order.
    """

    def __init__(self, start: float = 1000.0, wall: float | None = None) -> None:
        self._now = start
        self._start = start
        self._wall = time.time() if wall is None else float(wall)
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        """Wall time in epoch seconds: ``wall`` plus how far the clock has moved."""
        return self._wall + (self._now - self._start)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)

    @property
    def slept(self) -> float:
        """Total seconds slept."""
        return sum(self.sleeps)


@contextmanager
def no_sleep(clock: FakeClock | None = None) -> Iterator[FakeClock]:
    """Use a :class:`FakeClock` for every model until the block ends."""
    fake = clock if clock is not None else FakeClock()
    with use_clock(fake):
        yield fake
