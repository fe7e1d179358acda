"""The async attempt's time limit keeps ``asyncio.timeout``'s semantics (prodwrap._expiry).

The limit's timer is fired by hand (the test catches the :class:`Expiry` the loop was given):
no real time passes, and each case is exact about which cancel came from where.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

import prodwrap as pw
from prodwrap._expiry import Expiry, arm, disarm


@pytest.fixture
async def armed(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[tuple[Expiry, asyncio.TimerHandle]]]:
    """Every limit armed on the running loop, with its timer (fire one by calling it)."""
    loop = asyncio.get_running_loop()
    seen: list[tuple[Expiry, asyncio.TimerHandle]] = []
    real = loop.call_at

    def call_at(when: float, callback: Any, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        handle = real(when, callback, *args, **kwargs)
        if isinstance(callback, Expiry):
            seen.append((callback, handle))
        return handle

    monkeypatch.setattr(loop, "call_at", call_at)
    yield seen


def _models(predict: Any) -> list[pw.ProductionModel[Any, Any, Any]]:
    """The compiled success path (first attempt) and the general path (a retried attempt)."""
    calls = [0]

    async def second_try(x: int) -> Any:
        calls[0] += 1
        if calls[0] % 2:
            raise ConnectionError("first attempt")
        return await predict(x)

    retry = pw.Retry(attempts=2, on=(ConnectionError,), wait=pw.backoff(initial=0.0))
    return [pw.ProductionModel(predict, timeout=30), pw.ProductionModel(second_try, timeout=30, retry=retry)]


@pytest.mark.parametrize("path", [0, 1], ids=["success path", "general path"])
async def test_a_fired_limit_is_a_prediction_timeout_and_its_cancel_is_taken_back(
    armed: list[tuple[Expiry, asyncio.TimerHandle]], path: int
) -> None:
    async def predict(x: int) -> int:
        armed[-1][0]()  # the timer fires now
        await asyncio.sleep(0)  # where the cancel lands
        return x

    model = _models(predict)[path]
    with pytest.raises(pw.PredictionTimeout, match="timed out after 30 s"):
        await model(1)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # an enclosing timeout counts right
    assert model.stats().abandoned == 1
    async with asyncio.timeout(5):  # the task is usable as before
        await asyncio.sleep(0)


@pytest.mark.parametrize("path", [0, 1], ids=["success path", "general path"])
async def test_a_predict_that_swallows_the_cancel_is_served(
    armed: list[tuple[Expiry, asyncio.TimerHandle]], path: int
) -> None:
    async def predict(x: int) -> int:
        armed[-1][0]()
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            return -x  # as under asyncio.timeout: no error when the block ends without one
        raise AssertionError("the cancel did not land")

    model = _models(predict)[path]
    assert await model(1) == -1
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


@pytest.mark.parametrize("path", [0, 1], ids=["success path", "general path"])
async def test_a_cancel_from_elsewhere_is_never_taken_for_the_timeout(
    armed: list[tuple[Expiry, asyncio.TimerHandle]], path: int
) -> None:
    async def predict(x: int) -> int:
        armed[-1][0]()  # the timer fires, and the caller cancels too
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(0)
        return x

    model = _models(predict)[path]
    with pytest.raises(asyncio.CancelledError):
        await model(1)
    task = asyncio.current_task()
    assert task is not None and task.uncancel() == 0  # the caller's own cancel stays asked for
    assert model.stats().outcomes["error"] == 1 and model.stats().failures.get("cancelled") == 1


async def test_a_cancel_alone_propagates_and_the_timer_is_cancelled(
    armed: list[tuple[Expiry, asyncio.TimerHandle]],
) -> None:
    started = asyncio.Event()

    async def predict(x: int) -> int:
        started.set()
        await asyncio.Event().wait()
        return x

    model = pw.ProductionModel(predict, timeout=30)
    call = asyncio.ensure_future(model(1))
    await started.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    expiry, handle = armed[-1]
    assert handle.cancelled() and not expiry.fired


async def test_the_predicts_own_errors_pass_and_every_timer_is_cancelled(
    armed: list[tuple[Expiry, asyncio.TimerHandle]],
) -> None:
    async def predict(x: int) -> int:
        if x:
            raise TimeoutError("upstream said so")
        return x

    model = pw.ProductionModel(predict, timeout=30)
    assert await model(0) == 0
    with pytest.raises(TimeoutError, match="upstream") as info:
        await model(1)
    assert not isinstance(info.value, pw.PredictionTimeout)
    assert len(armed) == 2 and all(handle.cancelled() for _, handle in armed)
    assert not any(expiry.fired for expiry, _ in armed)


async def test_arm_and_disarm() -> None:
    expiry = arm(30.0)
    assert not disarm(expiry) and expiry.handle.cancelled()
    expiry = arm(30.0)
    expiry()  # fired: the task's cancel is asked for (it lands at the next await) ...
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 1
    with pytest.raises(asyncio.CancelledError):
        await asyncio.sleep(0)
    # ... and taken back by disarm
    assert disarm(expiry) and task.cancelling() == 0


def test_arm_outside_a_running_loop() -> None:
    with pytest.raises(RuntimeError):
        arm(1.0)


@pytest.mark.parametrize("path", [0, 1], ids=["success path", "general path"])
async def test_a_timeout_error_after_the_limit_fired_is_the_timeout(
    armed: list[tuple[Expiry, asyncio.TimerHandle]], path: int
) -> None:
    """A client that turns the cancel into a TimeoutError: the attempt timed out (as
    ``asyncio.timeout(...).expired()`` says)."""

    async def predict(x: int) -> int:
        armed[-1][0]()
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            raise TimeoutError("backend call aborted") from None
        return x

    model = _models(predict)[path]
    with pytest.raises(pw.PredictionTimeout):
        await model(1)
    assert model.stats().abandoned == 1 and model.stats().failures.get("timeout") == 1
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_a_limit_already_run_out_cancels_before_the_next_step() -> None:
    expiry = arm(0.0)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.sleep(0)  # (a timer due now would run after this step)
    assert disarm(expiry)
