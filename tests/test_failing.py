"""The compiled failure path (prodwrap/_failing.py): a call whose first attempt failed, carried
on inline when no stage is around its attempts, ends exactly as the walk would end it."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import random
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import prodwrap as pw
from prodwrap.testing import FakeClock, no_sleep

COMPILED = "the failure path compiled"  # the comment heading the branch in the compiled source


class Late(Exception):
    """A failure that asks for a wait (``retry_after``)."""

    retry_after = 0.5


def _raise(kind: str) -> Any:
    if kind == "conn":
        raise ConnectionError("down")
    if kind == "value":
        raise ValueError("a bug")
    if kind == "late":
        raise Late("busy")
    if kind == "interrupt":
        raise KeyboardInterrupt
    raise AssertionError(kind)


class Script:
    """A predict (or a sync fallback) that does, call by call, what its script says, and keeps
    the calls it was given."""

    def __init__(self, steps: list[str], value: Any = 1.0) -> None:
        self.steps, self.value, self.calls = list(steps), value, []  # type: list[str], Any, list[Any]

    def step(self, x: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self.calls.append((x, args, kwargs))
        kind = self.steps.pop(0) if self.steps else "ok"
        if kind == "ok":
            return self.value
        if kind == "bad":
            return "not a number"
        return _raise(kind)

    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        return self.step(x, args, kwargs)


class AScript(Script):
    async def __call__(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        return self.step(x, args, kwargs)


def _fallbacks(kinds: list[str], is_async: bool) -> list[Any]:
    made: list[Any] = []
    for i, kind in enumerate(kinds):
        if kind == "constant":
            made.append(pw.Constant(0.25))
        elif kind == "model":
            made.append(pw.ProductionModel(Script([], 0.125), name=f"fb_model{i}"))
        else:  # "ok" or a failure kind: a scripted fallback
            script = (AScript if is_async else Script)([kind], 0.5 + i)
            script.__name__ = f"fb{i}"  # type: ignore[attr-defined]
            made.append(script)
    return made


Build = Callable[[], tuple[pw.ProductionModel[Any, Any, Any], Script, list[Any]]]


def _builder(steps: list[str], fallbacks: list[str], retry: Any, output: bool, is_async: bool = False) -> Build:
    def build() -> tuple[pw.ProductionModel[Any, Any, Any], Script, list[Any]]:
        primary = (AScript if is_async else Script)(steps)
        fbs = _fallbacks(fallbacks, is_async)
        model = pw.ProductionModel(
            primary,
            name="m",
            retry=retry,
            fallback=fbs or None,
            output=float if output else None,
            telemetry=False,
        )
        return model, primary, fbs

    return build


def _ended(call: Callable[[], Any]) -> Any:
    try:
        return ("served", call())
    except BaseException as exc:  # (an interrupt too: both paths must raise the same)
        return ("raised", type(exc).__name__, str(exc))


def _run(build: Build, detailed: bool, is_async: bool, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """One call on a fresh model, through the compiled path (``model(x)``) or the walk
    (``predict_detailed``); what it served or raised, its stats, the calls and the sleeps."""
    model, primary, fbs = build()
    random.seed(0)  # (a jittered wait draws the same on both paths)
    with no_sleep(FakeClock()) as clock:
        if is_async:

            async def call() -> Any:
                if detailed:
                    return (await model.apredict_detailed(7, *args, **kwargs)).value
                return await model.apredict(7, *args, **kwargs)

            ended = _ended(lambda: asyncio.run(call()))
        else:
            ended = _ended(
                lambda: model.predict_detailed(7, *args, **kwargs).value if detailed else model(7, *args, **kwargs)
            )
    s = model.stats()
    calls = [primary.calls] + [fb.calls for fb in fbs if isinstance(fb, Script)]
    compiled = COMPILED in (model._engine.run_async if is_async else model._engine.run_sync).__source__
    return compiled, (ended, s.calls, dict(s.outcomes), dict(s.served_by), dict(s.failures), calls, clock.sleeps)


RETRIES = st.sampled_from(
    [None, 1, 2, 3, pw.Retry(attempts=3, on=(ConnectionError, Late), wait=pw.backoff(initial=0.1, jitter=False))]
)
STEPS = st.lists(st.sampled_from(["conn", "value", "late", "bad", "ok"]), min_size=1, max_size=4).map(
    lambda steps: ["conn", *steps]  # the first attempt fails: the failure path is taken
)
FALLBACKS = st.lists(st.sampled_from(["ok", "conn", "value", "bad", "constant"]), max_size=3)


@settings(max_examples=300, deadline=None)
@given(steps=STEPS, fallbacks=FALLBACKS, retry=RETRIES, output=st.booleans(), passed=st.booleans())
def test_the_compiled_failure_path_ends_every_call_as_the_walk_does(
    steps: list[str], fallbacks: list[str], retry: Any, output: bool, passed: bool
) -> None:
    build = _builder(steps, fallbacks, retry, output)
    args, kwargs = ((3,), {"k": 1}) if passed else ((), {})
    compiled, fast = _run(build, detailed=False, is_async=False, args=args, kwargs=kwargs)
    _, walked = _run(build, detailed=True, is_async=False, args=args, kwargs=kwargs)
    assert compiled  # (no stage, no observer: the compiled failure path served model(x))
    assert fast == walked


@settings(max_examples=150, deadline=None)
@given(steps=STEPS, fallbacks=FALLBACKS, retry=RETRIES, output=st.booleans())
def test_the_async_compiled_failure_path_ends_every_call_as_the_walk_does(
    steps: list[str], fallbacks: list[str], retry: Any, output: bool
) -> None:
    build = _builder(steps, fallbacks, retry, output, is_async=True)
    compiled, fast = _run(build, detailed=False, is_async=True, args=(), kwargs={})
    _, walked = _run(build, detailed=True, is_async=True, args=(), kwargs={})
    assert compiled
    assert fast == walked


@pytest.mark.parametrize(
    ("steps", "fallbacks", "retry"),
    [
        (["conn", "interrupt"], [], 2),  # interrupted in the inline second attempt
        (["conn"], ["interrupt"], None),  # interrupted in the inline first fallback
        (["conn", "conn", "interrupt"], [], 3),  # in the walk, after the hand-over
        (["conn"], ["conn", "interrupt"], None),
        (["conn"], ["model"], None),  # a fallback the driver does not call inline: the walk's
        (["value"], ["model"], 2),
    ],
)
def test_interrupts_and_hand_overs_end_as_the_walk_ends_them(
    steps: list[str], fallbacks: list[str], retry: Any
) -> None:
    build = _builder(steps, fallbacks, retry, output=False)
    _, fast = _run(build, detailed=False, is_async=False, args=(), kwargs={})
    _, walked = _run(build, detailed=True, is_async=False, args=(), kwargs={})
    assert fast == walked
    if "interrupt" in steps + fallbacks:
        assert fast[0][:2] == ("raised", "KeyboardInterrupt") and fast[4].get("interrupted") == 1


def test_a_cancel_during_the_inline_retry_wait_ends_the_call_as_cancelled() -> None:
    started = asyncio.Event()

    class Clock(FakeClock):
        async def asleep(self, seconds: float) -> None:
            started.set()
            await asyncio.Event().wait()  # until cancelled

    model = pw.ProductionModel(AScript(["conn"]), retry=pw.Retry(attempts=2, wait=pw.backoff(initial=1.0)))
    assert COMPILED in model._engine.run_async.__source__

    async def main() -> None:
        task = asyncio.ensure_future(model.apredict(1))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with no_sleep(Clock()):
        asyncio.run(main())
    s = model.stats()
    assert s.outcomes == {"error": 1} and s.failures == {"exception": 1, "cancelled": 1}


@pytest.mark.parametrize(
    "options",
    [
        {"timeout": 1.0},
        {"circuit": pw.CircuitBreaker()},
        {"bulkhead": pw.Bulkhead(4)},
        {"retry": pw.Retry(attempts=2, budget=pw.RetryBudget())},
        {"observers": [lambda p: None]},
        {"cost": pw.PerCall("0.01")},
        {"drift": None, "cache": pw.Cache(maxsize=4)},
    ],
    ids="+".join,
)
def test_a_stage_or_an_observer_leaves_the_failure_to_the_walk(options: dict[str, Any]) -> None:
    model = pw.ProductionModel(Script(["conn"]), fallback=lambda x: 0.5, telemetry=False, **options)
    assert COMPILED not in model._engine.run_sync.__source__
    assert model(1) in (0.5, 1.0)  # (a retry may serve it)


def test_a_plain_model_compiles_its_failure_path_and_counts_what_the_walk_counts() -> None:
    model = pw.ProductionModel(Script(["conn", "value"]), fallback=pw.Constant(0.0), name="m")
    assert COMPILED in model._engine.run_sync.__source__
    assert model(1) == 0.0 and model(1) == 0.0 and model(1) == 1.0
    s = model.stats()
    assert (s.calls, dict(s.outcomes)) == (3, {"fallback": 2, "ok": 1})
    assert dict(s.served_by) == {"constant": 2, "primary": 1}
    assert s.failures == {"exception": 2} and s.latency_p50 is not None


def test_a_call_the_inline_fallback_served_is_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    def backup(x: Any) -> float:
        return 0.5

    model = pw.ProductionModel(Script(["conn"]), fallback=backup, name="m", version="v1")
    with caplog.at_level(logging.INFO, logger="prodwrap"):
        assert model(1) == 0.5
    (line,) = [r for r in caplog.records if r.name == "prodwrap.model"]
    assert line.getMessage() == "m: served by fallback backup after exception"
    assert (line.outcome, line.reason, line.version) == ("fallback", "exception", "v1")  # type: ignore[attr-defined]


def test_the_users_own_exception_is_raised_unchanged_with_no_retry_and_no_fallback() -> None:
    error = ValueError("mine")

    def predict(x: Any) -> float:
        raise error

    model = pw.ProductionModel(predict)
    assert COMPILED in model._engine.run_sync.__source__
    with pytest.raises(ValueError) as caught:
        model(1)
    assert caught.value is error
    s = model.stats()
    assert dict(s.outcomes) == {"error": 1} and s.failures == {"exception": 1} and s.served_by == {}


def test_a_retry_waits_on_the_clock_as_the_policy_says(clock: FakeClock) -> None:
    model = pw.ProductionModel(
        Script(["conn", "late"]),
        retry=pw.Retry(attempts=3, on=(ConnectionError, Late), wait=pw.backoff(initial=0.2, jitter=False)),
    )
    assert model(1) == 1.0
    assert clock.sleeps == [0.2, 0.5]  # the second wait is the exception's retry_after (0.5 > 0.4)
    assert model.stats().failures == {"exception": 2}


def _interrupting(exc: BaseException) -> bool:
    raise KeyboardInterrupt


def _wait_interrupting(state: Any) -> float:
    raise KeyboardInterrupt


class OddHeader(ConnectionError):
    @property
    def retry_after(self) -> float:  # (a header that does not parse)
        raise RuntimeError("bad Retry-After header")


def _ends(model: pw.ProductionModel[Any, Any, Any], call: Callable[[], Any]) -> Any:
    with no_sleep(FakeClock()), pytest.raises(BaseException) as caught:
        call()
    s = model.stats()
    return type(caught.value).__name__, s.calls, dict(s.outcomes), dict(s.failures)


@pytest.mark.parametrize(
    ("retry", "error"),
    [
        (lambda: pw.Retry(attempts=3, on=_interrupting), ConnectionError),
        (lambda: pw.Retry(attempts=3, wait=_wait_interrupting), ConnectionError),
        (lambda: pw.Retry(attempts=3, on=ConnectionError), OddHeader),
    ],
    ids=["on-raises-KeyboardInterrupt", "wait-raises-KeyboardInterrupt", "retry_after-property-raises"],
)
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_what_escapes_the_retry_decision_still_ends_the_call_at_the_finish_point(
    retry: Callable[[], pw.Retry], error: type[Exception], is_async: bool
) -> None:
    if is_async:

        async def apredict(x: Any) -> float:
            raise error("down")

        fast = pw.ProductionModel(apredict, retry=retry())
        walked = pw.ProductionModel(apredict, retry=retry())
        assert COMPILED in fast._engine.run_async.__source__
        ended = _ends(fast, lambda: asyncio.run(fast.apredict(1)))
        assert ended == _ends(walked, lambda: asyncio.run(walked.apredict_detailed(1)))
    else:

        def predict(x: Any) -> float:
            raise error("down")

        fast, walked = pw.ProductionModel(predict, retry=retry()), pw.ProductionModel(predict, retry=retry())
        assert COMPILED in fast._engine.run_sync.__source__
        ended = _ends(fast, lambda: fast(1))
        assert ended == _ends(walked, lambda: walked.predict_detailed(1))
    assert ended[1:3] == (1, {"error": 1})  # counted, as an error


def test_a_backoff_subclass_is_asked_for_its_own_waits(clock: FakeClock) -> None:
    class Fixed(pw.Backoff):
        def plain(self, attempt: int) -> float:
            return 0.123

    model = pw.ProductionModel(Script(["conn"]), retry=pw.Retry(attempts=2, wait=Fixed()))
    assert model(1) == 1.0 and clock.sleeps == [0.123]


def test_a_retry_subclass_with_its_own_delay_is_asked_on_every_path(clock: FakeClock) -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Never(pw.Retry):
        def delay(self, rec: Any, exc: BaseException, now: float, model: str) -> float | None:
            return None

    def build() -> pw.ProductionModel[Any, Any, Any]:
        return pw.ProductionModel(Script(["conn"]), retry=Never(attempts=3), fallback=lambda x: 0.5)

    assert build().predict_detailed(1).value == 0.5 and build()(1) == 0.5 and clock.sleeps == []


class _Noted(Exception):
    """An exception that notes itself (weakly) where it is made: the test sees when it is freed."""

    made: list[Any] = []

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        _Noted.made.append(weakref.ref(self))


@pytest.mark.parametrize(
    "options",
    [
        {"fallback": lambda x: 0.0},
        {"fallback": pw.Constant(0.0)},
        {"retry": pw.Retry(attempts=2, on=(_Noted,), wait=pw.backoff(initial=0.0))},
        {},  # raised to the caller
    ],
    ids=["fallback", "constant", "retry", "raised"],
)
def test_a_failure_the_compiled_path_ended_is_freed_at_once_not_left_in_a_cycle_for_the_gc(
    options: dict[str, Any],
) -> None:
    first = iter([True])

    def predict(x: float) -> float:
        if next(first, False):
            raise _Noted("down")  # (not kept in a local: this frame is in its traceback)
        return x

    model = pw.ProductionModel(predict, **options)
    assert COMPILED in model._engine.call.__source__
    _Noted.made.clear()
    gc.collect()
    gc.disable()  # a failure kept by a frame its own traceback holds would wait for the GC
    try:
        try:
            model(1.0)
        except _Noted:
            assert not options
        assert len(_Noted.made) == 1 and _Noted.made[0]() is None
    finally:
        gc.enable()


_NO_WAIT = pw.backoff(initial=0.0, jitter=False)


@pytest.mark.parametrize(
    "options",
    [
        {"retry": pw.Retry(attempts=3, on=(_Noted,), wait=_NO_WAIT), "fallback": pw.Constant(0.0)},
        {"retry": pw.Retry(attempts=3, on=(_Noted,), wait=_NO_WAIT)},  # every attempt failed: raised
        {"timeout": 5.0, "fallback": pw.Constant(0.0)},  # (the attempt runs on a worker thread)
        {"observers": [lambda p: None], "fallback": pw.Constant(0.0)},
        {"fallback": [lambda x: _fallback_down(), pw.Constant(0.0)]},  # a failed fallback, then the next
    ],
    ids=["retries-then-fallback", "retries-raised", "timed-fallback", "observed-fallback", "fallbacks"],
)
def test_failures_the_walk_ended_are_freed_at_once_not_left_in_a_cycle_for_the_gc(options: dict[str, Any]) -> None:
    """The general path (the walk and its driver, the worker of a timed attempt) lets go of
    every failure a call met when the call ends: no frame in a failure's traceback, nor one
    of their callers', keeps the record that keeps the failures."""

    def predict(x: float) -> float:
        raise _Noted("down")

    model = pw.ProductionModel(predict, **options)
    _Noted.made.clear()
    gc.collect()
    gc.disable()
    try:
        try:
            model(1.0)
        except Exception as exc:
            assert "fallback" not in options and isinstance(exc, _Noted)
        assert _Noted.made and all(ref() is None for ref in _Noted.made)
    finally:
        gc.enable()
    model.close()


def _fallback_down() -> float:
    raise _Noted("the fallback is down too")


@pytest.mark.parametrize("on_invalid", ["fallback", "raise"])
def test_an_invalid_input_s_error_is_freed_at_once(on_invalid: str) -> None:
    model = pw.ProductionModel(lambda x: x, input=int, on_invalid=on_invalid, fallback=pw.Constant(0))
    gc.collect()
    gc.disable()
    try:
        if on_invalid == "fallback":
            p = model.predict_detailed("not a number")
            ref = weakref.ref(p.errors[0])
            del p
        else:
            try:
                model("not a number")
            except pw.InputValidationError as exc:
                ref = weakref.ref(exc)
        assert ref() is None
    finally:
        gc.enable()
