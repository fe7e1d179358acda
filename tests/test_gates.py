"""The gates a driver waits on (``prodwrap._gates``): sync and async waiters, deterministic."""

from __future__ import annotations

import asyncio
import math
import threading

from prodwrap._gates import Flight
from prodwrap._stage import Gate

TICK = 0.01  # a wait that is meant to time out (only where the timeout itself is tested)


def waiting(gate: Flight, n: int) -> None:
    """Block until ``n`` waiters are registered on ``gate`` (they really wait, then)."""
    while len(gate._waiters) < n:
        threading.Event().wait(0.0005)


async def awaiting(gate: Flight, n: int) -> None:
    while len(gate._waiters) < n:
        await asyncio.sleep(0)


# -- Flight --------------------------------------------------------------------------------


def test_flight_is_a_gate() -> None:
    gate: Gate = Flight()
    assert callable(gate.acquire) and callable(gate.aacquire)


def test_flight_wakes_every_sync_waiter_when_done() -> None:
    flight = Flight()
    results: list[bool] = []
    lock = threading.Lock()

    def wait() -> None:
        got = flight.acquire(math.inf)
        with lock:
            results.append(got)

    threads = [threading.Thread(target=wait) for _ in range(8)]
    for t in threads:
        t.start()
    waiting(flight, 8)
    assert results == [] and not flight.is_done
    flight.done()
    for t in threads:
        t.join()
    assert results == [True] * 8 and flight._waiters == []


def test_flight_done_before_acquire_returns_at_once_and_done_is_idempotent() -> None:
    flight = Flight()
    assert flight.acquire(0) is False  # not done, and no time to wait
    flight.done()
    flight.done()
    assert flight.is_done and flight.acquire(0) is True and flight.acquire(math.inf) is True


def test_flight_acquire_times_out_and_leaves() -> None:
    flight = Flight()
    assert flight.acquire(TICK) is False
    assert flight._waiters == []  # the waiter left: done() later wakes nobody stale
    flight.done()
    assert flight.acquire(TICK) is True


async def test_flight_wakes_async_waiters_from_another_thread() -> None:
    flight = Flight()
    tasks = [asyncio.create_task(flight.aacquire(math.inf)) for _ in range(5)]
    await awaiting(flight, 5)
    assert not any(t.done() for t in tasks)
    done_by = threading.Thread(target=flight.done)
    done_by.start()
    assert await asyncio.gather(*tasks) == [True] * 5
    done_by.join()
    assert await flight.aacquire(0) is True


async def test_flight_async_wait_times_out_and_leaves() -> None:
    flight = Flight()
    assert await flight.aacquire(0) is False
    assert await flight.aacquire(TICK) is False
    assert flight._waiters == []


async def test_flight_cancelled_async_waiter_leaves_and_others_still_wake() -> None:
    flight = Flight()
    cancelled = asyncio.create_task(flight.aacquire(math.inf))
    other = asyncio.create_task(flight.aacquire(math.inf))
    await awaiting(flight, 2)
    cancelled.cancel()
    try:
        await cancelled
        raise AssertionError("the cancellation did not propagate")
    except asyncio.CancelledError:
        pass
    assert len(flight._waiters) == 1
    flight.done()
    assert await other is True


def test_flight_skips_a_waiter_whose_loop_closed() -> None:
    """A waiter left behind by a loop that closed: done() skips it and wakes the rest."""
    from prodwrap._gates import _AsyncWaiter

    flight = Flight()
    loop = asyncio.new_event_loop()
    assert flight._register(_AsyncWaiter(loop))
    loop.close()
    woken: list[bool] = []
    t = threading.Thread(target=lambda: woken.append(flight.acquire(math.inf)))
    t.start()
    waiting(flight, 2)
    flight.done()
    t.join()
    assert woken == [True]
