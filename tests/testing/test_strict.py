"""strict_shadows(): in tests a mismatch or a candidate error raises in the caller."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import prodwrap as pw
from prodwrap.testing import strict_shadows


def double(x: int) -> int:
    return x * 2


def test_a_mismatch_raises_in_the_caller_after_the_call_has_finished() -> None:
    kept: list[Any] = []
    model = pw.ProductionModel(double, shadow=pw.Shadow(lambda x: x * 3, name="v2"), observers=[kept.append])
    with strict_shadows():
        assert model(0) == 0  # agrees
        with pytest.raises(pw.ShadowMismatchError, match=r"shadow 'v2' disagreed: primary 2 != candidate 3") as info:
            model(1)
    assert info.value.comparison.candidate == 3
    assert isinstance(info.value, AssertionError)
    assert len(kept) == 2  # every observer ran for the failing call too
    assert model.stats().observer_errors == 0
    assert model(1) == 2  # outside the block: background, never raised
    model.close()


def test_a_candidate_error_raises_with_it_as_the_cause() -> None:
    def broken(x: int) -> int:
        raise ZeroDivisionError("candidate")

    model = pw.ProductionModel(double, shadow=pw.Shadow(broken))
    assert model._engine.fast is not None
    with strict_shadows(), pytest.raises(pw.ShadowMismatchError, match="raised ZeroDivisionError") as info:
        model(1)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    model.close()


def test_the_candidate_runs_inline_on_the_caller_s_thread() -> None:
    threads: list[int] = []
    model = pw.ProductionModel(double, shadow=pw.Shadow(lambda x: threads.append(threading.get_ident()) or x * 2))
    with strict_shadows(), strict_shadows():  # blocks nest
        model(1)
        model.predict_detailed(2)
    assert threads == [threading.get_ident()] * 2
    assert model.shadow_report().n == 2  # counted at once: nothing pending
    model.close()


def test_ignored_differences_do_not_raise() -> None:
    model = pw.ProductionModel(double, shadow=pw.Shadow(lambda x: 0, ignore=lambda x, p, c: c == 0))
    with strict_shadows():
        assert model(5) == 10
    model.close()


async def test_an_async_model_s_mismatch_raises_too() -> None:
    async def primary(x: int) -> int:
        return x

    async def cand(x: int) -> int:
        return -x

    model = pw.ProductionModel(primary, shadow=pw.Shadow(cand))
    with strict_shadows():
        assert await model(0) == 0
        with pytest.raises(pw.ShadowMismatchError):
            await model(4)
    model.close()


async def test_an_async_candidate_raising_cancelled_error_itself_raises_a_mismatch() -> None:
    import asyncio

    async def primary(x: int) -> int:
        return x

    async def cand(x: int) -> int:
        raise asyncio.CancelledError()

    model = pw.ProductionModel(primary, shadow=pw.Shadow(cand))
    with strict_shadows(), pytest.raises(pw.ShadowMismatchError, match="raised CancelledError") as info:
        await model(1)
    assert isinstance(info.value.__cause__, asyncio.CancelledError)
    report = model.shadow_report()
    assert (report.candidate_errors, report.dropped) == (1, 0)
    model.close()
