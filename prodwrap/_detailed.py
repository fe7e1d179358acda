"""``predict_detailed`` and ``apredict_detailed``: a call through the general walk that
returns its ``Prediction`` (traced like any other call when a provider is installed)."""

from __future__ import annotations

from time import perf_counter
from typing import TYPE_CHECKING, Any

from prodwrap._drivers import walk_async, walk_sync
from prodwrap._record import CallRecord

if TYPE_CHECKING:
    from prodwrap._engine import Engine
    from prodwrap._record import Prediction


def detailed_sync(engine: Engine, x: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """One call, sync, returning its ``Prediction`` (the general walk always)."""
    if engine.is_async:
        return detailed_async(engine, x, args, kwargs)
    w = None if engine.watch is None else engine.watch()
    rec = CallRecord(perf_counter(), w)
    rec.detailed = True
    if w is None:
        walk_sync(engine, rec, x, args, kwargs)
        return rec.built
    w.enter()
    try:
        walk_sync(engine, rec, x, args, kwargs)
    except BaseException as exc:
        w.exit(exc)
        raise
    w.exit(None)
    return rec.built


async def detailed_async(engine: Engine, x: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Prediction:
    w = None if engine.watch is None else engine.watch()
    rec = CallRecord(perf_counter(), w)
    rec.detailed = True
    if w is None:
        await walk_async(engine, rec, x, args, kwargs)
        return rec.built  # type: ignore[return-value]
    w.enter()
    try:
        await walk_async(engine, rec, x, args, kwargs)
    except BaseException as exc:
        w.exit(exc)
        raise
    w.exit(None)
    return rec.built  # type: ignore[return-value]
