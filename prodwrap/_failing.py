"""The failure path, compiled: what a call whose first attempt failed does inline.

A part of the template in ``prodwrap._compiled`` (its lines, ``FAILED``, and their flags,
:func:`failing`). It applies when no stage is around the call's attempts, no observer reads
the call's record, no deadline applies and no watch took the call (its telemetry): then the
primary's first failure is carried on in the same frame, without the walk's generators and,
unless a later failure hands the call over to the walk, without a record.

The decisions are the engine's own, asked as the walk asks them: with a retry policy,
``Retry.wait_after`` (what ``Engine.on_failure`` asks through ``Retry.delay``) decides the
second attempt, and ``Engine.moved_on`` what comes after no retry; with none, the engine's
decision follows from its configuration alone (fallback 0, or the end), and reasons are
``reason_of``'s. A failure after that, or a fallback the driver would not call inline,
hands the call to the walk (``Engine.walk(..., resumed=True)``) with a record of what was
made so far (``prodwrap._ending.so_far``); a cancel or an interrupt ends it at the finish
point as the walk would (``prodwrap._ending.broken``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from prodwrap import _ending
from prodwrap._finish import log as _finish_log
from prodwrap._stats import MASK
from prodwrap._target import ASYNC, CONSTANT, SYNC, reason_of
from prodwrap.errors import ProdwrapError
from prodwrap.policies.retry import Retry

if TYPE_CHECKING:
    from prodwrap._engine import Engine

# Lines of the template (see prodwrap._compiled: "#?FLAG " keeps a line only when FLAG is set).
FAILED = """\
#?FAIL         if w is None:  # the failure path compiled: an untimed call, no stage around its attempts
#?FAIL             # The failure's reason (reason_of's common case inline).
#?FAIL             reason = "exception" if not isinstance(failure, ProdwrapError) else reason_of(failure)
#?FAIL_RETRY             now = clocks.clock.monotonic()
#?FAIL_RETRY             started = now - (perf_counter() - start)
#?FAIL_RETRY             attempts = 1
#?FAIL_RETRY             wait = again = None
#?FAIL_RETRY             try:  # (what escapes the policy, a wait or the attempt: the call ends at the finish point)
#?FAIL_RETRY                 # The retry policy decides, as Retry.delay asks it in the walk (no retry budget here).
#?FAIL_RETRY                 wait = retry_wait(1, failure, now, NAME, started, 0.0, None, reason, value, masking)
#?FAIL_RETRY                 if wait is not None:  # the second attempt, as the walk asks for it and the driver makes it
#?FAIL_RETRY                     if wait > 0:
#?FAIL_RETRY                         {W}clocks.clock.{SLEEP}(wait)
#?FAIL_RETRY                         now = clocks.clock.monotonic()
#?FAIL_RETRY                     attempts = 2
#?FAIL_RETRY                     try:
#?FAIL_RETRY                         out = {W}(fn(value, *args, **kwargs) if args or kwargs else fn(value))
#?FAIL_RETRY_SYNC                         if type(out) is COROUTINE:
#?FAIL_RETRY_SYNC                             raise returned_coroutine(NAME, "primary", out)
#?FAIL_RETRY_OUTPUT                         out = validate_output(out)
#?FAIL_RETRY                     except Exception as exc:
#?FAIL_RETRY                         again = exc
#?FAIL_RETRY             except BaseException as exc:  # cancelled, interrupted, or a fault of the policy's
#?FAIL_RETRY                 slept = 0.0 if wait is None else wait
#?FAIL_RETRY                 rec = so_far(engine, start, value, failure, reason, started, attempts, slept)
#?FAIL_RETRY                 broken(engine, rec, exc)
#?FAIL_RETRY                 raise
#?FAIL_RETRY             if wait is None:  # no retry: the walk moves on (the next fallback, or the end)
#?FAIL_RETRY                 rec = so_far(engine, start, value, failure, reason, started)
#?FAIL_RETRY                 step = moved_on(rec, failure)
#?FAIL_RETRY                 steps = resume(rec, value, None, None, now, resumed=True, decided=step)
#?FAIL_RETRY                 try:  # (the failures' tracebacks hold this frame: one that kept them would be a cycle)
#?FAIL_RETRY                     return {W}drive(engine, rec, steps, args, kwargs)
#?FAIL_RETRY                 finally:
#?FAIL_RETRY                     failure = rec = steps = None
#?FAIL_RETRY             if again is not None:  # the walk goes on from there
#?FAIL_RETRY                 rec = so_far(engine, start, value, failure, reason, started, 2, wait)
#?FAIL_RETRY                 rec.began = now
#?FAIL_RETRY                 now = clocks.clock.monotonic()
#?FAIL_RETRY                 steps = resume(rec, value, None, again, now, resumed=True)
#?FAIL_RETRY                 try:  # (as above)
#?FAIL_RETRY                     return {W}drive(engine, rec, steps, args, kwargs)
#?FAIL_RETRY                 finally:
#?FAIL_RETRY                     failure = again = rec = steps = None
#?FAIL_NEXT             # The engine's decision with no retry policy: fallback 0.
#?FAIL_NEXT             fell = None
#?FAIL_NEXT             try:
#?FAIL_CALL                 out = {W}(fallback0(value, *args, **kwargs) if args or kwargs else fallback0(value))
#?FAIL_CONSTANT                 out = fallback0()  # a fresh copy of its value
#?FAIL_CALL_SYNC                 if type(out) is COROUTINE:
#?FAIL_CALL_SYNC                     raise returned_coroutine(NAME, FALLBACK0, out)
#?FAIL_OUTPUT                 out = validate_output(out)
#?FAIL_NEXT             except Exception as exc:
#?FAIL_NEXT                 fell = exc
#?FAIL_NEXT             except BaseException as exc:  # cancelled or interrupted: it ends at the finish point
#?FAIL_NEXT                 broken(engine, so_far(engine, start, value, failure, reason, phase=0), exc)
#?FAIL_NEXT                 raise
#?FAIL_NEXT             if fell is not None:  # the walk goes on from there: the next fallback, or the end
#?FAIL_NEXT                 now = clocks.clock.monotonic()
#?FAIL_NEXT                 rec = so_far(engine, start, value, failure, reason, now - (perf_counter() - start), phase=0)
#?FAIL_NEXT                 steps = resume(rec, value, None, fell, now, resumed=True)
#?FAIL_NEXT                 try:  # (as above)
#?FAIL_NEXT                     return {W}drive(engine, rec, steps, args, kwargs)
#?FAIL_NEXT                 finally:
#?FAIL_NEXT                     failure = fell = rec = steps = None
#?FAIL             # The finish point's work when no observer reads the record (StatsRecorder.record):
#?FAIL             ring[next(seq) & MASK] = perf_counter() - start  # (first: see prodwrap._stats)
#?FAIL_ENDED             next(ends_get(ENDED) or ends_new(ENDED))  # (outcome, served_by), but a primary's "ok"
#?FAIL             next(failures_get(reason) or failures_new(reason))
#?FAIL_NEXT             if info(INFO):
#?FAIL_NEXT                 told(FALLBACK0, (reason,))
#?FAIL_RAISE             try:  # the engine's decision with no retry and no fallback: the user's own exception
#?FAIL_RAISE                 raise failure
#?FAIL_RAISE             finally:  # (its traceback holds this frame: a frame that held it too would be a cycle)
#?FAIL_RAISE                 failure = None
#?FAIL_SERVED             failure = None  # (its traceback holds this frame: no cycle is left for the GC to find)
#?FAIL_SERVED             return out
"""


def failing(engine: Engine, fast: Any, is_async: bool, ns: dict[str, Any]) -> dict[str, bool]:
    """The flags of the compiled failure path: what a call whose first attempt failed does
    inline when no stage is around its attempts, no observer reads its record and no
    deadline applies (else it hands over to the walk). With a retry policy, the policy
    decides (``Retry.wait_after``) and a second attempt is made inline; with none, the
    engine's decision follows from its configuration alone: the first fallback (inline when
    the driver would call it inline: a sync one, sync; an async one, awaited; a
    ``pw.Constant``; else the walk calls it), or the end."""
    finisher = engine.finisher
    plain = (
        not engine.timed
        and not engine.unwatched
        and engine.spend is None
        and not fast.admit
        and not fast.hooked
        and not finisher.observe
        and not finisher.keepers
        and not finisher.recorders
    )
    first = engine.fallbacks[0] if engine.fallbacks else None
    inline = first is not None and first.kind in (CONSTANT, ASYNC if is_async else SYNC)
    # (a Retry whose delay() is its own is asked through the walk, as it asks)
    retry = plain and engine.retry is not None and type(engine.retry).delay is Retry.delay
    nxt = plain and engine.retry is None and inline
    stop = plain and engine.retry is None and first is None
    stats = engine.stats
    ns.update(
        primary=engine.primary,
        retry_wait=None if engine.retry is None else engine.retry.wait_after,
        masking=engine.masking,
        moved_on=engine.moved_on,
        resume=engine.walk,
        broken=_ending.broken,
        so_far=_ending.so_far,
        reason_of=reason_of,
        ring=stats.ring,
        seq=stats.seq,
        MASK=MASK,
        ends_get=stats._ends.get,
        ends_new=stats._ends.new,
        ProdwrapError=ProdwrapError,
        failures_get=stats._failures.get,
        failures_new=stats._failures.new,
        info=_finish_log.isEnabledFor,
        INFO=logging.INFO,
        told=finisher.told,
    )
    if first is not None:
        ns.update(fallback0=first.fn, FALLBACK0=first.name)
    ns["ENDED"] = ("fallback", first.name) if nxt else ("error", "primary")  # type: ignore[union-attr]
    return {
        "FAIL": retry or nxt or stop,
        "FAIL_RETRY": retry,
        "FAIL_RETRY_SYNC": retry and not is_async,
        "FAIL_RETRY_OUTPUT": retry and fast.validate_output is not None,
        "FAIL_NEXT": nxt,
        "FAIL_CALL": nxt and first.kind is not CONSTANT,  # type: ignore[union-attr]
        "FAIL_CONSTANT": nxt and first.kind is CONSTANT,  # type: ignore[union-attr]
        "FAIL_CALL_SYNC": nxt and first.kind is SYNC,  # type: ignore[union-attr]
        "FAIL_OUTPUT": nxt and first.validated and engine.validate_output is not None,  # type: ignore[union-attr]
        "FAIL_RAISE": stop,
        "FAIL_ENDED": nxt or stop,
        "FAIL_SERVED": retry or nxt,
    }
