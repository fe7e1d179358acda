"""The two drivers: the only code that calls, blocks, sleeps or awaits.

They take an engine (never the model), run its compiled success path (``engine.sync_fast``
or ``engine.async_fast``) when no caller's deadline applies, and otherwise carry out the
engine's walk: each ``CALL`` and ``SLEEP`` it yields, until the call is decided. The sync and
the async driver differ only in how an attempt is invoked (inline or on a worker thread under
a deadline, versus awaited under ``asyncio.timeout``) and how they sleep. Every call ends at
the engine's one finish point, whatever happens on the way. They name no capability: stages
plug in through the engine.
"""

from __future__ import annotations

import sys
from time import perf_counter
from typing import TYPE_CHECKING, Any

from prodwrap import _clock
from prodwrap._context import DEADLINE, LIVE, Binding, outer_deadline
from prodwrap._engine import ASYNC, CALL, MODEL, SYNC, Act, Engine, FastPath
from prodwrap._record import CallRecord
from prodwrap._workers import POOL

if TYPE_CHECKING:
    from collections.abc import Generator

    from prodwrap._record import Prediction

_clocks = _clock.current


# -- shared by both drivers (off the success path's hot lines) --------------------------------


def _admitted(fast: FastPath, value: Any) -> bool:
    """Whether every ``fast_admit`` hook lets the call stay on the success path (a hook
    that raises sends it to the walk, which asks the stage again)."""
    try:
        return all(admit(value) for admit in fast.admit)
    except Exception:
        return False


def _handover(
    engine: Engine, start: float, value: Any, failure: Exception, began: float | None
) -> tuple[CallRecord, Generator[Act, None, None]]:
    """The first attempt of the success path failed: the walk goes on from there."""
    rec = CallRecord(start)
    now = _clocks.clock.monotonic()
    if began is None:  # the clock was not read before the attempt: date it by real time
        began = now - (perf_counter() - start)
    return rec, engine.walk(rec, value, None, failure, now, began)


def _finish_fast(fast: FastPath, start: float, value: Any, out: Any, began: float | None) -> None:
    """The success path's end when a stage has a hook there: the attempt seam's
    ``fast_attempt`` hooks, then the finish point (with a record if an observer reads one)."""
    if fast.attempted:
        took = _clocks.clock.monotonic() - began  # type: ignore[operator]
        for attempted in fast.attempted:
            try:
                attempted(took)
            except Exception as exc:  # a stage's fault never costs the caller its output
                fast.finisher.failed(attempted, exc)
    if fast.record:
        rec = CallRecord(start)
        rec.attempts, rec.input, rec.target = 1, value, fast.primary
        rec.ok, rec.result = True, out
        fast.finish(rec, value, out, start)
    else:
        fast.finish(None, value, out, start)


def _end(engine: Engine, rec: CallRecord) -> Any:
    """The walk is over: finish the call, then return its output or raise its error."""
    result = rec.result
    if rec.ok:
        engine.finisher.finish(rec, None, result, rec.start)
        return result
    rec.outcome = "error"
    engine.finisher.finish(rec, None, None, rec.start)
    raise result  # the user's own exception unchanged, or ours


def _broken(engine: Engine, rec: CallRecord, exc: BaseException) -> None:
    """The walk itself raised (a validator raising something else than a validation error,
    a stage's hook): the call still ends at the finish point, as an error, before ``exc``
    reaches the caller."""
    asyncio = sys.modules.get("asyncio")
    if isinstance(exc, Exception):
        reason = "exception"
    elif asyncio is not None and isinstance(exc, asyncio.CancelledError):
        reason = "cancelled"  # the caller cancelled the call (asyncio)
    else:
        return  # KeyboardInterrupt and the like end no call
    rec.fail(exc, reason)
    rec.outcome = "error"
    engine.finisher.finish(rec, None, None, rec.start)


def _limit(rec: CallRecord, now: float) -> float:
    """Seconds the current attempt may take from ``now``: the nearer of its two limits."""
    limit = rec.seconds if rec.seconds is not None else rec.limit - now  # type: ignore[operator]
    if rec.limit is not None:
        limit = min(limit, rec.limit - now)
    return limit


# -- sync ----------------------------------------------------------------------------------


def predict_sync(engine: Engine, x: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """One call, sync: the compiled success path inline, else the general walk.

    The success path validates, calls (inline, or on a worker under the model's timeout),
    validates the output and finishes: no record unless an observer reads one, no
    exception, no lock. The first failure hands over to the walk, which goes on from there.
    """
    start = perf_counter()
    fast = engine.sync_fast
    if fast is None or (LIVE and outer_deadline() is not None):
        if engine.is_async:
            return predict_async(engine, x, args, kwargs)
        return _run_sync(engine, CallRecord(start), x, args, kwargs)
    value = x
    if fast.validate is not None:
        try:
            value = fast.validate(x)
        except Exception:
            value = _REFUSED
        if value is _REFUSED:  # outside the except block: nothing chains onto what follows
            return _run_sync(engine, CallRecord(start), x, args, kwargs)
    if fast.admit and not _admitted(fast, value):
        return _run_sync(engine, CallRecord(start), value, args, kwargs, validated=True)
    fn = fast.fn
    began = None
    failure: Exception | None = None
    try:
        if fast.seconds is None:
            if fast.attempted:
                began = _clocks.clock.monotonic()
            out = fn(value, *args, **kwargs) if args or kwargs else fn(value)
        else:  # the first attempt on a worker, until the nearer of the two timeouts
            began = _clocks.clock.monotonic()
            done, out = POOL.run(fast.seconds, None, fn, (value, *args), kwargs, engine.stats.late_error)
            if not done:
                engine.stats.abandoned()
                failure = engine.timeout_error(None, fast.seconds)
        if fast.validate_output is not None and failure is None:
            out = fast.validate_output(out)
    except Exception as exc:
        failure = exc
    if failure is not None:
        return _drive_sync(engine, *_handover(engine, start, value, failure, began), args, kwargs)
    if fast.hooked:
        _finish_fast(fast, start, value, out, began)
    else:
        fast.finish(None, value, out, start)
    return out


def detailed_sync(engine: Engine, x: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """One call, sync, returning its ``Prediction`` (the general walk always)."""
    if engine.is_async:
        return detailed_async(engine, x, args, kwargs)
    rec = CallRecord(perf_counter())
    rec.detailed = True
    _run_sync(engine, rec, x, args, kwargs)
    return rec.built


def _run_sync(
    engine: Engine, rec: CallRecord, x: Any, args: tuple[Any, ...], kwargs: dict[str, Any], validated: bool = False
) -> Any:
    steps = engine.walk(rec, x, outer_deadline(), None, _clocks.clock.monotonic(), validated=validated)
    return _drive_sync(engine, rec, steps, args, kwargs)


def _drive_sync(
    engine: Engine,
    rec: CallRecord,
    steps: Generator[Act, None, None],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Carry out the walk on this thread: call, sleep, then finish."""
    clock = _clocks.clock
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
            elif rec.wait > 0:  # SLEEP
                clock.sleep(rec.wait)
            rec.now = clock.monotonic()
    except BaseException as exc:
        _broken(engine, rec, exc)
        raise
    return _end(engine, rec)


def _call_sync(engine: Engine, rec: CallRecord, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """An attempt that is not a plain untimed call: another model, or under a limit."""
    target = rec.target
    if target.kind is MODEL:
        return target.fn.predict(rec.input, *args, **kwargs)  # clamps itself to our deadline
    now = _clocks.clock.monotonic()
    limit = _limit(rec, now)
    if limit <= 0:
        raise engine.timeout_error(rec, 0.0)
    done, out = POOL.run(rec.seconds, rec.limit, target.fn, (rec.input, *args), kwargs, engine.stats.late_error)
    if not done:
        engine.stats.abandoned()
        raise engine.timeout_error(rec, limit)
    return out


# -- async ---------------------------------------------------------------------------------


async def predict_async(engine: Engine, x: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """:func:`predict_sync`'s success path, awaited (an async predict; a sync one runs on a
    worker thread through the general walk)."""
    start = perf_counter()
    fast = engine.async_fast
    if fast is None or (LIVE and outer_deadline() is not None):
        return await _run_async(engine, CallRecord(start), x, args, kwargs)
    value = x
    if fast.validate is not None:
        try:
            value = fast.validate(x)
        except Exception:
            value = _REFUSED
        if value is _REFUSED:
            return await _run_async(engine, CallRecord(start), x, args, kwargs)
    if fast.admit and not _admitted(fast, value):
        return await _run_async(engine, CallRecord(start), value, args, kwargs, validated=True)
    fn = fast.fn
    began = None
    failure: Exception | None = None
    try:
        if fast.attempted or fast.seconds is not None:
            began = _clocks.clock.monotonic()
        if fast.seconds is None:
            out = await (fn(value, *args, **kwargs) if args or kwargs else fn(value))
        else:  # _timed, inlined: an extra coroutine here adds a tenth to a timed call
            seconds = fast.seconds
            binding = Binding(began + seconds)  # type: ignore[operator]
            token = DEADLINE.set(binding)
            limit = _aio().timeout(seconds)
            try:
                async with limit:
                    out = await (fn(value, *args, **kwargs) if args or kwargs else fn(value))
            except TimeoutError:
                if not limit.expired():
                    raise  # the predict's own TimeoutError
                engine.stats.abandoned()
                failure = engine.timeout_error(None, seconds)
            finally:
                DEADLINE.reset(token)
                binding.end()
        if fast.validate_output is not None and failure is None:
            out = fast.validate_output(out)
    except Exception as exc:
        failure = exc
    except BaseException as exc:
        rec = CallRecord(start)
        rec.input = value
        _broken(engine, rec, exc)
        raise
    if failure is not None:
        return await _drive_async(engine, *_handover(engine, start, value, failure, began), args, kwargs)
    if fast.hooked:
        _finish_fast(fast, start, value, out, began)
    else:
        fast.finish(None, value, out, start)
    return out


async def detailed_async(engine: Engine, x: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Prediction:
    rec = CallRecord(perf_counter())
    rec.detailed = True
    await _run_async(engine, rec, x, args, kwargs)
    return rec.built  # type: ignore[return-value]


async def _run_async(
    engine: Engine, rec: CallRecord, x: Any, args: tuple[Any, ...], kwargs: dict[str, Any], validated: bool = False
) -> Any:
    steps = engine.walk(rec, x, outer_deadline(), None, _clocks.clock.monotonic(), validated=validated)
    return await _drive_async(engine, rec, steps, args, kwargs)


async def _drive_async(
    engine: Engine,
    rec: CallRecord,
    steps: Generator[Act, None, None],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """The same walk as :func:`_drive_sync`, awaiting attempts instead of blocking."""
    clock = _clocks.clock
    try:
        for act in steps:
            if act is CALL:
                try:
                    rec.result = await _call_async(engine, rec, args, kwargs)
                    rec.ok = True
                except Exception as exc:
                    rec.ok, rec.result = False, exc
            elif rec.wait > 0:  # SLEEP
                await clock.asleep(rec.wait)
            rec.now = clock.monotonic()
    except BaseException as exc:
        _broken(engine, rec, exc)
        raise
    return _end(engine, rec)


async def _call_async(engine: Engine, rec: CallRecord, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    target = rec.target
    if target.kind is MODEL:
        return await target.fn.apredict(rec.input, *args, **kwargs)
    fn = target.fn
    if target.kind is not ASYNC:  # a sync predict awaited: on a worker, the loop never blocked
        # (its own limit counts from when it starts on its worker; time queued counts toward
        # the call's deadline only)
        allowed = None
        if rec.seconds is not None or rec.limit is not None:
            allowed = _limit(rec, _clocks.clock.monotonic())
            if allowed <= 0:
                raise engine.timeout_error(rec, 0.0)
        done, out = await POOL.arun(rec.seconds, rec.limit, fn, (rec.input, *args), kwargs, engine.stats.late_error)
        if not done:
            engine.stats.abandoned()
            raise engine.timeout_error(rec, allowed or 0.0)
        return out
    if rec.seconds is None and rec.limit is None:
        return await fn(rec.input, *args, **kwargs)
    now = _clocks.clock.monotonic()
    limit = _limit(rec, now)
    if limit <= 0:
        raise engine.timeout_error(rec, 0.0)
    out = await _timed(fn, rec.input, args, kwargs, limit, now + limit)
    if out is _TIMED_OUT:
        engine.stats.abandoned()
        raise engine.timeout_error(rec, limit)
    return out


async def _timed(fn: Any, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any], seconds: float, at: float) -> Any:
    """Await ``fn(value, ...)`` under ``asyncio.timeout(seconds)``, its deadline bound while it
    runs; ``_TIMED_OUT`` when the timeout cancelled it (the predict's own TimeoutError passes).
    :func:`predict_async` inlines the same steps on the success path."""
    binding = Binding(at)
    token = DEADLINE.set(binding)
    limit = _aio().timeout(seconds)
    try:
        async with limit:
            return await (fn(value, *args, **kwargs) if args or kwargs else fn(value))
    except TimeoutError:
        if not limit.expired():
            raise  # the predict's own TimeoutError
        return _TIMED_OUT
    finally:
        DEADLINE.reset(token)
        binding.end()


def _aio() -> Any:
    """The asyncio module: imported by then (an event loop runs), never by ``import prodwrap``."""
    return sys.modules["asyncio"]


_REFUSED: Any = object()  # the fast validator refused the input
_TIMED_OUT: Any = object()  # the attempt ran out of time
