"""What a driver waits on at a WAIT act (``prodwrap._stage.Gate``): usable from threads and
from asyncio alike.

- :class:`Flight`: a one-shot event. ``acquire``/``aacquire`` wait until :meth:`Flight.done`
  is called (a cache's single flight: the callers of one missing key wait for the one
  predict call that fills it).

Waiting is real time (``time.monotonic``), also under a fake clock. A sync waiter blocks its
thread on a lock of its own; an async waiter awaits a future of its loop and is woken with
``loop.call_soon_threadsafe``, from whatever thread wakes it. A waiter whose loop has closed is
skipped: nobody is left to wake.
"""

from __future__ import annotations

import math
import threading
from _thread import allocate_lock as _allocate_lock
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
        if waiter.wait(seconds):
            return True
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


__all__ = ["Flight"]
