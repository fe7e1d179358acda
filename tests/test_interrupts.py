"""Something not an Exception out of the predict (KeyboardInterrupt, SystemExit, a custom
BaseException) ends the call at the finish point: every stage settles, nothing leaks."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import prodwrap as pw


class Abort(BaseException):
    """What a test harness or a framework might raise through user code."""


def once(error: type[BaseException]) -> Any:
    """A predict that raises ``error`` on its first call, then doubles."""
    state = {"armed": True}

    def predict(x: int, *args: Any, **kwargs: Any) -> Any:
        if state["armed"]:
            state["armed"] = False
            raise error()
        return (x * 2, args, kwargs) if args or kwargs else x * 2

    return predict


def aonce(error: type[BaseException]) -> Any:
    sync = once(error)

    async def predict(x: int, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        return sync(x, *args, **kwargs)

    return predict


async def run(model: pw.ProductionModel[Any, Any, Any], entry: str, x: Any, **kwargs: Any) -> Any:
    result = getattr(model, entry)(x, **kwargs)
    return await result if asyncio.iscoroutine(result) else result


ENTRIES = [
    ("sync", "predict"),
    ("sync", "predict_detailed"),
    ("async", "apredict"),
    ("async", "apredict_detailed"),
]


@pytest.mark.parametrize(("kind", "entry"), ENTRIES)
@pytest.mark.parametrize("error", [KeyboardInterrupt, Abort])
async def test_an_interrupted_call_ends_its_cache_flight(kind: str, entry: str, error: type[BaseException]) -> None:
    fn = once(error) if kind == "sync" else aonce(error)
    model = pw.ProductionModel(fn, cache=pw.Cache())
    with pytest.raises(error):
        await run(model, entry, 21)
    core = model._engine.stages[0].core  # type: ignore[attr-defined]
    assert (core.flights, core.pending, core.undone) == ({}, {}, {})  # nothing left behind
    value = await run(model, entry, 21)  # would wait for ever on a flight nobody ends
    assert (value.value if isinstance(value, pw.Prediction) else value) == 42
    stats = model.stats()
    assert stats.failures.get("interrupted") == 1 and stats.outcomes["error"] == 1


@pytest.mark.parametrize(("kind", "entry"), ENTRIES)
async def test_an_interrupted_call_gives_back_its_bulkhead_and_rate_limit_permits(kind: str, entry: str) -> None:
    fn = once(KeyboardInterrupt) if kind == "sync" else aonce(KeyboardInterrupt)
    model = pw.ProductionModel(
        fn, bulkhead=pw.Bulkhead(1), rate_limit=pw.RateLimit(calls=1, per=3600.0), fallback=pw.Constant(-1)
    )
    with pytest.raises(KeyboardInterrupt):
        await run(model, entry, 1)
    assert model.stats().bulkhead.in_use == 0
    assert model.stats().rate_limit.permits == 0  # given back: the next call may take it
    value = await run(model, entry, 2)
    assert (value.value if isinstance(value, pw.Prediction) else value) == 4


async def test_a_claim_left_behind_is_never_taken_over_by_a_call_with_other_arguments() -> None:
    fn = aonce(Abort)
    model = pw.ProductionModel(fn, cache=pw.Cache())
    with pytest.raises(Abort):
        await model.apredict("hi")
    assert await model.apredict("hi", temperature=0.9) == ("hihi", (), {"temperature": 0.9})
    p = await model.apredict_detailed("hi")  # computed for "hi" alone, never the other's answer
    assert (p.outcome, p.value) == ("ok", "hihi")


def test_a_sync_interrupt_on_another_thread_leaves_the_key_usable() -> None:
    fn = once(KeyboardInterrupt)
    model = pw.ProductionModel(fn, cache=pw.Cache())
    caught: list[BaseException] = []

    def first() -> None:
        try:
            model(5)
        except BaseException as exc:
            caught.append(exc)

    thread = threading.Thread(target=first)
    thread.start()
    thread.join(5)
    assert [type(e) for e in caught] == [KeyboardInterrupt]
    assert model(5) == 10


def test_ctrl_c_while_waiting_on_a_timed_attempt_leaves_the_permit_with_its_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prodwrap import _jobs
    from prodwrap._workers import POOL

    real = threading.Lock

    class Interrupting:
        """A job's ``done`` lock whose timed wait on this thread raises KeyboardInterrupt."""

        def __init__(self) -> None:
            self.lock = real()

        def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
            if timeout != -1 and threading.current_thread() is threading.main_thread():
                raise KeyboardInterrupt
            return bool(self.lock.acquire(blocking, timeout))

        def release(self) -> None:
            self.lock.release()

    release = threading.Event()

    def stuck(x: int) -> int:
        release.wait(10)
        return x

    model = pw.ProductionModel(stuck, timeout=pw.Timeout(attempt=5.0), bulkhead=pw.Bulkhead(1))
    monkeypatch.setattr(_jobs, "_allocate_lock", Interrupting)
    with pytest.raises(KeyboardInterrupt):
        model.predict_detailed(1)  # the walk: its attempt runs on a worker under the timeout
    monkeypatch.undo()
    assert model.stats().bulkhead.in_use == 1  # the thread still runs: it keeps the permit
    busy = POOL.counts().busy
    release.set()
    for _ in range(2000):
        if model.stats().bulkhead.in_use == 0 and POOL.counts().busy < busy:
            break
        threading.Event().wait(0.001)
    assert model.stats().bulkhead.in_use == 0
    assert model.stats().failures.get("interrupted") == 1
