"""What a driver waits on at a WAIT act (``prodwrap._stage.Gate``): usable from threads and
from asyncio alike.

- :class:`Permits`: ``n`` permits (a bulkhead's), handed to waiters in the order they came.
  Taking and giving back without contention take no lock (a list's ``pop`` and ``append``
  are atomic); the lock is taken only when someone waits, or must start to.
- :class:`Flight`: a one-shot event. ``acquire``/``aacquire`` wait until :meth:`Flight.done`
  is called (a cache's single flight: the callers of one missing key wait for the one
  predict call that fills it).

Waiting is real time (``time.monotonic``), also under a fake clock. A sync waiter blocks its
thread on a lock of its own; an async waiter awaits a future of its loop and is woken with
``loop.call_soon_threadsafe``, from whatever thread wakes it. A waiter whose loop has closed is
skipped: nobody is left to wake.
"""

from __future__ import annotations

import contextlib
import math
import threading
from _thread import allocate_lock as _allocate_lock
from collections import deque
from time import monotonic as _monotonic
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

_STEP = threading.TIMEOUT_MAX  # the longest single lock wait: longer waits go in steps


class _Waiter:
    """One thread waiting: its ``lock`` is released when it is woken (``granted`` set first)."""

    __slots__ = ("granted", "lock")

    def __init__(self) -> None:
        self.granted = False
        self.lock = _allocate_lock()
        self.lock.acquire()

    def wake(self) -> bool:
        self.lock.release()
        return True

    def wait(self, seconds: float) -> bool:
        """Block up to ``seconds`` (``inf``: until woken); True if woken."""
        lock = self.lock
        if seconds == math.inf:
            while not lock.acquire(True, _STEP):
                pass
            return True
        end = _monotonic() + seconds
        left = seconds
        while left > 0:
            if lock.acquire(True, left if left < _STEP else _STEP):
                return True
            left = end - _monotonic()
        return False


class _AsyncWaiter:
    """One task waiting on its loop: its ``future`` is settled on that loop when it is woken."""

    __slots__ = ("future", "granted", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.granted = False
        self.loop = loop
        self.future: asyncio.Future[bool] = loop.create_future()

    def wake(self) -> bool:
        """Schedule the wake-up on the waiter's loop; False when that loop has closed."""
        try:
            self.loop.call_soon_threadsafe(_settle, self.future)
        except RuntimeError:  # the loop is closed: nobody is left to wake
            return False
        return True

    async def wait(self, seconds: float) -> bool:
        """Await up to ``seconds`` (``inf``: until woken); True if woken. Cancellation propagates."""
        import asyncio  # imported by then: an event loop is running

        if seconds == math.inf:
            return await self.future
        try:
            async with asyncio.timeout(seconds):
                return await self.future
        except TimeoutError:
            return False


def _settle(future: asyncio.Future[bool]) -> None:
    if not future.done():  # (a waiter that gave up has cancelled it)
        future.set_result(True)


def _running_loop() -> asyncio.AbstractEventLoop:
    import asyncio

    return asyncio.get_running_loop()


_TOKEN = None  # what the list of free permits holds (only its length matters)
EAGER = 1024  # permits made at once; the rest are made as they are first taken (a big n costs nothing)


class Permits:
    """``n`` permits: :meth:`take` one without waiting, :meth:`acquire` or :meth:`aacquire`
    one within some seconds, :meth:`give` it back.

    A permit given back while someone waits goes to the longest-waiting one (FIFO). The free
    permits are a list whose ``pop`` and ``append`` are atomic, so the uncontended take and
    give are lock-free; the lock guards the waiters. A waiter registers under the lock and
    then looks at the free list again, and a giver that appended without the lock looks at
    the waiters again: whichever of the two goes second sees the other, so no permit stays
    free while someone waits (no lost wake-up).

    Only :data:`EAGER` permits are made up front; the others are made, under the lock, the
    first time one is needed (``_unmade`` counts them), so the free list is never longer than
    the most permits held at once: ``Permits(10**12)`` costs what ``Permits(1024)`` does.

    Attributes:
        n: how many permits there are.
    """

    __slots__ = ("_free", "_lock", "_low", "_unmade", "_waiters", "n")

    def __init__(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"Permits: n must be an int >= 1, got {n!r}")
        self.n = n
        made = min(n, EAGER)
        self._free: list[None] = [_TOKEN] * made
        self._unmade = n - made  # permits not made yet (only ever fewer, under the lock)
        self._lock = threading.Lock()
        self._waiters: deque[_Waiter | _AsyncWaiter] = deque()
        self._low = n  # the fewest free permits seen after a take (peak use: n - _low)

    @property
    def in_use(self) -> int:
        """Permits held now."""
        return self.n - self._unmade - len(self._free)

    @property
    def peak(self) -> int:
        """The most permits held at once so far."""
        return self.n - self._low

    @property
    def waiting(self) -> int:
        """Waiters queued now."""
        return len(self._waiters)

    def take(self, _value: object = None, _args: object = None, _kwargs: object = None) -> bool:
        """Take a permit if one is free, without waiting (no lock: a list pop). The arguments
        are ignored: they let ``take`` be a stage's ``fast_admit`` itself, no call between."""
        free = self._free
        if not free:
            return self._unmade > 0 and self._make()
        try:
            free.pop()
        except IndexError:  # another thread took the last one between the check and the pop
            return self._unmade > 0 and self._make()
        left = len(free) + self._unmade
        if left < self._low:  # a new peak: at most n times in the permits' life
            with self._lock:
                self._low = min(self._low, left)
        return True

    def _make(self) -> bool:
        """Take a permit not made yet (False when every one is made)."""
        with self._lock:
            return self._take_unmade()

    def _take_unmade(self) -> bool:
        """:meth:`_make`, with the lock held."""
        if self._unmade <= 0:
            return False
        self._unmade -= 1
        self._low = min(self._low, len(self._free) + self._unmade)
        return True

    def give(self, _seconds: object = None) -> None:
        """Give a permit back: to the longest waiter if someone waits, else to the free list.
        The argument is ignored (``give`` is also a stage's ``fast_undo`` and ``fast_done``)."""
        if not self._waiters:
            self._free.append(_TOKEN)
            if not self._waiters:
                return
            with self._lock:  # a waiter came as we gave: hand it what we gave
                self._hand_over()
            return
        with self._lock:
            self._free.append(_TOKEN)
            self._hand_over()

    def _hand_over(self) -> None:
        """Under the lock: free permits go to waiters, longest-waiting first."""
        free, waiters = self._free, self._waiters
        while waiters and free:
            try:
                free.pop()
            except IndexError:  # taken without the lock meanwhile
                return
            waiter = waiters.popleft()
            waiter.granted = True
            if not waiter.wake():  # its loop closed: the permit goes to the next one
                waiter.granted = False
                free.append(_TOKEN)

    def _enqueue(self, waiter: _Waiter | _AsyncWaiter) -> bool:
        """Queue ``waiter``, unless a permit is free (then it is taken: True). Queued, it looks
        at the free list again (see the class docstring)."""
        with self._lock:
            free = self._free
            if free:
                try:
                    free.pop()
                except IndexError:
                    pass
                else:
                    self._low = min(self._low, len(free) + self._unmade)
                    return True
            if self._take_unmade():  # (a permit not made yet is free)
                return True
            self._waiters.append(waiter)
            self._hand_over()  # a permit given back between take() and append() is handed over
            return False

    def _leave(self, waiter: _Waiter | _AsyncWaiter) -> bool:
        """``waiter`` stops waiting; True if it was given a permit meanwhile (it holds it)."""
        with self._lock:
            if waiter.granted:
                return True
            with contextlib.suppress(ValueError):  # (not queued: skipped, its loop closed)
                self._waiters.remove(waiter)
            return False

    def acquire(self, seconds: float) -> bool:
        """Block this thread up to ``seconds`` (``inf``: no limit) for a permit; True if taken."""
        if self.take():
            return True
        if seconds <= 0:
            return False
        waiter = _Waiter()
        if self._enqueue(waiter) or waiter.granted:
            return True
        try:
            if waiter.wait(seconds):
                return True
        except BaseException:  # interrupted (KeyboardInterrupt): leave, keeping nothing
            if self._leave(waiter):
                self.give()
            raise
        return self._leave(waiter)

    async def aacquire(self, seconds: float) -> bool:
        """Await a permit up to ``seconds`` (``inf``: no limit) without blocking the event
        loop; True if taken. A waiter cancelled just after it was handed a permit gives it
        back; ``CancelledError`` propagates."""
        if self.take():
            return True
        if seconds <= 0:
            return False
        waiter = _AsyncWaiter(_running_loop())
        if self._enqueue(waiter) or waiter.granted:
            return True
        try:
            if await waiter.wait(seconds):
                return True
        except BaseException:
            if self._leave(waiter):
                self.give()  # handed a permit as it was cancelled: nobody will use it
            raise
        return self._leave(waiter)


class Flight:
    """A one-shot event: waiters wait until :meth:`done` is called; then, and ever after,
    ``acquire`` and ``aacquire`` return True at once.

    Thread-safe; ``done`` may be called from any thread, and wakes every waiter, sync or async.
    """

    __slots__ = ("_done", "_lock", "_waiters")

    def __init__(self) -> None:
        self._done = False
        self._lock = threading.Lock()
        self._waiters: list[_Waiter | _AsyncWaiter] = []

    @property
    def is_done(self) -> bool:
        """Whether :meth:`done` has been called."""
        return self._done

    def done(self) -> None:
        """Mark the event done and wake every waiter (idempotent)."""
        with self._lock:
            if self._done:
                return
            self._done = True
            waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.granted = True
            waiter.wake()  # (a waiter whose loop closed is skipped: wake() says so, nothing to do)

    def _register(self, waiter: Any) -> bool:
        """Add ``waiter`` unless the event is done already (then False)."""
        with self._lock:
            if self._done:
                return False
            self._waiters.append(waiter)
            return True

    def _leave(self, waiter: Any) -> bool:
        """``waiter`` stops waiting; whether the event was done by then."""
        with self._lock:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            return self._done

    def acquire(self, seconds: float) -> bool:
        """Block this thread up to ``seconds`` (``inf``: no limit) until the event is done;
        True if it is."""
        if self._done:
            return True
        if seconds <= 0:
            return False
        waiter = _Waiter()
        if not self._register(waiter):
            return True
        try:
            if waiter.wait(seconds):
                return True
        except BaseException:  # interrupted (KeyboardInterrupt): leave
            self._leave(waiter)
            raise
        return self._leave(waiter)

    async def aacquire(self, seconds: float) -> bool:
        """Await up to ``seconds`` (``inf``: no limit), without blocking the event loop, until
        the event is done; True if it is. A cancelled waiter leaves and ``CancelledError``
        propagates."""
        if self._done:
            return True
        if seconds <= 0:
            return False
        waiter = _AsyncWaiter(_running_loop())
        if not self._register(waiter):
            return True
        try:
            if await waiter.wait(seconds):
                return True
        except BaseException:
            self._leave(waiter)
            raise
        return self._leave(waiter)


__all__ = ["Flight", "Permits"]
