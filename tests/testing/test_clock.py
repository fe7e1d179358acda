"""The clock's wall time: ``SystemClock.time`` is the real one, ``FakeClock(start, wall)``
moves its wall time with its monotonic reading (DESIGN §3, Testing)."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest

from prodwrap import _clock
from prodwrap._clock import SystemClock
from prodwrap.testing import FakeClock, no_sleep


def test_the_system_clock_reads_the_real_wall_time() -> None:
    before = time.time()
    now = SystemClock().time()
    assert before <= now <= time.time()


def test_a_fake_clock_starts_at_start_and_wall() -> None:
    clock = FakeClock(start=5.0, wall=1_700_000_000.0)
    assert clock.monotonic() == 5.0
    assert clock.time() == 1_700_000_000.0


def test_the_default_wall_is_the_real_time_at_creation() -> None:
    before = time.time()
    clock = FakeClock()
    after = time.time()
    assert clock.monotonic() == 1000.0
    assert before <= clock.time() <= after
    time.sleep(0.01)  # real time passing does not move a fake clock
    assert clock.time() <= after


def test_advance_and_sleep_move_wall_and_monotonic_together() -> None:
    clock = FakeClock(wall=86_400.0)
    clock.advance(1.5)
    clock.sleep(2.0)
    asyncio.run(clock.asleep(0.5))
    assert clock.monotonic() == 1004.0
    assert clock.time() == 86_404.0
    assert clock.sleeps == [2.0, 0.5]


def test_no_sleep_makes_the_fake_wall_time_the_current_one() -> None:
    with no_sleep(FakeClock(wall=0.0)) as clock:
        clock.advance(60.0)
        assert _clock.current.clock.time() == 60.0
    assert abs(_clock.current.clock.time() - time.time()) < 60


def test_no_sleep_blocks_ending_out_of_order_leave_no_dead_clock_installed() -> None:
    import asyncio

    from prodwrap._clock import SystemClock, current

    seen: dict[str, FakeClock] = {}

    async def block(name: str, hold: float) -> None:
        with no_sleep() as clock:
            seen[name] = clock
            await asyncio.sleep(hold)
            if name == "b":  # a ended first: b's clock is still the one in force
                assert current.clock is clock

    async def both() -> None:
        await asyncio.gather(block("a", 0.01), block("b", 0.05))  # a enters, b enters, a exits, b exits

    before = current.clock
    asyncio.run(both())
    assert current.clock is before and isinstance(before, SystemClock)


@pytest.mark.parametrize("seconds", [-1, -0.001, float("nan"), float("inf"), float("-inf"), True, "1"])
def test_a_fake_clock_refuses_to_go_back_or_to_nan(seconds: Any) -> None:
    clock = FakeClock()
    for move in (clock.advance, clock.sleep):
        with pytest.raises(ValueError, match=r"finite seconds >= 0, got " + re.escape(repr(seconds))):
            move(seconds)
    assert clock.monotonic() == 1000.0 and clock.sleeps == []
    clock.advance(0)
    clock.sleep(1.5)
    assert clock.monotonic() == 1001.5 and clock.sleeps == [1.5]
