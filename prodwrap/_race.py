"""The RACE act: a hedged attempt, carried out by the sync or the async driver.

The walk yields RACE for an attempt of the primary that a hedge covers, with ``rec.wait``
the seconds after which one more attempt may start and ``rec.extra`` how many more may. The
driver starts the first attempt; each time ``rec.wait`` passes with no attempt succeeded and
one still running (a failure starts no hedge: the retry policy decides), it asks the engine
(:func:`prodwrap._attempt.may_race`: the retry budget, the stages inside the hedge such as the rate
limit) whether one more may start, and starts it. The first success wins; the others are
cancelled (async) or discarded (sync: their threads run on, their results dropped). Every
attempt keeps its own limits (the attempt timeout from its own start, the call's deadline).

Afterwards ``rec.ok`` and ``rec.result`` hold the race's outcome (the winner's output, or the
last failure), ``rec.raced`` how many attempts started, ``rec.won`` the winner's index (0:
the first; -1: none), ``rec.spans`` each attempt's own seconds on prodwrap's clock (from its
start to its end, or to when the race gave up on it or it lost: what a price per second
charges it), and the failures met on the way are on the record's errors. A sync race's
losers still running are ``rec.late`` (``then`` runs when all of them have ended).
"""

from __future__ import annotations

import threading
from time import monotonic as _monotonic
from typing import TYPE_CHECKING, Any

from prodwrap import _clock
from prodwrap._attempt import lost, may_race, undo_inner
from prodwrap._jobs import discard, end_of
from prodwrap._workers import POOL

if TYPE_CHECKING:
    from collections.abc import Callable

    from prodwrap._engine import Engine
    from prodwrap._jobs import Job
    from prodwrap._record import CallRecord

_clocks = _clock.current


class _Holder:
    """Where one raced attempt's job goes when it is a sync attempt given up on."""

    __slots__ = ("late",)

    def __init__(self) -> None:
        self.late: Job | None = None


class _Losers:
    """The jobs a sync race discarded while they still ran: ``then`` runs once all have ended."""

    __slots__ = ("jobs", "left", "lock")

    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = jobs
        self.left = len(jobs)
        self.lock = threading.Lock()

    def then(self, callback: Callable[[], object]) -> None:
        def one_ended() -> None:
            with self.lock:
                self.left -= 1
                last = self.left == 0
            if last:
                callback()

        for job in self.jobs:
            job.then(one_ended)


def race_sync(engine: Engine, rec: CallRecord, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Carry out a RACE on worker threads; this thread waits for the first success."""
    fn = rec.target.fn
    ended = threading.Semaphore(0)  # released once by each attempt as it ends
    jobs: list[Job] = []
    claimed: set[int] = set()
    end = end_of(rec.limit)
    clock = _clocks.clock
    begun: list[float] = []  # each attempt's start, on prodwrap's clock
    spans: list[float] = []  # and its seconds, once it ended or was given up on (-1: not yet)

    def start() -> None:
        began = clock.monotonic()  # (before it starts: its thread may move a test's clock)
        job = POOL.start(rec.seconds, rec.limit, fn, (rec.input, *args), kwargs, engine.late)
        job.then(ended.release)
        jobs.append(job)
        begun.append(began)
        spans.append(-1.0)

    def claim(i: int) -> None:
        claimed.add(i)
        spans[i] = max(0.0, clock.monotonic() - begun[i])

    start()
    hedge_at = _monotonic() + rec.wait
    rec.won, failure = -1, None
    rec.racing = True
    try:
        while True:
            running = [i for i in range(len(jobs)) if i not in claimed]
            if not running:
                break  # every attempt failed (or timed out)
            may_start = len(jobs) <= rec.extra
            wait = min(jobs[i].left(end) for i in running)
            if may_start:
                wait = min(wait, hedge_at - _monotonic())
            if wait > 0 and ended.acquire(True, min(wait, threading.TIMEOUT_MAX)):
                i = next((i for i in running if jobs[i].ended), -1)
                if i < 0:
                    continue  # one given up on earlier has ended since
                claim(i)
                job = jobs[i]
                job.done.acquire()  # (released before the job counts as ended)
                if job.error is None:
                    rec.won, rec.result = i, job.result
                    if failure is not None:
                        lost(engine, rec, failure)
                    break
                error, job.error = job.error, None
                if not isinstance(error, Exception):
                    raise error
                if failure is not None:
                    lost(engine, rec, failure)
                failure = error  # the others go on; a failure starts no hedge (retries decide)
                continue
            for i in running:
                job = jobs[i]
                if job.left(end) > 0:
                    continue
                claim(i)  # past its own limit: given up on
                job.abandoned = True
                own: Exception | None = None
                if job.done.acquire(False):  # it ended just as we gave up: the outcome is ours
                    if job.error is None:
                        rec.won, rec.result = i, job.result
                        break
                    raised, job.error = job.error, None
                    if not isinstance(raised, Exception):
                        raise raised
                    own = raised
                else:
                    engine.stats.abandoned()
                if failure is not None:
                    lost(engine, rec, failure)
                failure = own or engine.timeout_error(rec, rec.seconds if rec.seconds is not None else 0.0)
            if rec.won >= 0:
                if failure is not None:
                    lost(engine, rec, failure)
                break
            if may_start and _monotonic() >= hedge_at and len(claimed) < len(jobs):
                if may_race(engine, rec, _clocks.clock.monotonic()):
                    try:
                        start()
                    except Exception as exc:  # no thread to be had: no hedge this time
                        undo_inner(engine, rec)
                        engine.finisher.failed(start, exc)
                        rec.extra = len(jobs) - 1
                        continue
                    hedge_at = _monotonic() + rec.wait
                else:
                    rec.extra = len(jobs) - 1  # no more this call
    finally:
        losers = [jobs[i] for i in range(len(jobs)) if i not in claimed]
        now = clock.monotonic()
        rec.spans = [max(0.0, now - begun[i]) if t < 0 else t for i, t in enumerate(spans)]  # (losers: until now)
        for job in losers:  # discarded: their threads run on, their results are dropped
            job.abandoned = True
            if job.done.acquire(False):
                job.error = None
                discard(job)
        rec.racing = False
        still = [job for job in jobs if not job.ended]  # discarded or given up on, running on
        rec.late = _Losers(still) if still else None
        rec.raced = len(jobs)
    rec.ok = rec.won >= 0
    if not rec.ok:
        rec.result = failure


async def race_async(engine: Engine, rec: CallRecord, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Carry out a RACE as tasks on the running loop; the losers are cancelled."""
    import asyncio

    from prodwrap._drivers import _call_async

    tasks: list[asyncio.Task[Any]] = []
    running: set[asyncio.Task[Any]] = set()
    holders: list[_Holder] = []  # each attempt's job, if it is a sync one given up on
    clock = _clocks.clock
    begun: list[float] = []  # each attempt's start, on prodwrap's clock
    spans: list[float] = []  # and its seconds, once it ended (-1: not yet)

    def start() -> None:
        holder = _Holder()
        begun.append(clock.monotonic())
        spans.append(-1.0)
        task = asyncio.ensure_future(_call_async(engine, rec, args, kwargs, holder))
        tasks.append(task)
        holders.append(holder)
        running.add(task)

    loop = asyncio.get_running_loop()
    start()
    hedge_at = loop.time() + rec.wait
    rec.won, failure = -1, None
    rec.racing = True
    try:
        while running:
            may_start = len(tasks) <= rec.extra
            if may_start and loop.time() >= hedge_at:
                if may_race(engine, rec, _clocks.clock.monotonic()):
                    start()
                    hedge_at = loop.time() + rec.wait
                else:
                    rec.extra = len(tasks) - 1  # no more this call
                continue
            timeout = max(0.0, hedge_at - loop.time()) if may_start else None
            done, _ = await asyncio.wait(running, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:  # in the order they started: the earliest success wins
                if task not in done:
                    continue
                running.discard(task)
                i = tasks.index(task)
                spans[i] = max(0.0, clock.monotonic() - begun[i])
                error = task.exception()
                if error is None:
                    rec.won, rec.result = i, task.result()
                    if failure is not None:
                        lost(engine, rec, failure)
                    return
                if not isinstance(error, Exception):
                    raise error
                if failure is not None:
                    lost(engine, rec, failure)
                failure = error  # the others go on; a failure starts no hedge (retries decide)
    finally:
        rec.racing = False
        now = clock.monotonic()  # the losers are charged until they lost (they are cancelled now)
        rec.spans = [max(0.0, now - begun[i]) if t < 0 else t for i, t in enumerate(spans)]
        for task in running:
            task.cancel()
        if running:  # the losers end here: none keeps running on the loop
            await asyncio.wait(running)
        still = [h.late for h in holders if h.late is not None and not h.late.ended]
        rec.late = _Losers(still) if still else None  # sync attempts that run on in their threads
        rec.raced = len(tasks)
        rec.ok = rec.won >= 0
        if not rec.ok:
            rec.result = failure
