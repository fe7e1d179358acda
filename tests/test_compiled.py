"""The compiled success path (prodwrap/_compiled.py): one function per engine and driver,
with the branches the configuration decides folded away and the finish inline."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
from decimal import Decimal
from typing import Any

import pydantic
import pytest

import prodwrap as pw
from prodwrap._engine import Engine
from prodwrap._stage import Seam, Stage


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
    assert source.count("perf_counter()") == 2  # the call's start and its latency sample
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


def test_a_watch_whose_when_names_no_attribute_is_refused() -> None:
    with pytest.raises(ValueError, match="names attributes"):
        Engine(fn=lambda x: x, name="m", stages=[_watching(_Switch(), [], attribute="on; import os")])


def test_the_sync_and_async_success_paths_are_the_same_lines() -> None:
    async def apredict(r: Row) -> int:
        return r.a

    def predict(r: Row) -> int:
        return r.a

    options: dict[str, Any] = {"input": Row, "cost": pw.PerCall("0.01"), "output": int}
    sync = pw.ProductionModel(predict, **options)._engine.run_sync.__source__
    awaited = pw.ProductionModel(apredict, **options)._engine.run_async.__source__
    assert awaited.startswith("async def run(") and "await (fn(value" in awaited
    assert awaited.replace("async ", "").replace("await ", "") == sync


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
