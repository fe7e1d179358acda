"""The two drivers: the only code that calls, blocks, sleeps or awaits.

``run_sync`` and ``run_async`` walk the same pipeline and ask the same engine every
question; they differ only in how an attempt is invoked (inline or on a worker thread with
a deadline, versus awaited under ``asyncio.timeout``) and how they sleep.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from prodwrap import _clock
from prodwrap._context import DEADLINE, LIVE
from prodwrap._engine import ASYNC, CONSTANT, FAIL, MODEL, NEXT, RETRY, Engine, Target
from prodwrap._record import MISSING, CallRecord
from prodwrap._stats import MASK
from prodwrap._workers import POOL
from prodwrap.errors import InputValidationError

if TYPE_CHECKING:
    from prodwrap._model import ProductionModel

_clocks = _clock.current


def _with_deadline(deadline: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    # Runs inside the attempt's own copy of the context: pw.deadline() sees this deadline.
    LIVE.enter()
    try:
        DEADLINE.set(deadline)
        return fn(*args, **kwargs)
    finally:
        LIVE.exit()


def _finish(engine: Engine, rec: CallRecord, out: Any, value: Any) -> None:
    rec.value = out
    rec.latency = latency = perf_counter() - rec.start
    if rec.errors is None:
        engine.stats.ok(latency)
    else:
        engine.stats.finish(rec.outcome, rec.served_by, latency, rec.reasons)
    drift = engine.drift
    if drift is not None and (rec.reasons is None or rec.reasons[0] != "invalid_input"):
        # every valid input is observed; the output only when the primary served it
        rec.drift = drift.observe(value, out if rec.phase < 0 else MISSING)


def _finish_failed(engine: Engine, rec: CallRecord) -> None:
    rec.outcome = "error"
    rec.latency = latency = perf_counter() - rec.start
    engine.stats.finish("error", "none", latency, rec.reasons)


def predict_sync(model: ProductionModel[Any, Any], x: Any, /, *args: Any, **kwargs: Any) -> Any:
    """``ProductionModel.predict`` itself: the success path inline, with no record.

    This is the model's method (one frame, no call layers). A sync call with no deadline
    here or in a caller runs the compiled success path (``Engine.fast``): validate, call,
    validate the output, one latency sample. Anything else (a deadline, an async model, an
    invalid input, a failed attempt) goes to the general walk, which takes over where this
    left off.
    """
    start = perf_counter()
    fast = model._sync_fast
    if fast is None or (LIVE.count and DEADLINE.get() is not None):
        if model._engine.is_async:
            return model._apredict(x, *args, **kwargs)
        return run_sync(model._engine, CallRecord(start), x, args, kwargs)
    validate, fn, validate_output, ring, seq, drift = fast
    value = x
    if validate is not None:
        try:
            value = validate(x)
        except Exception:
            # validation is pure: the general walk validates again (every input form, every
            # error collected) and decides what follows
            return run_sync(model._engine, CallRecord(start), x, args, kwargs)
    try:
        out = fn(value, *args, **kwargs) if args or kwargs else fn(value)
        if validate_output is not None:
            out = validate_output(out)
    except Exception as exc:
        rec = CallRecord(start)
        rec.attempts = 1
        return _walk_sync(model._engine, rec, model._engine.primary, value, args, kwargs, None, exc)
    ring[next(seq) & MASK] = perf_counter() - start  # StatsRecorder.ok, inlined
    if drift is not None:
        drift.observe(value, out)
    return out


async def apredict(model: ProductionModel[Any, Any], x: Any, /, *args: Any, **kwargs: Any) -> Any:
    """``ProductionModel.apredict`` itself: :func:`predict_sync`'s success path, awaited.

    Taken for an async predict with no deadline; a sync predict (which runs on a worker
    thread), a deadline or a failure goes to the general walk.
    """
    start = perf_counter()
    fast = model._async_fast
    if fast is None or (LIVE.count and DEADLINE.get() is not None):
        return await run_async(model._engine, CallRecord(start), x, args, kwargs)
    validate, fn, validate_output, ring, seq, drift = fast
    value = x
    if validate is not None:
        try:
            value = validate(x)
        except Exception:
            return await run_async(model._engine, CallRecord(start), x, args, kwargs)
    try:
        out = await (fn(value, *args, **kwargs) if args or kwargs else fn(value))
        if validate_output is not None:
            out = validate_output(out)
    except Exception as exc:
        rec = CallRecord(start)
        rec.attempts = 1
        return await _walk_async(model._engine, rec, model._engine.primary, value, args, kwargs, None, exc)
    ring[next(seq) & MASK] = perf_counter() - start
    if drift is not None:
        drift.observe(value, out)
    return out


def run_sync(engine: Engine, rec: CallRecord, x: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Drive one call to its end on the calling thread; return the output or raise."""
    target = engine.primary
    value = x
    if engine.validate_input is not None:
        try:
            value = engine.validate_input(x)
        except InputValidationError as error:
            step = engine.on_invalid_input(rec, error)
            if step[0] == FAIL:
                _finish_failed(engine, rec)
                raise
            target = step[1]
    outer = DEADLINE.get()
    if engine.timed or outer is not None:
        engine.begin(rec, _clocks.clock.monotonic(), outer)
    return _walk_sync(engine, rec, target, value, args, kwargs, outer, None)


def _walk_sync(
    engine: Engine,
    rec: CallRecord,
    target: Target,
    value: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    outer: float | None,
    failure: Exception | None,
) -> Any:
    """Attempts, retries and fallbacks until a result or a final error.

    ``failure`` is an attempt of the primary that already failed (from the fast path).
    """
    clock = _clocks.clock
    timed = rec.deadline is not None or engine.attempt_timeout is not None
    while True:
        if failure is None:
            try:
                if target.kind == CONSTANT:
                    out = target.fn()
                elif target is engine.primary:
                    rec.attempts += 1
                    if timed:
                        deadline = engine.attempt_deadline(rec, clock.monotonic())
                        out = _call_with_deadline(engine, rec, target, deadline, value, args, kwargs)
                    else:
                        out = target.fn(value, *args, **kwargs)
                elif target.kind == MODEL:
                    out = target.fn.predict(value, *args, **kwargs)  # clamps itself to our deadline
                else:
                    out = _call_with_deadline(engine, rec, target, outer, value, args, kwargs)
                if target.validated and engine.validate_output is not None:
                    out = engine.validate_output(out)
            except Exception as exc:
                failure = exc
            else:
                if rec.phase >= 0:
                    engine.served(rec, target)
                _finish(engine, rec, out, value)
                return out
        kind, arg = engine.on_failure(rec, failure, clock.monotonic(), perf_counter() - rec.start)
        if kind == RETRY:
            rec.slept += arg
            if arg > 0:
                clock.sleep(arg)
        elif kind == NEXT:
            target = arg
        else:
            _finish_failed(engine, rec)
            if arg is failure:
                raise failure  # the user's own exception, unchanged
            raise arg from None
        failure = None


def _call_with_deadline(
    engine: Engine,
    rec: CallRecord,
    target: Target,
    deadline: float | None,
    value: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    if deadline is None:
        return target.fn(value, *args, **kwargs)
    seconds = deadline - _clocks.clock.monotonic()
    if seconds <= 0:
        raise engine.timeout_error(rec, 0.0)
    done, out = POOL.call(seconds, _with_deadline, deadline, target.fn, value, *args, **kwargs)
    if not done:
        engine.stats.abandoned()
        raise engine.timeout_error(rec, seconds)
    return out


async def run_async(engine: Engine, rec: CallRecord, x: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The same walk as :func:`run_sync`, awaiting attempts instead of blocking."""
    target = engine.primary
    value = x
    if engine.validate_input is not None:
        try:
            value = engine.validate_input(x)
        except InputValidationError as error:
            step = engine.on_invalid_input(rec, error)
            if step[0] == FAIL:
                _finish_failed(engine, rec)
                raise
            target = step[1]
    outer = DEADLINE.get()
    if engine.timed or outer is not None:
        engine.begin(rec, _clocks.clock.monotonic(), outer)
    return await _walk_async(engine, rec, target, value, args, kwargs, outer, None)


async def _walk_async(
    engine: Engine,
    rec: CallRecord,
    target: Target,
    value: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    outer: float | None,
    failure: Exception | None,
) -> Any:
    """:func:`_walk_sync`, awaiting: attempts, retries and fallbacks until the end."""
    clock = _clocks.clock
    timed = rec.deadline is not None or engine.attempt_timeout is not None
    while True:
        if failure is None:
            try:
                if target.kind == CONSTANT:
                    out = target.fn()
                elif target.kind == MODEL:
                    out = await target.fn.apredict(value, *args, **kwargs)
                else:
                    deadline = outer
                    if target is engine.primary:
                        rec.attempts += 1
                        if timed:
                            deadline = engine.attempt_deadline(rec, clock.monotonic())
                    out = await _await_with_deadline(engine, rec, target, deadline, value, args, kwargs)
                if target.validated and engine.validate_output is not None:
                    out = engine.validate_output(out)
            except Exception as exc:
                failure = exc
            else:
                if rec.phase >= 0:
                    engine.served(rec, target)
                _finish(engine, rec, out, value)
                return out
        kind, arg = engine.on_failure(rec, failure, clock.monotonic(), perf_counter() - rec.start)
        if kind == RETRY:
            rec.slept += arg
            if arg > 0:
                await clock.asleep(arg)
        elif kind == NEXT:
            target = arg
        else:
            _finish_failed(engine, rec)
            if arg is failure:
                raise failure  # the user's own exception, unchanged
            raise arg from None
        failure = None


async def _await_with_deadline(
    engine: Engine,
    rec: CallRecord,
    target: Target,
    deadline: float | None,
    value: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    import asyncio  # asyncio is only imported once an event loop runs (import stays light)

    fn = target.fn
    if deadline is None:
        if target.kind == ASYNC:
            return await fn(value, *args, **kwargs)
        return await POOL.submit_async(asyncio.get_running_loop(), fn, value, *args, **kwargs)
    seconds = deadline - _clocks.clock.monotonic()
    if seconds <= 0:
        raise engine.timeout_error(rec, 0.0)
    token = None
    if target.kind == ASYNC:
        LIVE.enter()
        token = DEADLINE.set(deadline)
    limit = asyncio.timeout(seconds)
    try:
        async with limit:
            if token is not None:
                return await fn(value, *args, **kwargs)
            loop = asyncio.get_running_loop()
            return await POOL.submit_async(loop, _with_deadline, deadline, fn, value, *args, **kwargs)
    except TimeoutError:
        if not limit.expired():
            raise  # the predict's own TimeoutError
        engine.stats.abandoned()
        raise engine.timeout_error(rec, seconds) from None
    finally:
        if token is not None:
            DEADLINE.reset(token)
            LIVE.exit()
