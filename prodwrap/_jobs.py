"""One attempt handed to a worker thread (a ``Job``), its limits, and who receives its outcome.

A job carries the call (``fn``, ``args``, ``kwargs``, in a copy of the caller's context), its
limits and, once it ends, its outcome. Its ``done`` lock, acquired at creation, settles who
receives that outcome: the worker releases it exactly once, so exactly one acquire succeeds
after that (the waiting caller's, a caller's giving up, the event loop's settle callback's,
or the worker's own on finding the job abandoned). Whoever wins owns the outcome; an exception
that no caller receives is *late* and goes to :class:`LateLog`.

Limits: ``seconds`` counts from ``started`` (when a worker began the job), ``deadline`` is an
absolute reading of the current clock's ``monotonic()``; waiting is real time
(``time.monotonic``), also under a fake clock.
"""

from __future__ import annotations

from _thread import allocate_lock as _allocate_lock
from collections.abc import Callable
from contextvars import copy_context
from functools import partial
from time import monotonic as _monotonic
from types import CoroutineType
from typing import TYPE_CHECKING, Any, NamedTuple

from prodwrap import _clock
from prodwrap._context import DEADLINE, bind
from prodwrap._log import Throttle, logger

if TYPE_CHECKING:
    import asyncio

    from prodwrap._masking import Masking

LATE_LOG_SECONDS = 60.0  # at most one WARNING about late exceptions per this many seconds
INF = float("inf")
TIMED_OUT = object()  # what an async caller's future holds when its limit passed
_clocks = _clock.current
log = logger("workers")

_AFTER = _allocate_lock()  # guards Job.after (taken only for jobs someone waits on)
_faults = Throttle(log)
Fn = Callable[..., Any]
OnLate = Callable[[BaseException], None]


class PoolCounts(NamedTuple):
    """A snapshot of a pool: live ``workers``, how many are ``idle``, jobs ``queued``."""

    workers: int
    idle: int
    queued: int

    @property
    def busy(self) -> int:
        """Workers running (or about to run) an attempt."""
        return self.workers - self.idle


class Job:
    """One attempt: what to run, its limits, and (once it ends) its outcome."""

    __slots__ = (
        "abandoned",
        "after",
        "args",
        "ctx",
        "deadline",
        "done",
        "ended",
        "error",
        "fn",
        "kwargs",
        "on_late",
        "result",
        "seconds",
        "started",
        "timer",
        "waiter",
    )

    def __init__(
        self,
        seconds: float | None,
        deadline: float | None,
        fn: Fn,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        on_late: OnLate | None,
        waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]] | None = None,
    ) -> None:
        self.ctx = copy_context()
        self.seconds, self.deadline, self.fn, self.args, self.kwargs = seconds, deadline, fn, args, kwargs
        self.on_late, self.waiter = on_late, waiter
        self.done = done = _allocate_lock()
        done.acquire()  # released once, by the worker, when the outcome is ready
        self.started: float | None = None  # time.monotonic() when a worker began it
        self.result: Any = None
        self.error: BaseException | None = None
        self.abandoned = False  # set by a caller that stopped waiting
        self.timer: asyncio.TimerHandle | None = None  # an async caller's pending check
        self.ended = False  # fn has returned (or will never run)
        self.after: list[Callable[[], object]] | None = None  # run once it has (``then``)

    def execute(self) -> None:
        """Run the call on this (worker) thread, under the nearer limit; never raises.

        Inside ``fn``, ``pw.deadline()`` reports the seconds left until that limit. The
        outcome is stored and ``done`` released; the worker decides what follows.
        """
        mono = _clocks.clock.monotonic
        self.started = started = _monotonic()
        seconds, deadline = self.seconds, self.deadline
        binding = None
        if seconds is not None:
            at = (started if mono is _monotonic else mono()) + seconds
            binding = bind(at if deadline is None or at < deadline else deadline)
        elif deadline is not None:
            binding = bind(deadline)
        ctx = self.ctx
        if binding is not None:
            ctx.run(DEADLINE.set, binding)
        try:
            self.result = ctx.run(self.fn, *self.args, **self.kwargs)
        except BaseException as exc:  # handed to whoever receives the outcome
            self.error = exc
        self.done.release()  # first: what follows is off the waiting caller's path
        if binding is not None:
            binding.end()  # the attempt no longer runs under its deadline
        self.end()

    def end(self) -> None:
        """``fn`` has returned, or never will (a queued job dropped): run what waits for it."""
        self.ended = True
        if self.after is not None:
            self._run_after()

    def then(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` once this job has really ended (now, if it has): a bulkhead's
        permit is given back when an abandoned attempt's thread is done. A callback that
        raises is logged."""
        with _AFTER:
            if self.after is None:
                self.after = []
            self.after.append(callback)
        if self.ended:
            self._run_after()

    def _run_after(self) -> None:
        with _AFTER:  # each callback is taken once, whichever of end() and then() comes last
            callbacks, self.after = self.after or [], []
        for callback in callbacks:
            try:
                callback()
            except Exception as exc:
                _faults.warning("then", "a callback on an attempt's end raised %r", exc, exc_info=exc)

    def left(self, end: float) -> float:
        """Real seconds a caller may still wait: until ``end`` (a ``time.monotonic()`` reading)
        and ``seconds`` after the job started (while it has not, ``seconds`` from now)."""
        now = _monotonic()
        seconds = self.seconds
        if seconds is not None:
            started = self.started
            end = min(end, (now if started is None else started) + seconds)
        return end - now

    def deliver(self, future: asyncio.Future[Any]) -> None:
        """Settle an async caller's ``future`` with the outcome this caller owns."""
        error = self.error
        if error is not None:
            self.error = None  # no cycle through the traceback's frames
            future.set_exception(error)
        else:
            future.set_result(self.result)


def discard(job: Job) -> None:
    """The result of ``job``, which nobody receives (its caller gave up on it, or it lost a
    race), is dropped; a coroutine (a sync predict's, by mistake) is closed first, so no
    "never awaited" warning comes of it."""
    result, job.result = job.result, None
    if result.__class__ is CoroutineType:
        result.close()


def end_of(deadline: float | None) -> float:
    """``deadline`` (on the current clock's scale) as a ``time.monotonic()`` reading."""
    if deadline is None:
        return INF
    mono = _clocks.clock.monotonic
    return deadline if mono is _monotonic else _monotonic() + (deadline - mono())


class LateHook:
    """A model's ``on_late``: counts a late exception (``count``), and says what its log line
    may show (``masking``: the input's sensitive values, which a predict may put in its error)."""

    __slots__ = ("count", "masking")

    def __init__(self, count: OnLate, masking: Masking) -> None:
        self.count = count
        self.masking = masking

    def __call__(self, exc: BaseException) -> None:
        self.count(exc)


class LateLog:
    """Hands every late exception to its job's ``on_late``; logs one WARNING per burst of them
    (``prodwrap._log.Throttle``: the first of a burst is logged, the rest counted, and the
    next line says how many were left out), masked by the job's :class:`LateHook` if it has one."""

    __slots__ = ("throttle",)

    def __init__(self) -> None:
        self.throttle = Throttle(log, LATE_LOG_SECONDS)

    def report(self, exc: BaseException, job: Job) -> None:
        """Never raises: it runs on workers, on the event loop and in interrupted callers."""
        also = ""
        on_late = job.on_late
        if on_late is not None:
            try:
                on_late(exc)
            except BaseException as hook_error:  # a counting hook must not kill a worker
                also = f"; on_late raised {type(hook_error).__name__}: {hook_error}"
        masked = partial(on_late.masking.mask_for, job.args[0]) if isinstance(on_late, LateHook) and job.args else None
        self.warn(f"an abandoned attempt raised after its caller stopped waiting{also}", exc, "late_exception", masked)

    def warn(
        self,
        what: str,
        exc: BaseException,
        reason: str,
        masked: Callable[[], Callable[[str], str] | None] | None = None,
    ) -> None:
        """Log ``what`` and ``exc`` at WARNING (``extra``: ``reason``), once per burst (``masked``:
        the mask of the line, made only if it is logged)."""
        self.throttle.warning(
            reason, "%s: %s: %s", what, type(exc).__name__, exc, exc_info=exc, extra={"reason": reason}, masked=masked
        )
