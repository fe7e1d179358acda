"""The audit log's background writer: a bounded queue, one thread, one sink.

The prediction path only appends to a ``deque`` (atomic, no lock) and, when the writer is
idle, sets an event. The writer drains the queue, builds each line (``prodwrap._audit_lines``),
hands it to the sink and flushes the sink whenever the queue runs dry. A full queue makes the
caller wait up to ``max_wait`` seconds for room, then counts the line as lost. A sink that
raises loses that line (counted, logged once per burst) and the writer goes on with the next;
nothing reaches the caller. ``flush()`` puts a mark in the queue and waits for the writer to
reach it, so it covers every line queued before it.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prodwrap._log import Throttle, logger
from prodwrap._stats import counted

_faults = Throttle(logger("audit"))
_IDLE_WAIT = 1.0  # seconds an idle writer sleeps before it looks at the queue again anyway


class _Mark:
    """A point in the queue that ``flush`` waits for."""

    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = True  # False: close() gave up before the writer reached it


class FileSink:
    """Appends one JSON line per prediction to ``path`` (created with its directories on the
    first line); a write that fails closes the file, which is opened again for the next line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: Any = None

    def __call__(self, line: dict[str, Any]) -> None:
        text = json.dumps(line, separators=(",", ":"), allow_nan=False) + "\n"
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open: one line at a time)
        try:
            self._file.write(text)
        except Exception:
            self.close()
            raise

    def flush(self) -> None:
        if self._file is not None:
            try:
                self._file.flush()
            except Exception:
                self.close()
                raise

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()


class Writer:
    """One thread draining one bounded queue into one sink (started by the first line).

    Args:
        sink: called with each line's dict on the writer's thread; its ``flush()`` and
            ``close()`` are called when it has them.
        build: ``build(item) -> dict``, the line of a queued item (run on the writer's thread).
        max_queue: lines waiting at most; a full queue makes the caller wait.
        max_wait: seconds a caller waits for room in a full queue before the line is lost.
        name: how logs name the log.
        started: called once, when the thread starts (the atexit registration).
        wrote: ``wrote(item, line)`` once the sink took a line (never raises): hands it to
            the test captures that were in force when it was queued.
    """

    def __init__(
        self,
        sink: Callable[[dict[str, Any]], object],
        build: Callable[[Any], dict[str, Any]],
        max_queue: int,
        max_wait: float,
        name: str,
        started: Callable[[], object],
        wrote: Callable[[Any, dict[str, Any]], None] | None = None,
    ) -> None:
        self.sink = sink
        self.build = build
        self.max_queue = max_queue
        self.max_wait = max_wait
        self.name = name
        self.started = started
        self.wrote = wrote
        self.queue: deque[Any] = deque()
        self.wake = threading.Event()
        self.room = threading.Event()
        self.idle = False  # the writer sleeps: the next line wakes it
        self.waiting = False  # a caller waits for room
        self.stopping = False  # close(): drain what is queued, then end
        self.abandon = False  # close() ran out of time: end after the current line
        self.closed = False
        self.thread: threading.Thread | None = None
        self._lock = threading.Lock()  # starting and closing (never per line)
        self.written = itertools.count()
        self.full = itertools.count()
        self.failed = itertools.count()
        self.after_close = itertools.count()
        self.unflushed = False

    # -- the prediction path -------------------------------------------------------------------

    def put(self, item: Any) -> None:
        """Queue one line (never raises): appended, or counted as lost."""
        if self.closed:
            self._lost_after_close()
            return
        if self.thread is None:
            self._start()
        queue = self.queue
        if len(queue) >= self.max_queue and not self._room():
            next(self.full)
            _faults.warning(
                (id(self), "full"),
                "audit %s: queue full (%d lines) for %g s: a line was lost",
                self.name,
                self.max_queue,
                self.max_wait,
            )
            return
        queue.append(item)
        if self.idle:
            self.wake.set()
        if self.closed:  # close() ran meanwhile: the line is lost unless someone took it already
            try:
                queue.remove(item)
            except ValueError:
                return
            self._lost_after_close()

    def _lost_after_close(self) -> None:
        next(self.after_close)
        _faults.warning((id(self), "closed"), "audit %s: a line after close() was not written", self.name)

    def _room(self) -> bool:
        """Wait up to ``max_wait`` (real seconds) for the writer to make room."""
        deadline = time.monotonic() + self.max_wait
        while len(self.queue) >= self.max_queue:
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return False
            self.waiting = True
            self.room.clear()
            self.wake.set()
            if len(self.queue) >= self.max_queue:
                self.room.wait(left)
        return True

    def _start(self) -> None:
        with self._lock:
            if self.thread is not None or self.closed:
                return
            thread = threading.Thread(target=self._run, name=f"prodwrap-audit-{self.name}", daemon=True)
            thread.start()
            self.thread = thread
        self.started()

    # -- the writer's thread ------------------------------------------------------------------

    def _run(self) -> None:
        queue = self.queue
        while not self.abandon:
            while queue and not self.abandon:
                item = queue.popleft()
                if self.waiting:
                    self.waiting = False
                    self.room.set()
                if type(item) is _Mark:
                    self._flush()
                    item.done.set()
                else:
                    self._write(item)
            if self.unflushed:
                self._flush()
            if self.stopping and not queue:
                break
            self.idle = True
            if not queue and not self.stopping:
                self.wake.wait(_IDLE_WAIT)
            self.idle = False
            self.wake.clear()
        self._call("close")  # on this thread: never under a line being written

    def _write(self, item: Any) -> None:
        try:
            line = self.build(item)
            self.sink(line)
        except BaseException as exc:  # (a sink's SystemExit must not end the writer either)
            next(self.failed)
            _faults.warning(
                (id(self), "sink"),
                "audit %s: a line was lost: %s: %s",
                self.name,
                type(exc).__name__,
                exc,
                exc_info=exc,
            )
            return
        next(self.written)
        self.unflushed = True
        if self.wrote is not None:
            self.wrote(item, line)

    def _flush(self) -> None:
        self.unflushed = False
        self._call("flush")

    def _call(self, method: str) -> None:
        hook = getattr(self.sink, method, None)
        if callable(hook):
            try:
                hook()
            except Exception as exc:
                _faults.warning(
                    (id(self), method),
                    "audit %s: the sink's %s() raised %s: %s",
                    self.name,
                    method,
                    type(exc).__name__,
                    exc,
                    exc_info=exc,
                )

    # -- flush and close ------------------------------------------------------------------------

    def flush(self, timeout: float | None) -> bool:
        """Wait until every line queued so far is written and the sink flushed."""
        if self.thread is None or not self.thread.is_alive():
            return not self.queue
        mark = _Mark()
        self.queue.append(mark)
        self.wake.set()
        return mark.done.wait(timeout) and mark.ok

    def close(self, timeout: float | None) -> bool:
        """Write what is queued, close the sink, end the thread; True when every line queued
        was written. A sink still busy after ``timeout`` seconds ends after its current line,
        and the lines left are counted as lost."""
        with self._lock:
            if self.closed:
                return True
            self.closed = True
            thread = self.thread
        self.room.set()  # callers waiting for room give up
        if thread is None:
            self._call("close")
            return True
        self.stopping = True
        self.wake.set()
        thread.join(timeout)
        drained = not thread.is_alive()
        if not drained:
            self.abandon = True
        left = 0
        while True:  # what the writer did not take (each item is taken by one thread only)
            try:
                item = self.queue.popleft()
            except IndexError:
                break
            if type(item) is _Mark:
                item.ok = False
                item.done.set()
            else:
                left += 1
                next(self.after_close)
        if left:
            _faults.warning((id(self), "left"), "audit %s: %d lines not written by close()", self.name, left)
        return drained and not left

    # -- counts -----------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        pending = sum(1 for item in list(self.queue) if type(item) is not _Mark)
        return {
            "written": counted(self.written),
            "full": counted(self.full),
            "failed": counted(self.failed),
            "after_close": counted(self.after_close),
            "pending": pending,
        }
