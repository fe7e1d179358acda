"""A small bounded background worker: a few daemon threads draining one bounded queue.

What is slow and off the hot path (a shadow candidate, an escalation's review sink) is
handed to one of these. ``submit`` never blocks: with ``max_pending`` jobs queued or running
it refuses (the caller counts the loss). Threads start on first use (never at import or
construction), at most ``threads`` of them, and an idle one exits after ``IDLE_SECONDS``.
``close()`` drops what is still queued and lets each thread finish its current job; no
thread outlives it by more than that job. A job that raises is the caller's business: jobs
are expected to catch their own faults (what escapes is logged here, once per burst).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from prodwrap._log import Throttle, logger

IDLE_SECONDS = 30.0
_faults = Throttle(logger("workers"))


class BoundedWorker:
    """Up to ``threads`` daemon threads running jobs from a queue of at most ``max_pending``.

    Args:
        name: the threads' name (and the log key of a job that raises).
        threads: how many jobs run at once (>= 1).
        max_pending: jobs queued or running at most; ``submit`` refuses beyond.
    """

    def __init__(self, name: str, threads: int, max_pending: int) -> None:
        self.name = name
        self.threads = threads
        self.max_pending = max_pending
        self.idle_seconds = IDLE_SECONDS
        self.pending = 0  # queued + running
        self.peak = 0
        self.dropped = 0  # queued jobs close() dropped
        self.closed = False
        self._queue: deque[tuple[Callable[..., object], tuple[Any, ...]]] = deque()
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._drained = threading.Condition(self._lock)
        self._live = 0
        self._idle = 0

    def submit(self, fn: Callable[..., object], *args: Any) -> bool:
        """Queue ``fn(*args)``; False (nothing queued) when full or closed. Never blocks but
        to start a thread, the first ``threads`` times."""
        with self._lock:
            if self.closed or self.pending >= self.max_pending:
                return False
            self.pending += 1
            self.peak = max(self.peak, self.pending)
            self._queue.append((fn, args))
            if self._idle:
                self._work.notify()
                return True
            start = self._live < self.threads
            if start:
                self._live += 1
        if start:
            try:
                threading.Thread(target=self._run, name=self.name, daemon=True).start()
            except Exception as exc:  # no thread to be had: a live one (if any) takes the job later
                with self._lock:
                    self._live -= 1
                _faults.warning(f"{self.name}:thread", "%s: could not start a thread: %s", self.name, exc)
        return True

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue:
                    if self.closed:
                        self._live -= 1
                        return
                    self._idle += 1
                    woke = self._work.wait(self.idle_seconds)
                    self._idle -= 1
                    if not woke and not self._queue:
                        self._live -= 1
                        return
                fn, args = self._queue.popleft()
            try:
                fn(*args)
            except BaseException as exc:  # jobs catch their own faults: this is a bug of ours
                _faults.warning(f"{self.name}:job", "%s: a job raised %s: %s", self.name, type(exc).__name__, exc)
            finally:
                with self._lock:
                    self.pending -= 1
                    if not self.pending:
                        self._drained.notify_all()

    def drain(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` seconds (None: for ever) until nothing is queued or running."""
        with self._lock:
            return self._drained.wait_for(lambda: not self.pending, timeout)

    def close(self) -> int:
        """Drop what is queued (returned: how many) and let the threads end after their current
        job. Idempotent; ``submit`` refuses from here on."""
        with self._lock:
            self.closed = True
            dropped = len(self._queue)
            self._queue.clear()
            self.pending -= dropped
            self.dropped += dropped
            self._work.notify_all()
            if not self.pending:
                self._drained.notify_all()
        return dropped
