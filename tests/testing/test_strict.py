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


def _call_on_a_thread(model: Any, x: int) -> tuple[BaseException | None, int]:
    """``model(x)`` on a thread of its own: what it raised (None) and the thread's ident."""
    box: list[Any] = [None, None]

    def call() -> None:
        box[1] = threading.get_ident()
        try:
            model(x)
        except BaseException as exc:
            box[0] = exc

    thread = threading.Thread(target=call)
    thread.start()
    thread.join()
    return box[0], box[1]


def test_the_switch_is_process_wide_a_call_on_another_thread_raises_in_its_own_caller() -> None:
    ran_on: list[int] = []

    def cand(x: int) -> int:
        ran_on.append(threading.get_ident())
        return x * 3

    model = pw.ProductionModel(double, shadow=pw.Shadow(cand, name="v2"))
    with strict_shadows():
        error, ident = _call_on_a_thread(model, 1)  # a thread that never entered the block
    assert isinstance(error, pw.ShadowMismatchError) and ran_on == [ident]  # inline, on that thread
    error, _ = _call_on_a_thread(model, 1)  # the block has ended: background again
    assert error is None
    assert model.shadow_report(wait=10.0).n == 2
    model.close()


def test_a_block_open_on_another_thread_makes_this_thread_s_calls_strict_until_it_ends() -> None:
    opened, done, closed = threading.Event(), threading.Event(), threading.Event()
    model = pw.ProductionModel(double, shadow=pw.Shadow(lambda x: x * 3, name="v2"))

    def hold_a_block() -> None:
        with strict_shadows():
            opened.set()
            done.wait(10.0)
        closed.set()

    holder = threading.Thread(target=hold_a_block)
    holder.start()
    assert opened.wait(10.0)
    with pytest.raises(pw.ShadowMismatchError):
        model(1)
    with strict_shadows():  # blocks nest across threads: on until the last one ends
        done.set()
        assert closed.wait(10.0)
        with pytest.raises(pw.ShadowMismatchError):
            model(1)
    holder.join()
    assert model(1) == 2  # every block has ended
    model.close()


def test_a_run_handed_to_the_background_before_the_block_raises_nothing() -> None:
    started, release = threading.Event(), threading.Event()

    def slow(x: int) -> int:
        started.set()
        release.wait(10.0)
        return x * 3

    model = pw.ProductionModel(double, shadow=pw.Shadow(slow, name="v2"))
    assert model(1) == 2
    assert started.wait(10.0)
    with strict_shadows():
        release.set()
        report = model.shadow_report(wait=10.0)  # it ends in the background, inside the block
    assert (report.n, report.mismatched, report.pending) == (1, 1, 0)
    model.close()


@pytest.mark.parametrize("padding", [0, 185])  # (185: the secret straddles the message's cut at 200 characters)
def test_a_mismatch_message_masks_the_inputs_secret_an_output_echoes(padding: int) -> None:
    import pydantic

    class Login(pydantic.BaseModel):
        user: str
        password: pydantic.SecretStr

    def echo(login: Login) -> str:  # (no output= spec: nothing marks the output sensitive)
        return "x" * padding + f"token for {login.password.get_secret_value()}"

    model = pw.ProductionModel(echo, input=Login, shadow=pw.Shadow(lambda login: "other"))
    with strict_shadows(), pytest.raises(pw.ShadowMismatchError) as caught:
        model({"user": "ada", "password": "hunter2-SECRET"})
    assert "token for *" in str(caught.value) and "hunter" not in str(caught.value)
