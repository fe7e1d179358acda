"""The two drivers: the only code that calls, blocks, sleeps or awaits.

``run_sync`` and ``run_async`` walk the same pipeline and ask the same engine every
question; they differ only in how an attempt is invoked (inline or on a worker thread with
a deadline, versus awaited under ``asyncio.timeout``) and how they sleep.
"""

from __future__ import annotations

from time import perf_counter
from typing import TYPE_CHECKING, Any

from prodwrap import _clock
from prodwrap._context import DEADLINE, Binding, outer_deadline
from prodwrap._engine import ASYNC, CALL, DONE, FAIL, MODEL, SLEEP, Engine, Target
from prodwrap._record import MISSING, CallRecord
from prodwrap._stats import MASK
from prodwrap._workers import POOL
from prodwrap.errors import InputValidationError

if TYPE_CHECKING:
    from prodwrap._model import ProductionModel

_clocks = _clock.current


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
    from a caller runs the compiled success path (``Engine.fast``): validate, call (inline,
    or on a worker thread under the model's timeout), validate the output, one latency
    sample. Anything else (a caller's deadline, an async model, an invalid input, a failed
    attempt) goes to the general walk, which takes over where this left off.
    """
    start = perf_counter()
    fast = model._sync_fast
    if fast is None or outer_deadline() is not None:
        if model._engine.is_async:
            return model._apredict(x, *args, **kwargs)
        return run_sync(model._engine, CallRecord(start), x, args, kwargs)
    validate, fn, validate_output, ring, seq, drift, limit = fast
    value = x
    if validate is not None:
        try:
            value = validate(x)
        except Exception:
            # validation is pure: the general walk validates again (every input form, every
            # error collected) and decides what follows
            return run_sync(model._engine, CallRecord(start), x, args, kwargs)
    try:
        if limit is None:
            out = fn(value, *args, **kwargs) if args or kwargs else fn(value)
        else:  # the first attempt on a worker, until the nearer of the two timeouts
            began = _clocks.clock.monotonic()
            done, out = POOL.call(limit, began + limit, fn, value, *args, **kwargs)
            if not done:
                model._engine.stats.abandoned()
                raise model._engine.first_timeout(limit)
        if validate_output is not None:
            out = validate_output(out)
    except Exception as exc:
        engine = model._engine
        rec = CallRecord(start)
        rec.attempts = 1
        if limit is not None:
            engine.begin(rec, began, None)
        return _walk_sync(engine, rec, engine.primary, value, args, kwargs, None, exc)
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
    if fast is None or outer_deadline() is not None:
        return await run_async(model._engine, CallRecord(start), x, args, kwargs)
    validate, fn, validate_output, ring, seq, drift, _ = fast
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


def _prepare(engine: Engine, rec: CallRecord, x: Any) -> tuple[Target, Any, float | None]:
    """Validate the input and fix the call's deadline: what to try first, on what, under what."""
    target, value = engine.primary, x
    if engine.validate_input is not None:
        try:
            value = engine.validate_input(x)
        except InputValidationError as error:
            step = engine.on_invalid_input(rec, error)
            if step[0] == FAIL:
                _finish_failed(engine, rec)
                raise
            target = step[1]
    outer = outer_deadline()
    if engine.timed or outer is not None:
        engine.begin(rec, _clocks.clock.monotonic(), outer)
    return target, value, outer


def run_sync(engine: Engine, rec: CallRecord, x: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Drive one call to its end on the calling thread; return the output or raise."""
    target, value, outer = _prepare(engine, rec, x)
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
    """Carry out the engine's walk on this thread: call, sleep, finish."""
    clock = _clocks.clock
    steps = engine.walk(rec, target, outer, failure, clock.monotonic(), perf_counter() - rec.start)
    kind, arg, deadline = next(steps)
    while kind != DONE:
        if kind == CALL:
            try:
                sent: tuple[bool, Any] = (True, _call_sync(engine, rec, arg, deadline, value, args, kwargs))
            except Exception as exc:
                sent = (False, exc)
        elif kind == SLEEP:
            if arg > 0:
                clock.sleep(arg)
            sent = (True, None)
        else:
            _finish_failed(engine, rec)
            raise arg  # the user's own exception unchanged, or FallbackExhausted
        kind, arg, deadline = steps.send((*sent, clock.monotonic(), perf_counter() - rec.start))
    _finish(engine, rec, arg, value)
    return arg


def _call_sync(
    engine: Engine,
    rec: CallRecord,
    target: Target,
    deadline: float | None,
    value: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    if target.kind == MODEL:
        return target.fn.predict(value, *args, **kwargs)  # clamps itself to our deadline
    return _call_with_deadline(engine, rec, target, deadline, value, args, kwargs)


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
    done, out = POOL.call(seconds, deadline, target.fn, value, *args, **kwargs)
    if not done:
        engine.stats.abandoned()
        raise engine.timeout_error(rec, seconds)
    return out


async def run_async(engine: Engine, rec: CallRecord, x: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The same walk as :func:`run_sync`, awaiting attempts instead of blocking."""
    target, value, outer = _prepare(engine, rec, x)
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
    """Carry out the engine's walk on the event loop: await, sleep, finish."""
    clock = _clocks.clock
    steps = engine.walk(rec, target, outer, failure, clock.monotonic(), perf_counter() - rec.start)
    kind, arg, deadline = next(steps)
    while kind != DONE:
        if kind == CALL:
            try:
                if arg.kind == MODEL:
                    out = await arg.fn.apredict(value, *args, **kwargs)
                else:
                    out = await _await_with_deadline(engine, rec, arg, deadline, value, args, kwargs)
                sent: tuple[bool, Any] = (True, out)
            except Exception as exc:
                sent = (False, exc)
        elif kind == SLEEP:
            if arg > 0:
                await clock.asleep(arg)
            sent = (True, None)
        else:
            _finish_failed(engine, rec)
            raise arg
        kind, arg, deadline = steps.send((*sent, clock.monotonic(), perf_counter() - rec.start))
    _finish(engine, rec, arg, value)
    return arg


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
        return await POOL.submit_async(asyncio.get_running_loop(), None, fn, value, *args, **kwargs)
    seconds = deadline - _clocks.clock.monotonic()
    if seconds <= 0:
        raise engine.timeout_error(rec, 0.0)
    token = binding = None
    if target.kind == ASYNC:
        binding = Binding(deadline)
        token = DEADLINE.set(binding)
    limit = asyncio.timeout(seconds)
    try:
        async with limit:
            if token is not None:
                return await fn(value, *args, **kwargs)
            loop = asyncio.get_running_loop()
            return await POOL.submit_async(loop, deadline, fn, value, *args, **kwargs)
    except TimeoutError:
        if not limit.expired():
            raise  # the predict's own TimeoutError
        engine.stats.abandoned()
        raise engine.timeout_error(rec, seconds) from None
    finally:
        if token is not None:
            DEADLINE.reset(token)
            binding.end()  # type: ignore[union-attr]
