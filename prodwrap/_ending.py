"""What both drivers share, off the success path's hot lines: the success path's hand-over
to the walk, and how every call reaches the finish point."""

from __future__ import annotations

import sys
from time import perf_counter
from typing import TYPE_CHECKING, Any

from prodwrap import _clock
from prodwrap._record import CallRecord
from prodwrap._stage import Route, Serve
from prodwrap.errors import InputValidationError

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from prodwrap._engine import Act, Engine
    from prodwrap._fastpath import FastPath

_clocks = _clock.current


def refused(fast: FastPath, passed: int, said: Any) -> Any:
    """The success path's ``fast_admit`` hooks did not all say True: the first ``passed``
    did, and give back what they took (``fast_undo``); ``said`` is what the next one said
    (False when it raised). A :class:`Serve` serves the call at once (a cache hit), a
    :class:`Route` sends it to the walk with its attempts going to the route's target (a
    canary's choice); anything else sends it to the walk, whose stages are asked again."""
    run_hooks(fast.undo[:passed], fast)
    return said if said.__class__ is Serve or said.__class__ is Route else False


def run_hooks(hooks: tuple[Callable[[], object] | None, ...], fast: FastPath) -> None:
    """Call each of the stages' argument-less success-path hooks (None: the stage has none);
    a hook that raises is counted and logged, never passed on (a stage's fault never costs
    the caller its output)."""
    for hook in hooks:
        if hook is not None:
            try:
                hook()
            except Exception as exc:
                fast.finisher.failed(hook, exc)


def interrupted(engine: Engine, fast: FastPath, start: float, value: Any, exc: BaseException, watch: Any) -> None:
    """The success path's attempt ended with something not an ``Exception`` (an asyncio
    cancel, a KeyboardInterrupt): what its ``fast_admit`` hooks took goes back, and the call
    ends at the finish point."""
    run_hooks(fast.interrupted, fast)
    rec = CallRecord(start, watch)
    rec.input, rec.attempts, rec.target, rec.admitted = value, 1, fast.primary, True
    broken(engine, rec, exc)


def served(engine: Engine, start: float, value: Any, decision: Serve, watch: Any) -> Any:
    """A ``fast_admit`` hook served the call (a cache hit): it ends at the finish point as the
    walk's admission would end it (the compiled success path finishes a hit no observer needs
    the record of itself: ``Finisher.served``)."""
    rec = CallRecord(start, watch)
    rec.input = value
    rec.outcome, rec.served_by = decision.outcome, decision.served_by  # type: ignore[assignment]
    rec.ok, rec.result = True, decision.value
    engine.finisher.finish(rec, None, decision.value, start)
    return decision.value


def walked(start: float, decision: Any, watch: Any = None) -> CallRecord:
    """The record of a call the ``fast_admit`` hooks did not keep on the success path (False,
    or a :class:`Route`: the walk sends its attempts to the route's target, ``rec.routed``,
    chosen once); a :class:`Serve` is not walked (see :func:`served`)."""
    rec = CallRecord(start, watch)
    if decision.__class__ is Route:
        rec.routed = decision.target
    return rec


def handover(
    engine: Engine, start: float, value: Any, failure: Exception, began: float | None, late: Any, watch: Any
) -> tuple[CallRecord, Generator[Act, None, None]]:
    """The first attempt of the success path failed (``late``: the job of an attempt given up
    on at its deadline): the walk goes on from there."""
    rec = CallRecord(start, watch)
    rec.late, rec.admitted = late, True
    now = _clocks.clock.monotonic()
    if began is None:  # the clock was not read before the attempt: date it by real time
        began = now - (perf_counter() - start)
    return rec, engine.walk(rec, value, None, failure, now, began)


def so_far(
    engine: Engine,
    start: float,
    value: Any,
    failure: Exception,
    reason: str,
    started_at: float | None = None,
    attempts: int = 1,
    slept: float = 0.0,
    phase: int = -1,
) -> CallRecord:
    """The record of a call the compiled failure path made attempts of, for the walk to go
    on from there (or the finish point to end it): the primary's first attempt failed with
    ``failure`` (``reason``), ``attempts`` of it were made in all, ``slept`` seconds between
    them, and its last attempt is of the primary (``phase`` -1) or of fallback ``phase``.
    ``started_at``: the clock's reading when the first attempt began (None: read now)."""
    rec = CallRecord(start)
    rec.routed = engine.primary
    rec.target = engine.primary if phase < 0 else engine.fallbacks[phase]
    rec.phase, rec.input, rec.attempts, rec.admitted = phase, value, attempts, True
    rec.errors, rec.reasons, rec.slept = [failure], [reason], slept
    if started_at is None:
        started_at = _clocks.clock.monotonic() - (perf_counter() - start)
    rec.started_at = started_at
    return rec


def finish_fast(
    fast: FastPath,
    start: float,
    value: Any,
    out: Any,
    began: float | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    watch: Any = None,
) -> None:
    """The success path's end when a stage has a hook there: the attempt seam's
    ``fast_done`` and ``fast_attempt`` hooks, then the finish point (with a record if an
    observer reads one, or a ``watch`` handle the call's telemetry; a watched call without
    one: ``Finisher.watched``)."""
    run_hooks(fast.done, fast)
    if fast.attempted:
        took = _clocks.clock.monotonic() - began  # type: ignore[operator]
        for attempted in fast.attempted:
            try:
                attempted(took)
            except Exception as exc:  # a stage's fault never costs the caller its output
                fast.finisher.failed(attempted, exc)
    if watch is None and fast.finisher.direct:  # (its observers keep Predictions: no record needed)
        fast.finisher.kept_fast(value, out, start)
    elif fast.record or (watch is not None and (watch.record or fast.finisher.recorders)):
        rec = CallRecord(start, watch)
        rec.attempts, rec.input, rec.target, rec.admitted = 1, value, fast.primary, True
        rec.args, rec.kwargs = args, kwargs
        rec.ok, rec.result = True, out
        fast.finish(rec, value, out, start)
    elif watch is not None:  # (its drift alerts, if the call raised any, go to the watch)
        fast.finisher.watched(watch, value, out, start)
    else:
        fast.finish(None, value, out, start)


def end(engine: Engine, rec: CallRecord) -> Any:
    """The walk is over: finish the call, then return its output or raise its error."""
    result = rec.result
    if rec.ok:
        engine.finisher.finish(rec, None, result, rec.start)
        return result
    rec.outcome = "error"
    engine.finisher.finish(rec, None, None, rec.start)
    try:
        raise result  # the user's own exception unchanged, or ours
    finally:  # (its traceback holds this frame: one that kept it would be a cycle)
        del result, rec


def broken(engine: Engine, rec: CallRecord, exc: BaseException) -> None:
    """The walk itself raised (a validator raising something else than a validation error,
    a stage's hook), the caller cancelled the call, or something not an ``Exception``
    (KeyboardInterrupt, SystemExit) came out of the predict: the call still ends at the
    finish point, as an error, before ``exc`` reaches the caller, so every stage settles
    (a cache's single flight, ...)."""
    asyncio = sys.modules.get("asyncio")
    if isinstance(exc, Exception):
        reason = "exception"
    elif asyncio is not None and isinstance(exc, asyncio.CancelledError):
        reason = "cancelled"  # the caller cancelled the call (asyncio)
    else:
        reason = "interrupted"  # KeyboardInterrupt, SystemExit, ...: the stages still settle
    rec.fail(exc, reason)  # type: ignore[arg-type]
    rec.outcome = "error"
    engine.finisher.finish(rec, None, None, rec.start)


def checked_input(validate: Callable[[Any], Any], x: Any) -> tuple[Any, InputValidationError | None]:
    """``(validate(x), None)``, or ``(None, the InputValidationError)`` without its traceback:
    the validator's own frames, whose callers' (the walk's) keep the record that keeps the
    error, a cycle the garbage collector alone would free. Raised to the caller, it gets the
    traceback of its raise."""
    try:
        return validate(x), None
    except InputValidationError as error:
        return None, error.with_traceback(None)


def within(rec: CallRecord, now: float) -> float:
    """A WAIT's seconds, cut to what is left of the call's deadline (never below zero)."""
    wait = rec.wait
    deadline = rec.deadline
    if deadline is not None and deadline - now < wait:
        wait = max(0.0, deadline - now)
    return wait


def limit_of(rec: CallRecord, now: float) -> float:
    """Seconds the current attempt may take from ``now``: the nearer of its two limits."""
    limit = rec.seconds if rec.seconds is not None else rec.limit - now  # type: ignore[operator]
    if rec.limit is not None:
        limit = min(limit, rec.limit - now)
    return limit


def aio() -> Any:
    """The asyncio module: imported by then (an event loop runs), never by ``import prodwrap``."""
    return sys.modules["asyncio"]
