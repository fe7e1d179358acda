"""A stand-in for ``prodwrap._gates.Flight`` (a one-shot event: the single flight's gate) until
that module lands; same interface: ``done()``, ``acquire(seconds)``, ``aacquire(seconds)``."""

from __future__ import annotations

import contextlib
import math
import threading
from typing import Any


class Flight:
    __slots__ = ("_event", "_futures", "_lock")

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._futures: list[tuple[Any, Any]] = []

    @property
    def is_done(self) -> bool:
        return self._event.is_set()

    def done(self) -> None:
        with self._lock:
            self._event.set()
            futures, self._futures = self._futures, []
        for loop, future in futures:
            with contextlib.suppress(RuntimeError):  # its loop has closed
                loop.call_soon_threadsafe(_settle, future)

    def acquire(self, seconds: float) -> bool:
        return self._event.wait(threading.TIMEOUT_MAX if seconds == math.inf else seconds)

    async def aacquire(self, seconds: float) -> bool:
        import asyncio

        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            if self._event.is_set():
                return True
            self._futures.append((loop, future))
        try:
            async with asyncio.timeout(None if seconds == math.inf else seconds):
                return bool(await future)
        except TimeoutError:
            return self._event.is_set()


def _settle(future: Any) -> None:
    if not future.done():
        future.set_result(True)
