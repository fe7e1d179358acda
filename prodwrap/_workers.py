"""Worker threads for attempts that run under a deadline (and sync predicts under asyncio).

Python cannot kill a thread, so an attempt that outlives its deadline keeps its worker
until it really ends; its late result is discarded. The pool therefore never caps the
number of workers (a capped pool would let hung attempts starve every later call): it
reuses idle workers and starts a new one when none is idle. Idle workers exit after
``IDLE_SECONDS``. Workers are daemon threads, started lazily on first use, never at import.

Hand-off costs two lock operations per side and no Future, Condition or queue.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prodwrap._context import DEADLINE, Binding

if TYPE_CHECKING:
    import asyncio

IDLE_SECONDS = 60.0


class Worker(threading.Thread):
    """One thread running one attempt at a time."""

    def __init__(self, pool: Pool) -> None:
        super().__init__(name="prodwrap-worker", daemon=True)
        self.pool = pool
        self.go = threading.Lock()
        self.go.acquire()  # released by submit(): a job is ready
        self.done = threading.Lock()
        self.done.acquire()  # released by the worker: the result is ready
        self.state = threading.Lock()  # guards finished/abandoned
        self.finished = False
        self.abandoned = False
        self.job: (
            tuple[contextvars.Context, Binding | None, Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None
        ) = None
        self.waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]] | None = None
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        pool = self.pool
        while True:
            if not self.go.acquire(timeout=IDLE_SECONDS):
                if pool.retire(self):
                    return
                continue  # taken from the idle list just now: a job is coming
            ctx, binding, fn, args, kwargs = self.job  # type: ignore[misc]
            self.job = None
            try:
                result, error = ctx.run(fn, *args, **kwargs), None
            except BaseException as exc:  # handed to the caller, never swallowed
                result, error = None, exc
            if binding is not None:
                binding.end()  # this attempt no longer runs under its deadline
            waiter = self.waiter
            if waiter is not None:
                self.waiter = None
                _resolve_async(waiter, result, error)
                pool.release(self)
                continue
            with self.state:
                self.finished = True
                abandoned = self.abandoned
            if abandoned:  # the caller gave up: drop the late result, recycle ourselves
                self.finished = self.abandoned = False
                pool.release(self)
            else:
                self.result, self.error = result, error
                self.done.release()


def _resolve_async(
    waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]], result: Any, error: BaseException | None
) -> None:
    loop, future = waiter

    def settle() -> None:
        if future.cancelled():  # the awaiting task gave up: the late result is discarded
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is waiting
        loop.call_soon_threadsafe(settle)


class Pool:
    __slots__ = ("_idle", "_lock")

    def __init__(self) -> None:
        self._idle: list[Worker] = []
        self._lock = threading.Lock()

    def _take(self) -> Worker:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        worker = Worker(self)
        worker.start()
        return worker

    def release(self, worker: Worker) -> None:
        with self._lock:
            self._idle.append(worker)

    def retire(self, worker: Worker) -> bool:
        """An idle worker timed out waiting: leave unless someone just took it."""
        with self._lock:
            if worker in self._idle:
                self._idle.remove(worker)
                return True
            return False

    def call(
        self, timeout: float, deadline: float | None, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> tuple[bool, Any]:
        """Run ``fn(*args, **kwargs)`` on a worker, in a copy of the caller's context.

        Args:
            timeout: seconds to wait for it.
            deadline: the absolute deadline ``pw.deadline()`` reports inside ``fn``, or None.

        Returns ``(True, result)``, or ``(False, None)`` when ``timeout`` seconds passed
        first (the attempt is then abandoned). The attempt's exception is re-raised here.
        """
        worker = self._take()
        worker.job = (*_job_context(deadline), fn, args, kwargs)
        worker.go.release()
        try:
            done = worker.done.acquire(timeout=max(timeout, 0.0))
        except BaseException:  # interrupted while waiting (KeyboardInterrupt): give the attempt up
            self._abandon(worker)
            raise
        if not done and self._abandon(worker):
            return False, None
        result, error = worker.result, worker.error
        worker.result = worker.error = None
        worker.finished = False
        self.release(worker)
        if error is not None:
            raise error
        return True, result

    def _abandon(self, worker: Worker) -> bool:
        """Give up waiting for ``worker``: True if its attempt still runs (it will recycle
        itself when it ends); False if it had finished, in which case its result is ready."""
        with worker.state:
            if not worker.finished:
                worker.abandoned = True
                return True
        worker.done.acquire()  # finished just as we gave up: the result is there
        return False

    def submit_async(
        self,
        loop: asyncio.AbstractEventLoop,
        deadline: float | None,
        fn: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> asyncio.Future[Any]:
        """Run ``fn`` on a worker (under ``deadline``, as for :meth:`call`); the returned future
        settles on ``loop`` when it ends."""
        future: asyncio.Future[Any] = loop.create_future()
        worker = self._take()
        worker.waiter = (loop, future)
        worker.job = (*_job_context(deadline), fn, args, kwargs)
        worker.go.release()
        return future


def _job_context(deadline: float | None) -> tuple[contextvars.Context, Binding | None]:
    """A copy of the caller's context for the attempt, holding its deadline if it has one."""
    ctx = contextvars.copy_context()
    binding = None
    if deadline is not None:
        binding = Binding(deadline)  # ended by the worker when the attempt ends, however late
        ctx.run(DEADLINE.set, binding)
    return ctx, binding


POOL = Pool()
