"""The clock every deadline, backoff and sleep of prodwrap goes through.

Production uses :class:`SystemClock`. Tests swap in a fake clock with
``prodwrap.testing.no_sleep()`` so retry and backoff tests never wait for real. Latency is
always measured with ``time.perf_counter`` (real elapsed time); deadlines and sleeps use the
current clock, so a fake clock's sleep consumes a fake deadline consistently. Wall time
(``time()``, epoch seconds) is what calendar windows and audit timestamps read.
"""

from __future__ import annotations

import time as _time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Clock(Protocol):
    """What prodwrap needs of a clock: a monotonic reading, the wall time (epoch seconds) and
    two ways to sleep (seconds)."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    async def asleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: ``time.monotonic``, ``time.time``, ``time.sleep``, ``asyncio.sleep``."""

    __slots__ = ()

    monotonic = staticmethod(_time.monotonic)
    time = staticmethod(_time.time)
    sleep = staticmethod(_time.sleep)

    async def asleep(self, seconds: float) -> None:
        import asyncio  # imported by then: an event loop is running

        await asyncio.sleep(seconds)


class _Current:
    __slots__ = ("clock",)

    def __init__(self) -> None:
        self.clock: Clock = SystemClock()


current = _Current()


@contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Make ``clock`` the clock of every model until the block ends (process-wide)."""
    previous = current.clock
    current.clock = clock
    try:
        yield clock
    finally:
        current.clock = previous
