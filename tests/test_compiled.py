"""The compiled success path (prodwrap/_compiled.py): one function per engine and driver,
with the branches the configuration decides folded away and the finish inline."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
from contextvars import ContextVar
from decimal import Decimal
from functools import partial
from typing import Any

import pydantic
import pytest

import prodwrap as pw
from prodwrap._engine import Engine
from prodwrap._stage import Seam, Serve, Stage, inline_admit


class Row(pydantic.BaseModel):
    a: int


def _observer(hook: Any) -> Stage:
    class Hooked(Stage):
        name = "hooked"
        seam = Seam.OBSERVER

        def __init__(self) -> None:
            self.fast_observe = hook

    return Hooked()


def test_a_bare_engine_compiles_to_the_call_and_one_latency_sample() -> None:
    engine = Engine(fn=lambda x: x + 1, name="m")
    source = engine.run_sync.__source__
    assert "validate" not in source and "observe0" not in source and "said" not in source
    assert "POOL" not in source and "watch()" not in source
    success, failed = source.split("    if failure is not None:")  # (untimed, the success path is the else clause)
    assert "    else:  # (untimed" in success and "handover(" in failed and "return out" not in failed
    assert success.count("perf_counter()") == 2  # the call's start and its latency sample
    assert engine.run_sync(1, (), {}) == 2
    assert engine.stats.snapshot().calls == 1


def test_what_is_configured_is_what_is_compiled() -> None:
    model = pw.ProductionModel(lambda r: r.a, input=Row, cost=pw.PerCall("0.01"), timeout=1.0, telemetry=False)
    source = model._engine.run_sync.__source__
    assert "value = validate(x)" in source and "observe0(value, out)" in source
    assert "POOL.run(SECONDS" in source  # the first attempt on a worker, under the timeout
    assert model({"a": 3}) == 3
    assert model.stats().cost == Decimal("0.01")  # (the cost observer's hook ran)


def test_every_observer_hook_runs_and_a_raising_one_is_counted() -> None:
    seen: list[tuple[str, Any]] = []

    def broken(value: Any, out: Any) -> None:
        raise RuntimeError("observer bug")

    engine = Engine(
        fn=lambda x: x * 2,
        name="m",
        stages=[_observer(broken), _observer(lambda v, o: seen.append(("second", o)))],
    )
    assert "observe1(value, out)" in engine.run_sync.__source__
    assert engine.run_sync(4, (), {}) == 8
    assert seen == [("second", 8)]
    assert engine.stats.snapshot().observer_errors == 1


def test_an_error_for_the_caller_is_raised_once_every_hook_ran() -> None:
    seen: list[Any] = []

    def strict(value: Any, out: Any) -> None:
        raise pw.ShadowMismatchError("for the caller")

    engine = Engine(fn=lambda x: x, name="m", stages=[_observer(strict), _observer(lambda v, o: seen.append(o))])
    with pytest.raises(pw.ShadowMismatchError):
        engine.run_sync(5, (), {})
    assert seen == [5] and engine.stats.snapshot().observer_errors == 0


def test_done_hooks_run_inline_and_a_raising_one_is_counted() -> None:
    given_back: list[str] = []

    class Permit(Stage):
        name = "permit"
        seam = Seam.ATTEMPT

        def __init__(self, label: str, fail: bool) -> None:
            def done() -> None:
                given_back.append(label)
                if fail:
                    raise RuntimeError("stage bug")

            self.fast_done = done

    engine = Engine(fn=lambda x: x, name="m", stages=[Permit("a", True), Permit("b", False)])
    assert engine.fast is not None and engine.fast.only_done
    assert "done1()" in engine.run_sync.__source__
    assert engine.run_sync(1, (), {}) == 1
    assert given_back == ["a", "b"]
    assert engine.stats.snapshot().observer_errors == 1


class _Switch:
    on = False


def _watching(switch: _Switch, asked: list[int], attribute: str = "on") -> Stage:
    class Watching(Stage):
        name = "watching"
        seam = Seam.OBSERVER

        def __init__(self) -> None:
            def watch() -> None:
                asked.append(1)

            watch.when = ((switch, attribute),)  # type: ignore[attr-defined]
            self.watch = watch

    return Watching()


def test_a_watch_is_asked_only_while_its_when_is_set() -> None:
    switch, asked = _Switch(), []
    engine = Engine(fn=lambda x: x, name="m", stages=[_watching(switch, asked)])
    assert "holder0.on" in engine.run_sync.__source__
    engine.run_sync(1, (), {})
    assert asked == []
    switch.on = True
    engine.run_sync(1, (), {})
    assert asked == [1]


def test_the_models_call_asks_the_watch_with_no_handle_to_carry() -> None:
    """``model(x)`` starts every call itself: no watch handle can come in, so its entry has no
    ``w.walk`` test and no watched finish; ``run_sync`` (handed a handle by the watch) has both."""
    switch, asked = _Switch(), []
    engine = Engine(fn=lambda x: x * 2, name="m", stages=[_watching(switch, asked)])
    entry, run = engine.call.__source__, engine.run_sync.__source__
    assert "w.walk" in run and "if w is None and (holder0.on):" in run
    assert "if w is not None:\n            finish" in run
    assert "w.walk" not in entry and "    if (holder0.on):" in entry
    assert "if w is not None:\n            finish" not in entry and "finish_fast" not in entry
    assert engine.call(3) == 6 and asked == []
    switch.on = True
    assert engine.call(4) == 8 and asked == [1]  # the entry asks the watch as run_sync does


def test_a_watch_whose_when_names_no_attribute_is_refused() -> None:
    with pytest.raises(ValueError, match="names attributes"):
        Engine(fn=lambda x: x, name="m", stages=[_watching(_Switch(), [], attribute="on; import os")])


def test_the_sync_and_async_success_paths_are_the_same_lines_but_the_coroutine_check() -> None:
    async def apredict(r: Row) -> int:
        return r.a

    def predict(r: Row) -> int:
        return r.a

    options: dict[str, Any] = {"input": Row, "cost": pw.PerCall("0.01"), "output": int}
    sync = pw.ProductionModel(predict, **options)._engine.run_sync.__source__
    awaited = pw.ProductionModel(apredict, **options)._engine.run_async.__source__
    assert awaited.startswith("async def run(") and "await (fn(value" in awaited
    checked = [line for line in sync.splitlines(keepends=True) if "COROUTINE" in line or "returned_coroutine" in line]
    assert len(checked) == 2  # only a sync predict can return a coroutine it meant to be awaited
    assert awaited.replace("async ", "").replace("await ", "") == "".join(
        line for line in sync.splitlines(keepends=True) if line not in checked
    )


def test_an_engine_without_a_success_path_runs_the_general_path() -> None:
    engine = Engine(fn=lambda xs: [x + 1 for x in xs], name="m", batch=True)
    assert engine.fast is None and not hasattr(engine.run_sync, "__source__")
    assert engine.run_sync([1, 2], (), {}) == [2, 3]
    rec = engine.stats.snapshot()
    assert rec.calls == 1


def test_a_sync_engine_awaited_goes_through_the_walk_on_a_worker() -> None:
    engine = Engine(fn=lambda x: x + 1, name="m")
    assert not hasattr(engine.run_async, "__source__")  # (no async success path for a sync predict)
    assert asyncio.run(engine.run_async(1, (), {})) == 2


def test_an_async_model_with_a_timeout_is_built_before_asyncio_is_imported() -> None:
    code = (
        "import sys\n"
        "import prodwrap as pw\n"
        "assert 'asyncio' not in sys.modules\n"
        "@pw.production(timeout=2.0)\n"
        "async def classify(text: str) -> str:\n"
        "    return 'ok'\n"
        "import asyncio\n"
        "print(asyncio.run(classify('hi')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


async def test_an_awaited_call_without_a_success_path_counts_from_when_it_is_awaited() -> None:
    def sync_predict(x: int) -> int:
        return x

    async def batched(xs: list[int]) -> list[int]:
        return xs

    through_worker = pw.ProductionModel(sync_predict, name="s")
    batch = pw.ProductionModel(batched, name="b", batch=True)
    pending = [through_worker.apredict(1), batch.apredict([1])]
    await asyncio.sleep(0.3)  # made, not yet awaited: not part of the calls' latency
    assert [await c for c in pending] == [1, [1]]
    for model in (through_worker, batch):
        latency = model.stats().latency_p50
        assert latency is not None and latency < 0.3


def test_tracebacks_show_the_compiled_lines() -> None:
    def broken_check(value: Any, out: Any) -> None:
        raise pw.ShadowMismatchError("for the caller")

    engine = Engine(fn=lambda x: x, name="m", stages=[_observer(broken_check)])
    with pytest.raises(pw.ShadowMismatchError) as caught:
        engine.run_sync(1, (), {})
    lines = [entry.statement for entry in caught.traceback if "success path" in str(entry.path)]
    assert any("raise raised" in str(line) for line in lines)
    assert "def run(" in inspect.getsource(engine.run_sync)


def test_a_model_call_is_one_frame_of_prodwrap_between_the_caller_and_the_predict() -> None:
    def predict(x: int, scale: int = 1) -> int:
        raise KeyError(x * scale)

    model = pw.ProductionModel(predict, input=int, telemetry=False)
    for call in (lambda: model(2), lambda: model(2, 3), lambda: model(x=2, scale=3)):
        with pytest.raises(KeyError) as caught:
            call()
        names = [entry.name for entry in caught.traceback]
        between = names[names.index("<lambda>") + 1 : -1]  # (the raise of the failure path is a line of it too)
        assert set(between) == {"call"} and names[-1] == "predict", names
    assert model.__call__ is model._engine.call  # the engine's entry, compiled with its success path
    assert model._engine.call.__source__.startswith("def call(x=NO_INPUT, /, *args, **kwargs):\n")
    assert model._engine.call.__source__.split("\n", 3)[3] == model._engine.run_sync.__source__.split("\n", 1)[1]
    with pytest.raises(KeyError) as caught:
        model.predict(2)
    names = [entry.name for entry in caught.traceback]
    assert set(names[1:-1]) == {"_predict", "run"} and names[-1] == "predict", names  # (a method: two frames)


def test_a_model_call_follows_the_engine_it_swaps_to_and_its_keyword_input() -> None:
    def score(applicant: int) -> str:
        return f"primary {applicant}"

    def candidate(prompt: int) -> str:
        return f"candidate {prompt}"

    model = pw.ProductionModel(score, telemetry=False)
    first = model.__call__
    model.stage(candidate, version="2", mode="shadow")
    assert model.__call__ is model._engine.call and model.__call__ is not first
    assert model(applicant=1) == "primary 1"
    model.promote()
    assert model(prompt=2) == model.predict(prompt=2) == "candidate 2"  # the predict that runs names it
    with pytest.raises(TypeError, match="missing the input: pass it first, or as prompt="):
        model(applicant=1)
    batched = pw.ProductionModel(lambda xs: [x + 1 for x in xs], batch=True)  # no success path: the walk
    assert batched._engine.fast is None and batched(xs=[1, 2]) == [2, 3]


def test_a_watch_whose_when_names_a_keyword_is_refused() -> None:
    with pytest.raises(ValueError, match="names attributes"):
        Engine(fn=lambda x: x, name="m", stages=[_watching(_Switch(), [], attribute="class")])


def test_the_compiled_lines_go_with_the_engine() -> None:
    import gc
    import linecache

    model = pw.ProductionModel(lambda x: x, name="n" * 500, telemetry=False)
    filename = model._engine.run_sync.__code__.co_filename
    assert filename in linecache.cache and len(filename) < 120  # (a long name is cut in the file name)
    del model
    gc.collect()
    assert filename not in linecache.cache


class _Gate(Stage):
    """An admission stage for these tests: its ``fast_admit`` says ``says`` (or raises it),
    and its ``fast_undo`` notes that what it took went back."""

    seam = Seam.ADMISSION

    def __init__(self, label: str, says: Any, log: list[str]) -> None:
        self.name = label

        def admit(value: Any, args: Any, kwargs: Any) -> Any:
            log.append(f"{label} asked")
            if isinstance(says, Exception):
                raise says
            return says

        def undo() -> None:
            log.append(f"{label} undone")

        self.fast_admit, self.fast_undo = admit, undo

    def admit(self, call: Any, value: Any) -> None:
        return None  # (the walk lets the call go on)


@pytest.mark.parametrize("refusal", [False, RuntimeError("hook bug")])
def test_several_admission_hooks_run_inline_and_a_refusal_gives_back_what_the_ones_before_took(
    refusal: Any,
) -> None:
    log: list[str] = []
    stages = [_Gate("a", True, log), _Gate("b", True, log), _Gate("c", refusal, log), _Gate("d", True, log)]
    engine = Engine(fn=lambda x: x + 1, name="m", stages=stages)
    source = engine.run_sync.__source__
    assert "admit3(value, args, kwargs)" in source and "admitted" not in source  # no loop, no call layer
    assert engine.run_sync(1, (), {}) == 2  # the walk served it
    assert log == ["a asked", "b asked", "c asked", "a undone", "b undone"]  # d never asked
    log.clear()
    assert Engine(fn=lambda x: x + 1, name="m", stages=stages[:2] + stages[3:]).run_sync(1, (), {}) == 2
    assert log == ["a asked", "b asked", "d asked"]  # all said yes: nothing given back


def test_a_call_served_by_a_later_admission_hook_is_counted_and_heard_inline() -> None:
    log: list[str] = []
    heard: list[tuple[Any, Any]] = []

    class Hearing(Stage):
        name = "hearing"
        seam = Seam.OBSERVER

        def __init__(self, hook: Any) -> None:
            self.fast_served = hook

        def observe(self, call: Any) -> None:
            raise AssertionError("no record is made for a call served on the success path")

    def broken(value: Any, decision: Any) -> None:
        raise RuntimeError("observer bug")

    hit = Serve(42, "cached", "cache")
    engine = Engine(
        fn=lambda x: x + 1,
        name="m",
        stages=[
            _Gate("a", True, log),
            _Gate("b", hit, log),
            Hearing(broken),
            Hearing(lambda value, decision: heard.append((value, decision))),
        ],
    )
    assert "served1(value, said)" in engine.run_sync.__source__
    assert engine.run_sync(7, (), {}) == 42
    assert log == ["a asked", "b asked", "a undone"]
    assert heard == [(7, hit)]  # the second hook ran though the first raised
    snapshot = engine.stats.snapshot()
    assert snapshot.calls == 1 and snapshot.outcomes == {"cached": 1} and snapshot.served_by == {"cache": 1}
    assert snapshot.observer_errors == 1


def test_a_hook_that_raises_on_the_success_path_is_reported_with_the_calls_input_and_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The finish point's fault line masks the sensitive values of both (``Finisher.failed``)."""
    from prodwrap._finish import Finisher

    reported: list[tuple[Any, Any]] = []
    monkeypatch.setattr(Finisher, "failed", lambda self, hook, exc, value=None, out=None: reported.append((value, out)))

    def broken(value: Any, out: Any) -> None:
        raise RuntimeError("observer bug")

    class Hearing(Stage):
        name = "hearing"
        seam = Seam.OBSERVER

        def __init__(self, **hooks: Any) -> None:
            vars(self).update(hooks)

        def observe(self, call: Any) -> None:
            raise AssertionError("no record is made for a call on the success path")

    served = Engine(
        fn=lambda x: x + 1, name="m", stages=[_Gate("a", Serve(42, "cached", "cache"), []), Hearing(fast_served=broken)]
    )
    assert "served0(value, said)" in served.run_sync.__source__
    assert served.run_sync(7, (), {}) == 42
    plain = Engine(fn=lambda x: x + 1, name="m", stages=[Hearing(fast_observe=broken)])
    assert "observe0(value, out)" in plain.run_sync.__source__
    assert plain.run_sync(7, (), {}) == 8
    assert reported == [(7, 42), (7, 8)]


def test_a_call_the_first_of_several_admission_hooks_serves_gives_nothing_back() -> None:
    log: list[str] = []
    hit = Serve(42, "cached", "cache")
    engine = Engine(fn=lambda x: x + 1, name="m", stages=[_Gate("a", hit, log), _Gate("b", True, log)])
    assert "(passed or type(said) is not Serve)" in engine.run_sync.__source__
    assert engine.run_sync(7, (), {}) == 42
    assert log == ["a asked"]  # b never asked, nothing undone
    no = Engine(fn=lambda x: x + 1, name="m", stages=[_Gate("a", False, log), _Gate("b", True, log)])
    log.clear()
    assert no.run_sync(7, (), {}) == 8  # the first said no: the walk
    assert log == ["a asked"]
    snapshot = engine.stats.snapshot()
    assert snapshot.outcomes == {"cached": 1} and snapshot.served_by == {"cache": 1}


def test_a_declared_served_pair_is_tallied_inline_and_its_plain_case_runs_in_place_of_the_hook() -> None:
    """A stage's ``serves`` pairs are tallied inline; a hook's ``plain`` case for the pair's
    outcome runs while its context variable holds its value, the hook otherwise; a Serve
    with another pair takes the general tally and the hook."""
    scope: ContextVar[str | None] = ContextVar("scope", default=None)
    bumps: list[None] = []
    heard: list[tuple[Any, str]] = []
    ticks: list[int] = []
    decisions = {1: Serve("hit", "cached", "store"), 2: Serve("other", "served", "elsewhere")}

    class Serving(Stage):
        name = "serving"
        seam = Seam.ADMISSION
        serves = (("cached", "store"),)

        def __init__(self) -> None:
            self.fast_admit = lambda value, args, kwargs: decisions.get(value, True)

        def admit(self, call: Any, value: Any) -> None:
            return None

    def hook(value: Any, decision: Serve) -> None:
        heard.append((value, decision.outcome))

    def plain(outcome: str) -> Any:
        assert outcome == "cached"  # asked for the declared pair only
        return ((scope, None),), bumps, partial(ticks.append, 1)

    hook.plain = plain  # type: ignore[attr-defined]

    class Hearing(Stage):
        name = "hearing"
        seam = Seam.OBSERVER
        fast_served = staticmethod(hook)

        def observe(self, call: Any) -> None:
            raise AssertionError("no record is made for a call served on the success path")

    engine = Engine(fn=lambda x: x + 1, name="m", stages=[Serving(), Hearing()])
    source = engine.run_sync.__source__
    assert "next(end0)" in source and "served_tally0_0.append(None)" in source
    assert engine.run_sync(1, (), {}) == "hit" and bumps == [None] and heard == []  # the plain case
    token = scope.set("tagged")
    try:
        assert engine.run_sync(1, (), {}) == "hit"  # the variable is set: the hook itself
    finally:
        scope.reset(token)
    assert heard == [(1, "cached")] and bumps == [None]
    assert engine.run_sync(2, (), {}) == "other" and heard[-1] == (2, "served")  # another pair
    assert engine.run_sync(3, (), {}) == 4  # not served
    snapshot = engine.stats.snapshot()
    assert snapshot.outcomes == {"cached": 2, "ok": 1, "served": 1}
    assert snapshot.served_by == {"elsewhere": 1, "primary": 1, "store": 2}
    assert ticks == [1]  # the first sequence number (0) is a multiple of 1024
    for _ in range(1024):
        engine.run_sync(1, (), {})
    assert ticks == [1, 1]  # once every 1024 calls, served or not


def test_a_plain_case_that_does_not_tally_in_a_list_is_refused_at_compile_time() -> None:
    def hook(value: Any, out: Any) -> None:
        return None

    hook.plain = ((), partial(print), print)  # type: ignore[attr-defined]

    class Observing(Stage):
        name = "observing"
        seam = Seam.OBSERVER
        fast_observe = staticmethod(hook)

        def observe(self, call: Any) -> None:
            return None

    with pytest.raises(TypeError, match="tallies in a list, got partial"):
        Engine(fn=lambda x: x, name="m", stages=[Observing()])


def test_a_pair_declared_but_never_served_is_not_in_the_stats() -> None:
    model = pw.ProductionModel(lambda x: x, cache=pw.Cache(maxsize=4))
    assert "next(end0)" in model._engine.run_sync.__source__  # ("cached", "cache"): its tally made ahead
    model(1)
    assert model.stats().outcomes == {"ok": 1} and model.stats().served_by == {"primary": 1}
    model(1)
    assert model.stats().outcomes == {"cached": 1, "ok": 1}


async def _acomplete(prompt: str) -> str:
    raise ConnectionError("upstream down")  # (never reached: nothing awaits it)


@pytest.mark.parametrize("timeout", [None, 1.0])
def test_a_sync_predict_returning_a_coroutine_fails_its_attempt_on_the_success_path(timeout: float | None) -> None:
    calls: list[str] = []

    def predict(prompt: str) -> Any:
        calls.append(prompt)
        return _acomplete(prompt)

    seen: list[pw.Prediction] = []
    model = pw.ProductionModel(predict, name="llm", timeout=timeout, retry=3, observers=[seen.append])
    assert "COROUTINE" in model._engine.run_sync.__source__  # (the compiled success path checks it)
    with pytest.raises(pw.ConfigurationError, match=r"returned a coroutine.*pass an `async def`"):
        model("hi")  # (-W error: a coroutine never awaited would be an error here)
    assert calls == ["hi"]  # never retried
    stats = model.stats()
    assert stats.outcomes == {"error": 1} and stats.failures == {"exception": 1}
    assert seen[0].outcome == "error"
    served = pw.ProductionModel(predict, name="llm", timeout=timeout, fallback=pw.Constant("sorry"))
    assert served("hi") == "sorry"


@pytest.mark.parametrize("is_async", [False, True])
def test_what_follows_a_refusal_or_a_failure_runs_with_no_exception_in_flight(is_async: bool) -> None:
    """The success path is the else clause of the validator's try and of the attempt's: a
    refused input and a failed attempt leave their except blocks before the walk goes on, so
    nothing after them sees or chains onto the validator's or the predict's error."""
    seen: list[BaseException | None] = []

    def bad(x: int) -> int:
        raise KeyError(x)

    async def abad(x: int) -> int:
        raise KeyError(x)

    def fallback(x: int) -> int:
        seen.append(sys.exc_info()[1])
        return -x

    model = pw.ProductionModel(
        abad if is_async else bad,
        input=int,
        fallback=fallback,
        observers=[lambda p: seen.append(sys.exc_info()[1])],
        telemetry=False,
    )
    assert "    else:" in (model._engine.run_async if is_async else model._engine.call).__source__

    def call(x: object) -> Any:
        return asyncio.run(model.apredict(x)) if is_async else model(x)

    with pytest.raises(pw.InputValidationError) as refused:
        call("x")
    assert refused.value.__context__ is None and seen == [None]
    assert call(3) == -3 and seen == [None, None, None]  # (the fallback's, then the observer's)


class _Limited(Stage):
    """An admission stage whose hook is written as lines (inline_admit): a call count under a
    limit; a value of 13 makes the lines raise (the walk takes the call)."""

    name = "limited"
    seam = Seam.ATTEMPT

    def __init__(self, limit: int) -> None:
        self.seen: list[int] = []
        self.walked: list[int] = []
        lines = "if value == 13:\n    raise ValueError(value)\n{p}seen.append(value)\nsaid = len({p}seen) <= {p}LIMIT\n"
        self.fast_admit = inline_admit(lines, {"seen": self.seen, "LIMIT": limit})

    def before_attempt(self, call: Any, target: Any) -> None:
        self.walked.append(call.input)


@pytest.mark.parametrize("alone", [True, False])
def test_an_admission_hook_written_as_lines_runs_them_inline_and_as_a_hook(alone: bool) -> None:
    stage = _Limited(2)
    stages: list[Stage] = [stage] if alone else [_Limited(10), stage]
    engine = Engine(fn=lambda x: x * 2, name="m", stages=stages)
    i = 0 if alone else 1
    for source in (engine.run_sync.__source__, engine.call.__source__):
        assert f"a{i}_seen.append(value)" in source and f"admit{i}(" not in source  # its lines, not a call
    assert [engine.call(1), engine.call(2), engine.call(3)] == [2, 4, 6]
    assert stage.seen == [1, 2, 3] and stage.walked == [3]  # the third went to the walk (over the limit)
    assert engine.call(13) == 26 and stage.walked == [3, 13]  # lines that raise: the walk, as a hook's raising
    assert stage.fast_admit(5, (), {}) is False and stage.seen[-1] == 5  # the same lines, as a hook


def test_an_admission_hook_written_as_lines_runs_inline_on_the_async_path_too() -> None:
    async def adouble(x: int) -> int:
        return 2 * x

    stage = _Limited(1)
    engine = Engine(fn=adouble, name="m", stages=[stage])
    assert "a0_seen.append(value)" in engine.run_async.__source__
    assert asyncio.run(engine.run_async(1, (), {})) == 2 and stage.walked == []
    assert asyncio.run(engine.run_async(2, (), {})) == 4 and stage.walked == [2]  # over the limit: the walk
