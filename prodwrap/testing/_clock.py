"""A fake clock for tests: sleeping advances time instantly and is recorded."""

from __future__ import annotations

import math
import numbers
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from prodwrap._clock import Clock, current

_lock = threading.Lock()
_blocks: list[tuple[FakeClock]] = []  # the no_sleep() blocks in force, innermost last
_base: list[Clock] = []  # the clock in force before the first of them


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
        """Move the clock ``seconds`` forward (finite and >= 0: a clock never goes back)."""
        seconds = _forward("advance", seconds)
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` (finite and >= 0): recorded, and the clock moves that far."""
        seconds = _forward("sleep", seconds)
        with self._lock:
            self.sleeps.append(seconds)
            self._now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)

    @property
    def slept(self) -> float:
        """Total seconds slept."""
        return sum(self.sleeps)


def _forward(what: str, seconds: float) -> float:
    number = isinstance(seconds, numbers.Real | Decimal) and not isinstance(seconds, bool)
    value = float(seconds) if number else math.nan
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"FakeClock.{what}() takes finite seconds >= 0, got {seconds!r}")
    return value


@contextmanager
def no_sleep(clock: FakeClock | None = None) -> Iterator[FakeClock]:
    """Use a :class:`FakeClock` for every model until the block ends.

    Blocks nest, and may end out of order (two asyncio tasks or threads): each end removes
    its own clock, wherever it is, and the innermost clock still in force (or, once none
    is, the clock before the first block) is the clock again.
    """
    fake = clock if clock is not None else FakeClock()
    block = (fake,)
    with _lock:
        if not _blocks:
            _base[:] = [current.clock]
        _blocks.append(block)
        current.clock = fake
    try:
        yield fake
    finally:
        with _lock:
            for i in range(len(_blocks) - 1, -1, -1):
                if _blocks[i] is block:
                    del _blocks[i]
                    break
            current.clock = _blocks[-1][0] if _blocks else _base[0]
