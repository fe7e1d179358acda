"""The gates a driver waits on (``prodwrap._gates``): sync and async waiters, deterministic."""

from __future__ import annotations

import asyncio
import math
import threading
from typing import Any

import pytest

from prodwrap import _gates as gates
from prodwrap._gates import EAGER, Flight, Permits, _AsyncWaiter, _Waiter
from prodwrap._stage import Gate

TICK = 0.01  # a wait that is meant to time out (only where the timeout itself is tested)


def waiting(gate: Any, n: int) -> None:
    """Block until ``n`` waiters are registered on ``gate`` (they really wait, then)."""
    while len(gate._waiters) < n:
        threading.Event().wait(0.0005)


async def awaiting(gate: Any, n: int) -> None:
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


# -- Permits -------------------------------------------------------------------------------


def test_permits_take_and_give_without_waiting() -> None:
    permits = Permits(2)
    gate: Gate = permits
    assert gate is permits
    assert (permits.in_use, permits.peak) == (0, 0)
    assert permits.take() and permits.take()
    assert not permits.take() and permits.in_use == 2 and permits.peak == 2
    assert permits.acquire(0) is False  # none free and no time to wait
    permits.give()
    assert permits.in_use == 1 and permits.peak == 2
    assert permits.acquire(0) is True and permits.in_use == 2
    permits.give()
    permits.give()
    assert permits.in_use == 0 and permits.peak == 2


def test_a_huge_number_of_permits_costs_only_what_is_held() -> None:
    permits = Permits(10**12)
    assert len(permits._free) == EAGER  # not 10**12 list entries
    held = EAGER + 500
    assert all(permits.take() for _ in range(held))
    assert (permits.in_use, permits.peak) == (held, held) and permits._free == []
    for _ in range(held):
        permits.give()
    assert (permits.in_use, permits.peak, len(permits._free)) == (0, held, held)
    assert permits.acquire(0) and permits.in_use == 1


def test_permits_made_as_needed_are_handed_to_waiters_once_all_are_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gates, "EAGER", 2)
    permits = Permits(4)
    assert len(permits._free) == 2
    assert permits.take() and permits.take() and permits.acquire(0) and permits._enqueue(_Waiter())
    assert not permits.take() and permits.in_use == 4 and permits.peak == 4  # all four made: no fifth
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(permits.acquire(math.inf)))
    waiter.start()
    waiting(permits, 1)
    permits.give()
    waiter.join()
    assert got == [True] and permits.in_use == 4


def test_permits_refuse_nonsense() -> None:
    for n in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="n must be an int >= 1"):
            Permits(n)  # type: ignore[arg-type]


def test_permits_hand_over_to_waiters_in_the_order_they_came() -> None:
    permits = Permits(1)
    assert permits.take()
    order: list[int] = []
    threads = []
    for i in range(4):
        t = threading.Thread(target=lambda i=i: (permits.acquire(math.inf), order.append(i)))
        t.start()
        waiting(permits, i + 1)  # each waiter queues before the next one starts
        threads.append(t)
    for i in range(4):
        assert permits.waiting == 4 - i
        permits.give()  # goes to the oldest waiter, never back to the free list
        threads[i].join()
        assert order == list(range(i + 1)) and permits.in_use == 1
    permits.give()
    assert permits.in_use == 0


def test_permits_acquire_times_out_and_leaves_the_queue() -> None:
    permits = Permits(1)
    assert permits.take()
    assert permits.acquire(TICK) is False
    assert permits.waiting == 0
    permits.give()
    assert permits.in_use == 0  # nothing was handed to the waiter that left


def test_permits_a_waiter_granted_as_it_times_out_keeps_the_permit() -> None:
    permits = Permits(1)
    assert permits.take()
    waiter = _Waiter()
    assert not permits._enqueue(waiter)
    permits.give()  # granted, but the waiter has not looked yet (as though its wait just timed out)
    assert waiter.granted and permits._leave(waiter) is True and permits.in_use == 1


def test_permits_no_lost_wake_up_between_a_waiter_and_a_lock_free_give() -> None:
    """A permit appended (lock-free) after the waiter found none, but before it was queued,
    is handed to it by the waiter's own second look."""
    permits = Permits(1)
    assert permits.take()
    waiter = _Waiter()

    class Racing(list[None]):
        """The free list: the first time the waiter finds it empty, the giver appends."""

        raced = False

        def __bool__(self) -> bool:
            empty = len(self) == 0
            if empty and not Racing.raced:
                Racing.raced = True
                self.append(None)  # the giver's lock-free append, at the worst moment
                return False
            return not empty

    permits._free = Racing()
    assert permits._enqueue(waiter) is False and waiter.granted  # handed over, not left free
    assert permits.waiting == 0 and permits.in_use == 1


def test_permits_under_contention_never_exceed_n() -> None:
    n, threads, rounds = 3, 12, 200
    permits = Permits(n)
    lock = threading.Lock()
    held = [0]
    worst = [0]
    start = threading.Barrier(threads)

    def worker() -> None:
        start.wait()
        for _ in range(rounds):
            if not permits.acquire(math.inf):
                raise AssertionError("an unlimited wait returned without a permit")
            with lock:
                held[0] += 1
                worst[0] = max(worst[0], held[0])
            with lock:
                held[0] -= 1
            permits.give()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert worst[0] <= n and permits.in_use == 0 and permits.waiting == 0 and permits.peak <= n


async def test_permits_async_waiters_get_permits_given_from_threads() -> None:
    permits = Permits(1)
    assert permits.take()
    tasks = [asyncio.create_task(permits.aacquire(math.inf)) for _ in range(3)]
    await awaiting(permits, 3)
    for i in range(3):
        giver = threading.Thread(target=permits.give)
        giver.start()
        assert await tasks[i] is True  # the oldest first
        giver.join()
        assert not any(t.done() for t in tasks[i + 1 :])
    permits.give()
    assert permits.in_use == 0


async def test_permits_async_wait_times_out() -> None:
    permits = Permits(1)
    assert permits.take()
    assert await permits.aacquire(0) is False
    assert await permits.aacquire(TICK) is False
    assert permits.waiting == 0 and permits.in_use == 1


async def test_permits_a_cancelled_async_waiter_leaves_and_takes_nothing() -> None:
    permits = Permits(1)
    assert permits.take()
    task = asyncio.create_task(permits.aacquire(math.inf))
    await awaiting(permits, 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert permits.waiting == 0
    permits.give()
    assert permits.in_use == 0


async def test_permits_a_waiter_cancelled_just_after_it_was_handed_a_permit_gives_it_back() -> None:
    permits = Permits(1)
    assert permits.take()
    task = asyncio.create_task(permits.aacquire(math.inf))
    await awaiting(permits, 1)
    permits.give()  # handed over: the wake-up is scheduled on the loop, not yet run
    task.cancel()  # ... and the task is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await task
    assert permits.in_use == 0 and permits.waiting == 0


def test_permits_skip_a_waiter_whose_loop_closed() -> None:
    permits = Permits(1)
    assert permits.take()
    loop = asyncio.new_event_loop()
    assert not permits._enqueue(_AsyncWaiter(loop))
    loop.close()
    woken: list[bool] = []
    t = threading.Thread(target=lambda: woken.append(permits.acquire(math.inf)))
    t.start()
    waiting(permits, 2)
    permits.give()  # the closed loop's waiter is skipped: the thread behind it gets the permit
    t.join()
    assert woken == [True] and permits.in_use == 1 and permits.waiting == 0


@pytest.mark.parametrize("granted", [False, True], ids=["waiting", "just granted"])
def test_an_interrupted_sync_waiter_leaves_and_keeps_nothing(monkeypatch: pytest.MonkeyPatch, granted: bool) -> None:
    permits = Permits(1)
    assert permits.take()

    def interrupted(self: _Waiter, seconds: float) -> bool:
        if granted:
            permits.give()  # the permit reaches the waiter just as the interrupt does
        raise KeyboardInterrupt

    monkeypatch.setattr(_Waiter, "wait", interrupted)
    with pytest.raises(KeyboardInterrupt):
        permits.acquire(math.inf)
    assert permits.waiting == 0 and permits.in_use == (0 if granted else 1)
    flight = Flight()
    with pytest.raises(KeyboardInterrupt):
        flight.acquire(math.inf)
    assert flight._waiters == []
