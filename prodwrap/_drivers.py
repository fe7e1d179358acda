"""The two drivers: the only code that calls, blocks, sleeps or awaits.

They take an engine (never the model), run its compiled success path (``engine.run_sync``
or ``engine.run_async``: the success-path hooks compiled into one function by
``prodwrap._compiled``) when no caller's deadline applies, and otherwise carry out the
engine's walk: each ``CALL`` and ``SLEEP`` it yields, until the call is decided. The sync and
the async driver differ only in how an attempt is invoked (inline or on a worker thread under
a deadline, versus awaited under a time limit with ``asyncio.timeout``'s semantics) and how
they sleep. Every call ends at the one finish point. They name no capability: stages plug in
through the engine.
"""

from __future__ import annotations

from time import perf_counter
from typing import TYPE_CHECKING, Any

from prodwrap import _clock
from prodwrap._context import DEADLINE, bind, outer_deadline
from prodwrap._ending import broken, end, limit_of, within
from prodwrap._engine import ASYNC, CALL, MODEL, RACE, SLEEP, SYNC, Act, Engine
from prodwrap._expiry import arm, disarm, timed_out
from prodwrap._race import race_async, race_sync
from prodwrap._record import CallRecord
from prodwrap._workers import POOL

if TYPE_CHECKING:
    from collections.abc import Generator


_clocks = _clock.current


# -- sync ----------------------------------------------------------------------------------


def predict_sync(engine: Engine, x: Any, args: tuple[Any, ...], kwargs: dict[str, Any], w: Any = None) -> Any:
    """One call, sync: the engine's compiled success path (``engine.run_sync``, built by
    ``prodwrap._compiled`` from the success-path hooks), which validates, calls (inline, or
    on a worker under the model's timeout), validates the output and finishes: no record
    unless an observer reads one, no exception, no lock. The first failure hands over to the
    walk (:func:`drive_sync`), which goes on from there; a call with a caller's deadline, or
    on an engine without a success path, goes to :func:`general_sync`.
    ``w``: the handle a stage's ``watch`` opened for the call (see :func:`watched_sync`).
    """
    return engine.run_sync(x, args, kwargs, w)


def general_sync(engine: Engine, start: float, x: Any, args: tuple[Any, ...], kwargs: dict[str, Any], w: Any) -> Any:
    """A call the success path does not take: the walk, from the input on."""
    if engine.is_async:
        return predict_async(engine, x, args, kwargs)
    if w is None and engine.watch is not None:
        w = engine.watch()
        if w is not None:  # the engine's watch took the call
            return watched_sync(engine, w, x, args, kwargs)
    return walk_sync(engine, CallRecord(start, w), x, args, kwargs)


def watched_sync(engine: Engine, w: Any, x: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A watched call: the handle enters first, exits last; the call runs as any other."""
    w.enter()
    try:
        out = predict_sync(engine, x, args, kwargs, w)
    except BaseException as exc:
        w.exit(exc)
        raise
    w.exit(None)
    return out


async def watched_async(engine: Engine, w: Any, x: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """:func:`watched_sync`, awaited."""
    w.enter()
    try:
        out = await predict_async(engine, x, args, kwargs, w)
    except BaseException as exc:
        w.exit(exc)
        raise
    w.exit(None)
    return out


def walk_sync(
    engine: Engine, rec: CallRecord, x: Any, args: tuple[Any, ...], kwargs: dict[str, Any], validated: bool = False
) -> Any:
    steps = engine.walk(rec, x, outer_deadline(), None, _clocks.clock.monotonic(), validated=validated)
    try:
        return drive_sync(engine, rec, steps, args, kwargs)
    finally:  # (as in drive_sync: an error raised to the caller holds this frame)
        del rec, steps


def drive_sync(
    engine: Engine,
    rec: CallRecord,
    steps: Generator[Act, None, None],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Carry out the walk on this thread: call, sleep, then finish."""
    clock = _clocks.clock
    rec.args, rec.kwargs = args, kwargs  # (the walk starts at the loop's first step)
    try:
        for act in steps:
            if act is CALL:
                target = rec.target
                try:
                    if target.kind is SYNC and rec.seconds is None and rec.limit is None:  # inline, untimed
                        fn = target.fn
                        rec.result = fn(rec.input, *args, **kwargs) if args or kwargs else fn(rec.input)
                    else:
                        rec.result = _call_sync(engine, rec, args, kwargs)
                    rec.ok = True
                except Exception as exc:
                    rec.ok, rec.result = False, exc
            elif act is SLEEP:
                if rec.wait > 0:
                    clock.sleep(rec.wait)
            elif act is RACE:
                try:
                    race_sync(engine, rec, args, kwargs)
                except Exception as exc:  # (no worker thread for its first attempt: a failed attempt)
                    rec.ok, rec.result = False, exc
            else:  # WAIT for a permit, never past the call's deadline
                rec.ok = rec.gate.acquire(within(rec, clock.monotonic()))
            rec.now = clock.monotonic()
    except BaseException as exc:
        steps.close()  # an attempt in progress gives back what its stages took
        broken(engine, rec, exc)
        raise
    try:
        return end(engine, rec)
    finally:  # (the failures' tracebacks hold this frame: one that kept the record would be a cycle)
        del rec, steps


def _call_sync(engine: Engine, rec: CallRecord, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """An attempt that is not a plain untimed call: another model, or under a limit."""
    target = rec.target
    if target.kind is MODEL:
        return target.fn.predict(rec.input, *args, **kwargs)  # clamps itself to our deadline
    now = _clocks.clock.monotonic()
    limit = limit_of(rec, now)
    if limit <= 0:
        raise engine.timeout_error(rec, 0.0)
    done, out = POOL.run(rec.seconds, rec.limit, target.fn, (rec.input, *args), kwargs, engine.late, rec)
    if not done:
        engine.stats.abandoned()
        rec.late = out  # the job, running on until its predict returns
        raise engine.timeout_error(rec, limit)
    return out


# -- async ---------------------------------------------------------------------------------


def predict_async(engine: Engine, x: Any, args: tuple[Any, ...], kwargs: dict[str, Any], w: Any = None) -> Any:
    """:func:`predict_sync`, awaited: the coroutine of ``engine.run_async`` (an async
    predict's success path; a sync predict runs on a worker thread through the walk)."""
    return engine.run_async(x, args, kwargs, w)


async def general_async(
    engine: Engine, start: float | None, x: Any, args: tuple[Any, ...], kwargs: dict[str, Any], w: Any
) -> Any:
    """:func:`general_sync`, awaited (``start`` None: the call starts now, as it is awaited)."""
    if start is None:
        start = perf_counter()
    if w is None and engine.watch is not None:
        w = engine.watch()
        if w is not None:  # the engine's watch took the call
            return await watched_async(engine, w, x, args, kwargs)
    return await walk_async(engine, CallRecord(start, w), x, args, kwargs)


async def walk_async(
    engine: Engine, rec: CallRecord, x: Any, args: tuple[Any, ...], kwargs: dict[str, Any], validated: bool = False
) -> Any:
    steps = engine.walk(rec, x, outer_deadline(), None, _clocks.clock.monotonic(), validated=validated)
    try:
        return await drive_async(engine, rec, steps, args, kwargs)
    finally:  # (as in drive_sync)
        del rec, steps


async def drive_async(
    engine: Engine,
    rec: CallRecord,
    steps: Generator[Act, None, None],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """The same walk as :func:`drive_sync`, awaiting attempts instead of blocking."""
    clock = _clocks.clock
    rec.args, rec.kwargs = args, kwargs
    try:
        for act in steps:
            if act is CALL:
                try:
                    rec.result = await _call_async(engine, rec, args, kwargs)
                    rec.ok = True
                except Exception as exc:
                    rec.ok, rec.result = False, exc
            elif act is SLEEP:
                if rec.wait > 0:
                    await clock.asleep(rec.wait)
            elif act is RACE:
                try:
                    await race_async(engine, rec, args, kwargs)
                except Exception as exc:
                    rec.ok, rec.result = False, exc
            else:  # WAIT for a permit, never past the call's deadline
                rec.ok = await rec.gate.aacquire(within(rec, clock.monotonic()))
            rec.now = clock.monotonic()
    except BaseException as exc:
        steps.close()  # an attempt in progress gives back what its stages took
        broken(engine, rec, exc)
        raise
    try:
        return end(engine, rec)
    finally:  # (the failures' tracebacks hold this frame: one that kept the record would be a cycle)
        del rec, steps


async def _call_async(
    engine: Engine, rec: CallRecord, args: tuple[Any, ...], kwargs: dict[str, Any], holder: Any = None
) -> Any:
    """An attempt, awaited (``holder``: what gets the job of a sync attempt given up on,
    the record unless a race gives each attempt its own)."""
    target = rec.target
    if target.kind is MODEL:
        return await target.fn.apredict(rec.input, *args, **kwargs)
    fn = target.fn
    if target.kind is not ASYNC:  # a sync predict awaited: on a worker, the loop never blocked
        # (its own limit counts from when it starts on its worker; time queued counts toward
        # the call's deadline only)
        allowed = None
        if rec.seconds is not None or rec.limit is not None:
            allowed = limit_of(rec, _clocks.clock.monotonic())
            if allowed <= 0:
                raise engine.timeout_error(rec, 0.0)
        holder = rec if holder is None else holder
        done, out = await POOL.arun(rec.seconds, rec.limit, fn, (rec.input, *args), kwargs, engine.late, holder)
        if not done:
            engine.stats.abandoned()
            holder.late = out  # the job, running on until its predict returns
            raise engine.timeout_error(rec, allowed or 0.0)
        return out
    if rec.seconds is None and rec.limit is None:
        return await fn(rec.input, *args, **kwargs)
    now = _clocks.clock.monotonic()
    limit = limit_of(rec, now)
    if limit <= 0:
        raise engine.timeout_error(rec, 0.0)
    out = await _timed(fn, rec.input, args, kwargs, limit, now + limit)
    if out is _TIMED_OUT:
        engine.stats.abandoned()
        raise engine.timeout_error(rec, limit)
    return out


async def _timed(fn: Any, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any], seconds: float, at: float) -> Any:
    """Await ``fn(value, ...)`` under a time limit of ``seconds`` (``prodwrap._expiry``:
    ``asyncio.timeout``'s semantics), its deadline bound while it runs; ``_TIMED_OUT`` when
    the limit cancelled it (the predict's own TimeoutError passes). The compiled success path
    (``prodwrap._compiled``) inlines the same steps."""
    expiry = arm(seconds)
    binding = bind(at)
    token = DEADLINE.set(binding)
    try:
        out = await (fn(value, *args, **kwargs) if args or kwargs else fn(value))
    except BaseException as exc:
        if timed_out(expiry, exc):
            return _TIMED_OUT
        raise  # the predict's own error (its own TimeoutError too), or a cancel not ours
    finally:
        DEADLINE.reset(token)
        binding.end()
    disarm(expiry)
    return out


_TIMED_OUT: Any = object()  # the attempt ran out of time
