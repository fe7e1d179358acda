"""The background checker of a DriftMonitor: one daemon thread that never keeps its monitor alive.

The thread runs :func:`_run` on a :class:`Checker` (this state) and a weak reference to the
monitor. It takes a strong reference only for the length of one check, so a monitor dropped
without ``close()`` is collected; its finaliser closes the checker and the thread ends.
``close()`` stops the thread after its current check (a due check not yet started is dropped).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Protocol


class _Checked(Protocol):
    def _background_check(self) -> None: ...


class Checker:
    """Due / running / closed flags, the coalesced count, and the thread, under one lock.

    The lock is re-entrant: the monitor's finaliser (``close(join=False)``) may run from a
    garbage collection on any thread, this one included, while it holds the lock.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.pending = False  # a check is due and not yet started
        self.running = False
        self.closed = False
        self.coalesced = 0  # due checks folded into one already pending
        self.thread: threading.Thread | None = None

    def schedule(self, monitor: _Checked) -> None:
        """A check is due: wake the thread (starting it the first time), or fold into a pending one."""
        with self.lock:
            if self.closed:
                return
            if self.pending:
                self.coalesced += 1  # a check is already due: it will test the latest window
                return
            self.pending = True
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=_run, args=(self, weakref.ref(monitor)), name="prodwrap-drift", daemon=True
                )
                self.thread.start()
            self.changed.notify_all()

    def wait(self, timeout: float | None) -> bool:
        """Block until no check is due or running; False if ``timeout`` (seconds) passed first."""
        with self.changed:
            return self.changed.wait_for(self._idle, timeout)

    def _idle(self) -> bool:
        if self.running:
            return False
        return not self.pending or self.thread is None or not self.thread.is_alive()

    def close(self, join: bool = True, timeout: float | None = None) -> None:
        """Stop the thread after its current check (idempotent); with ``join``, wait for it."""
        with self.lock:
            self.closed = True
            self.pending = False
            self.changed.notify_all()
            thread = self.thread
        if join and thread is not None and thread is not threading.current_thread():
            thread.join(timeout)


def _run(checker: Checker, ref: weakref.ReferenceType[Any]) -> None:
    """The thread: wait for a due check, run it on the monitor if it still exists, repeat."""
    while True:
        with checker.lock:
            while not checker.pending and not checker.closed:
                checker.changed.wait()
            if checker.closed:
                return
            checker.pending = False
            checker.running = True
        monitor = ref()
        alive = monitor is not None
        try:
            if monitor is not None:
                monitor._background_check()  # counts and logs anything raised inside
        except BaseException:  # the thread outlives any fault (the check counted it)
            pass
        finally:
            monitor = None  # the last reference may go here: the finaliser closes the checker
            with checker.lock:
                checker.running = False
                checker.changed.notify_all()
        if not alive:
            return
