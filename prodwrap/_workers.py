"""Worker threads for sync attempts under a time limit, and for sync predicts under asyncio.

Python cannot kill a thread, so an attempt that outlives its limit is *abandoned*: its caller
stops waiting, the attempt keeps its worker until it really ends, a late result is dropped
and a late exception is reported (``on_late``, and one WARNING per burst on
``prodwrap.workers``: see ``_jobs.LateLog``). The pool is uncapped (a cap would let hung
attempts starve later calls): it reuses an idle worker, else starts one. Idle workers exit
after ``idle_seconds``; workers are daemon threads started on first use, never at import.

A caller hands a worker one ``Job`` (``_jobs``) and never touches that worker again: the
worker goes back to the idle list (or takes the next queued job) as soon as its attempt ends,
so a caller that leaves at any point (timeout, KeyboardInterrupt, a cancelled task) cannot
strand it; the job's ``done`` lock settles who receives the outcome. An idle-worker sync call
costs one job object, one lock and the lock hand-offs: no Future, Condition or queue.

Async callers never start a worker on the event loop (``Thread.start`` blocks until the
thread runs): with no idle worker the job is queued, a starter thread (started once per busy
spell) starts workers for the queue, and workers take from it before going idle. An
attempt's own limit (``seconds``) counts from when it starts on a worker; time queued counts
only toward ``deadline``.
"""

from __future__ import annotations

import threading
from _thread import allocate_lock as _allocate_lock
from collections import deque
from typing import TYPE_CHECKING, Any

from prodwrap._jobs import INF, TIMED_OUT, Fn, Job, LateLog, OnLate, PoolCounts, discard, end_of

if TYPE_CHECKING:
    import asyncio

IDLE_SECONDS = 60.0  # an idle worker (and the starter) exits after this many seconds
_STEP = threading.TIMEOUT_MAX  # the longest single lock wait: longer waits go in steps
_MAX_DELAY = 86_400.0  # the longest single event-loop timer: longer waits go in steps


class Worker(threading.Thread):
    """One daemon thread: runs its job, then queued ones, then waits on the idle list."""

    def __init__(self, pool: Pool, job: Job | None) -> None:
        super().__init__(name="prodwrap-worker", daemon=True)
        self.pool = pool
        self.go = _allocate_lock()
        self.go.acquire()  # released by the caller that hands this idle worker a job
        self.job = job

    def run(self) -> None:
        pool, go = self.pool, self.go
        job = pool._joined(self, self.job)  # None: it is on the idle list already
        while True:
            while job is None:  # on the idle list: wait to be handed a job
                idle = pool.idle_seconds
                if go.acquire(True, idle if idle < _STEP else _STEP):
                    job, self.job = self.job, None
                if job is None:
                    job = self._idle_timeout()
                    if job is None:
                        return  # left the pool
            job.execute()
            if job.abandoned or job.waiter is not None:
                pool._handed_over(job)
            job = pool._next(self)

    def _idle_timeout(self) -> Job | None:
        """A wait on the idle list ended without a job: leave the pool (None), unless a job
        came just as the wait timed out."""
        pool = self.pool
        with pool._lock:
            if self in pool._idle:  # idle for idle_seconds
                pool._idle.remove(self)
            elif self.go.acquire(False):  # handed a job as the wait timed out: take it
                job, self.job = self.job, None
                if job is not None:
                    return job
            # (else taken by a caller interrupted before it woke us: leave as well)
            pool._workers -= 1
            self.job = None
            return None


class Pool:
    """An uncapped pool of worker threads (see the module docstring).

    Args:
        idle_seconds: how long an idle worker, or the starter thread, waits for work before
            it exits (tests pass a small value).
    """

    __slots__ = ("_backlog", "_idle", "_lock", "_starter", "_starting", "_wake", "_workers", "idle_seconds", "late")

    def __init__(self, idle_seconds: float = IDLE_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self._idle: list[Worker] = []
        self._backlog: deque[Job] = deque()  # async jobs no idle worker could take
        self._lock = threading.Lock()
        self._workers = 0  # live worker threads
        self._starting = 0  # workers the starter started that have not yet taken a job
        self._starter: threading.Thread | None = None
        self._wake = threading.Event()  # set when the backlog grew
        self.late = LateLog()

    def counts(self) -> PoolCounts:
        """How many workers are live and idle, and how many jobs are queued."""
        with self._lock:
            return PoolCounts(self._workers, len(self._idle), len(self._backlog))

    def run(
        self,
        seconds: float | None,
        deadline: float | None,
        fn: Fn,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        on_late: OnLate | None = None,
        holder: Any = None,
    ) -> tuple[bool, Any]:
        """Run ``fn(*args, **kwargs)`` on a worker, in a copy of the caller's context.

        Args:
            seconds: the attempt's own limit, counted from when it starts on its worker: any
                positive int or float, ``inf`` included (long waits go in bounded steps).
            deadline: an absolute limit on the current clock's ``monotonic()`` scale. Either
                limit may be None; with both None the caller waits until ``fn`` ends.
            args, kwargs: passed to ``fn`` as they are (their names never meet the pool's).
            on_late: called with an exception no caller received (raised after its caller
                stopped waiting), on the worker's thread or the interrupted caller's: it
                must be thread-safe and quick. If it raises, that is logged.

        Inside ``fn``, ``pw.deadline()`` reports the seconds left until the nearer limit. The
        wait itself is real time, also under a fake clock.

        Returns:
            ``(True, result)``, or ``(False, job)`` when the limit passed first: the attempt is
            abandoned (it keeps its worker until it ends; a late result is dropped silently;
            ``job.then(callback)`` runs ``callback`` when it really ends).

        Raises:
            Whatever ``fn`` raised, unchanged. A caller interrupted while waiting
            (KeyboardInterrupt) abandons the attempt (``holder.late`` is then its job, when a
            holder is given: a call's record), and the interrupt propagates.
        """
        job = Job(seconds, deadline, fn, args, kwargs, on_late)
        if deadline is None:  # the common case: one limit, from the attempt's start
            end = INF
            wait = INF if seconds is None else seconds  # from now: never past its start + seconds
        else:
            end = end_of(deadline)
            wait = job.left(end)
        handed = self._to_idle(job)
        done = job.done
        try:
            if not handed:
                Worker(self, job).start()  # this caller blocks anyway: no need to start it elsewhere
            while wait > 0:
                if done.acquire(True, wait if wait < _STEP else _STEP):
                    break
                wait = job.left(end)
            else:
                job.abandoned = True
                if not done.acquire(False):
                    return False, job
                # (else it ended just as we gave up: the outcome is ours)
        except BaseException:
            self._interrupted(job)
            if holder is not None:
                holder.late = job  # it may run on: the job says when it really ends
            raise
        error = job.error
        if error is not None:
            job.error = None  # no cycle through the traceback's frames
            try:
                raise error
            finally:  # (nor through this frame's)
                del error
        return True, job.result

    def start(
        self,
        seconds: float | None,
        deadline: float | None,
        fn: Fn,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        on_late: OnLate | None = None,
    ) -> Job:
        """Start ``fn(*args, **kwargs)`` on a worker and return at once (a sync caller racing
        attempts: a hedge). The caller waits through ``job.then`` and claims the outcome with
        ``job.done.acquire(False)``; a job it no longer wants it marks ``abandoned`` (then an
        exception it raises later is reported late, as for :meth:`run`)."""
        job = Job(seconds, deadline, fn, args, kwargs, on_late)
        if not self._to_idle(job):
            Worker(self, job).start()
        return job

    def _to_idle(self, job: Job) -> bool:
        """Hand ``job`` to an idle worker, if there is one (True)."""
        with self._lock:  # (``with``: an interrupt cannot leave the lock held)
            idle = self._idle.pop() if self._idle else None
            if idle is not None:
                idle.job = job
                idle.go.release()
        return idle is not None

    def _interrupted(self, job: Job) -> None:
        """The caller leaves early: abandon the job; report an exception nobody will see."""
        job.abandoned = True
        if job.done.acquire(False):
            self._unreceived(job)

    def _joined(self, worker: Worker, job: Job | None) -> Job | None:
        """A new worker counts itself; one from the starter takes its first job."""
        worker.job = None
        with self._lock:
            self._workers += 1
            if job is not None:
                return job
            self._starting -= 1
        return self._next(worker)

    def _next(self, worker: Worker) -> Job | None:
        """The next queued job for ``worker``, or None after putting it on the idle list."""
        lock = self._lock
        lock.acquire()  # (not ``with``, which costs twice as much: a worker is never interrupted)
        backlog = self._backlog
        found: Job | None = None
        dropped: list[Job] | None = None  # queued jobs whose callers gave up before they started
        while backlog:
            job = backlog.popleft()
            if not job.abandoned:
                found = job
                break
            dropped = [job] if dropped is None else [*dropped, job]
        if found is None:
            self._idle.append(worker)
        lock.release()
        for never in dropped or ():
            never.end()  # it never runs
        return found

    def _handed_over(self, job: Job) -> None:
        """On the worker, once ``job`` has ended: report it late, or wake its event loop."""
        if job.abandoned:  # its caller left: the outcome is late, unless it took it meanwhile
            if job.done.acquire(False):
                self._unreceived(job)
        elif job.waiter is not None:
            try:
                job.waiter[0].call_soon_threadsafe(self._settle, job)
            except RuntimeError:  # the loop closed: nobody waits any more
                if job.done.acquire(False):
                    self._unreceived(job)

    def _unreceived(self, job: Job) -> None:
        """An outcome nobody receives: an exception is reported late, a result dropped."""
        if job.error is not None:
            self.late.report(job.error, job)
        else:
            discard(job)

    # -- asyncio -------------------------------------------------------------------------------

    async def arun(
        self,
        seconds: float | None,
        deadline: float | None,
        fn: Fn,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        on_late: OnLate | None = None,
        holder: Any = None,
    ) -> tuple[bool, Any]:
        """:meth:`run` for a sync ``fn`` awaited on an event loop, which it never blocks.

        With both limits None, ``fn`` just runs off the loop, without a timeout. With no idle
        worker the job is queued: the time queued counts toward ``deadline`` only, and a job
        whose caller gave up before it started never runs. ``on_late`` may also run on the
        event loop's thread.

        Returns:
            ``(True, result)``, or ``(False, None)`` when the limit passed first.

        Raises:
            Whatever ``fn`` raised. If the awaiting task is cancelled, the attempt is abandoned
            (``holder.late`` is then set to its job, when a holder is given: a call's record)
            and ``asyncio.CancelledError`` propagates.
        """
        import asyncio  # imported by then: an event loop is running

        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        job = Job(seconds, deadline, fn, args, kwargs, on_late, (loop, future))
        end = end_of(deadline)
        self._give(job)
        if seconds is not None or deadline is not None:
            self._expire(job, end)
        try:
            out = await future
        except asyncio.CancelledError:
            self._cancelled(job, future)
            if holder is not None:
                holder.late = job  # it may run on: the job says when it really ends
            raise
        finally:
            if job.timer is not None:
                job.timer.cancel()
        if out is TIMED_OUT:
            return False, job
        return True, out

    def _give(self, job: Job) -> None:
        """Hand ``job`` to an idle worker, else queue it for the starter (never blocks)."""
        with self._lock:
            if self._idle:
                worker = self._idle.pop()
                worker.job = job
                worker.go.release()
                return
            self._backlog.append(job)
            starter = None
            if self._starter is None:
                self._starter = starter = threading.Thread(target=self._start, name="prodwrap-starter", daemon=True)
        self._wake.set()
        if starter is not None:
            starter.start()  # once per busy spell, not once per worker

    def _start(self) -> None:
        """The starter thread: start a worker for each queued job no worker is coming for."""
        wake = self._wake
        while True:
            wake.clear()
            with self._lock:
                need = len(self._backlog) - self._starting
                self._starting += max(need, 0)
            for _ in range(need):
                self._spawn()
            if not wake.wait(min(self.idle_seconds, _STEP)):
                with self._lock:
                    if len(self._backlog) <= self._starting:  # nothing to start: leave
                        self._starter = None
                        return

    def _spawn(self) -> None:
        try:
            Worker(self, None).start()
        except Exception as exc:  # no thread to be had: the job waits for a worker to free up
            with self._lock:
                self._starting -= 1
            self.late.warn("could not start a worker thread", exc, "no_thread")

    def _expire(self, job: Job, end: float) -> None:
        """On the loop: once the limit has passed, time the job out; until then, check back."""
        loop, future = job.waiter  # type: ignore[misc]
        if future.done():
            return
        wait = job.left(end)
        if wait > 0:
            job.timer = loop.call_later(min(wait, _MAX_DELAY), self._expire, job, end)
            return
        job.abandoned = True
        if job.done.acquire(False):  # it ended just now: the outcome is still the caller's
            job.deliver(future)
            return
        future.set_result(TIMED_OUT)
        self._unqueue(job)

    def _settle(self, job: Job) -> None:
        """On the loop, once the worker is done: give the awaiting caller its outcome."""
        if not job.done.acquire(False):
            return  # the caller gave up and took the outcome (or its absence) already
        future = job.waiter[1]  # type: ignore[index]
        if not future.done():
            job.deliver(future)
        elif job.error is not None:  # cancelled meanwhile: nobody will see the exception
            self.late.report(job.error, job)

    def _cancelled(self, job: Job, future: asyncio.Future[Any]) -> None:
        """The awaiting task was cancelled: abandon the job; report an unseen exception."""
        self._interrupted(job)
        if future.done() and not future.cancelled():  # settled, but the cancel came first
            exc = future.exception()
            if exc is not None:
                self.late.report(exc, job)
        self._unqueue(job)

    def _unqueue(self, job: Job) -> None:
        if job.started is None:
            with self._lock:
                if job not in self._backlog:
                    return
                self._backlog.remove(job)
            job.end()  # it never runs


POOL = Pool()
