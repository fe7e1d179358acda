"""Timeouts, deadlines, sync/async parity and concurrency of the two drivers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

import prodwrap as pw
from prodwrap.testing import FakeClock

SLACK = 0.04  # scheduling slack on a loaded 2-core machine


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """An event hung attempts wait on; set at teardown so their threads end."""
    event = threading.Event()
    yield event
    event.set()


def test_sync_hang_times_out_within_slack(gate: threading.Event) -> None:
    late = threading.Event()

    def hang(x: int) -> str:
        gate.wait()
        late.set()
        return "late"

    model = pw.ProductionModel(hang, timeout=0.05)
    start = time.perf_counter()
    with pytest.raises(pw.PredictionTimeout) as info:
        model(1)
    elapsed = time.perf_counter() - start
    assert 0.05 <= elapsed < 0.05 + SLACK
    assert isinstance(info.value, TimeoutError) and info.value.timeout == pytest.approx(0.05, abs=0.01)
    stats = model.stats()
    assert (stats.abandoned, stats.outcomes, stats.failures) == (1, {"error": 1}, {"timeout": 1})
    from prodwrap._context import LIVE

    assert len(LIVE) >= 1  # the abandoned attempt still runs under its deadline
    gate.set()
    assert late.wait(5)
    for _ in range(500):  # the worker leaves its deadline right after the predict returns
        if not LIVE:
            break
        time.sleep(0.01)
    assert not LIVE
    # the late result went nowhere: the model's next call is served fresh, stats unchanged by it
    assert pw.ProductionModel(lambda x: x, timeout=0.5)(2) == 2
    assert model.stats().calls == 1


def test_sync_hang_with_fallback(gate: threading.Event) -> None:
    model = pw.ProductionModel(lambda x: gate.wait(), timeout=0.05, fallback=pw.Constant("safe"))
    start = time.perf_counter()
    p = model.predict_detailed(1)
    assert time.perf_counter() - start < 0.05 + SLACK
    assert (p.value, p.outcome, p.served_by) == ("safe", "fallback", "constant")
    assert model.stats().abandoned == 1


async def test_async_hang_times_out_within_slack() -> None:
    cancelled = asyncio.Event()

    async def hang(x: int) -> str:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "late"

    model = pw.ProductionModel(hang, timeout=0.05)
    start = time.perf_counter()
    with pytest.raises(pw.PredictionTimeout):
        await model.apredict(1)
    assert 0.05 <= time.perf_counter() - start < 0.05 + SLACK
    assert cancelled.is_set()  # async attempts are cancelled, not left running
    assert model.stats().abandoned == 1


async def test_async_model_with_sync_predict_hang(gate: threading.Event) -> None:
    """The attempt timeout counts from the attempt's start on its worker (time queued for a
    worker, a thread start on a fresh pool, does not count): measured from there."""
    started: list[float] = []

    def hang(x: int) -> bool:
        started.append(time.perf_counter())
        return gate.wait()

    model = pw.ProductionModel(hang, timeout=0.05, fallback=pw.Constant(0))
    p = await model.apredict_detailed(1)
    assert 0.05 - 0.005 <= time.perf_counter() - started[0] < 0.05 + SLACK
    assert (p.outcome, model.stats().abandoned) == ("fallback", 1)


async def test_users_own_timeout_error_is_not_taken_for_ours() -> None:
    async def predict(x: int) -> int:
        raise TimeoutError("upstream said so")

    model = pw.ProductionModel(predict, timeout=5)
    with pytest.raises(TimeoutError, match="upstream") as info:
        await model(1)
    assert not isinstance(info.value, pw.PredictionTimeout)
    assert model.stats().abandoned == 0


def test_without_timeout_sync_runs_inline() -> None:
    model = pw.ProductionModel(lambda x: threading.get_ident())
    assert model(1) == threading.get_ident()
    timed = pw.ProductionModel(lambda x: threading.get_ident(), timeout=1.0)
    assert timed(1) != threading.get_ident()


def test_deadline_inside_predict() -> None:
    seen = []

    def predict(x: int) -> int:
        seen.append(pw.deadline())
        return x

    pw.ProductionModel(predict)(1)
    pw.ProductionModel(predict, timeout=2.0)(1)
    pw.ProductionModel(predict, timeout=pw.Timeout(attempt=0.5, total=5.0))(1)
    assert seen[0] is None
    assert 1.5 < seen[1] <= 2.0
    assert 0.0 < seen[2] <= 0.5  # the nearer of attempt timeout and total deadline
    assert pw.deadline() is None


async def test_deadline_inside_async_predict() -> None:
    async def predict(x: int) -> float | None:
        return pw.deadline()

    assert await pw.ProductionModel(predict)(1) is None
    left = await pw.ProductionModel(predict, timeout=2.0)(1)
    assert left is not None and 1.5 < left <= 2.0


async def test_an_async_attempts_deadline_binds_only_while_it_runs() -> None:
    from prodwrap._context import LIVE

    started = asyncio.Event()
    release = asyncio.Event()
    seen: list[float | None] = []

    async def outlives() -> None:  # a task the attempt starts: it inherits the attempt's context
        started.set()
        await release.wait()
        seen.append(pw.deadline())

    tasks: list[asyncio.Task[None]] = []

    async def predict(x: int) -> int:
        seen.append(pw.deadline())
        tasks.append(asyncio.ensure_future(outlives()))
        await started.wait()
        return x

    model = pw.ProductionModel(predict, timeout=5.0)
    assert model._engine.run_async.__source__.count("live_add(binding)") == 1  # (the success path's)
    before = set(LIVE)
    assert await model(1) == 1
    assert set(LIVE) == before  # the binding ended with the attempt
    release.set()
    await tasks[0]
    assert seen[0] is not None and 4.0 < seen[0] <= 5.0
    assert seen[1] is None  # the task outlived the attempt: its deadline binds nothing any more


def test_nested_model_clamps_to_callers_deadline(gate: threading.Event) -> None:
    inner_seen = []

    def inner_fn(x: int) -> int:
        inner_seen.append(pw.deadline())
        gate.wait()
        return x

    inner = pw.ProductionModel(inner_fn, name="inner", timeout=10.0)

    def outer_fn(x: int) -> int:
        return inner(x)

    outer = pw.ProductionModel(outer_fn, name="outer", timeout=0.1)
    start = time.perf_counter()
    with pytest.raises(pw.PredictionTimeout):
        outer(1)
    assert time.perf_counter() - start < 0.1 + SLACK
    assert inner_seen[0] is not None and inner_seen[0] <= 0.1


def test_nested_model_without_timeout_still_bounded_by_caller(gate: threading.Event) -> None:
    from prodwrap._context import within_deadline

    inner = pw.ProductionModel(lambda x: gate.wait(), name="inner", fallback=pw.Constant("inner-fb"))
    # Called from a caller's attempt with 50 ms left (set directly: a real outer model waits
    # for the same instant, so which side gives up first would be a race), the inner model
    # runs its attempt under that deadline, gives up at it and serves its own fallback.
    start = time.perf_counter()
    with within_deadline(time.monotonic() + 0.05):
        assert inner(1) == "inner-fb"
    assert time.perf_counter() - start < 0.05 + SLACK
    assert inner.stats().abandoned == 1


class Script:
    """A scripted predict shared by a sync and an async variant: each call pops one step."""

    def __init__(self, steps: list[object]) -> None:
        self.steps = steps

    def step(self, x: int) -> int:
        item = self.steps.pop(0)
        if isinstance(item, BaseException):
            raise item
        return x * 2


def _script() -> list[object]:
    return [
        "ok",
        ConnectionError(),
        "ok",
        ConnectionError(),
        ConnectionError(),
        ConnectionError(),
        ValueError("not retried"),
        "ok",
        ConnectionError(),
        "ok",
    ]


def _view(p: pw.Prediction) -> tuple[object, ...]:
    return (p.value, p.outcome, p.served_by, p.attempts, [type(e).__name__ for e in p.errors])


def test_sync_and_async_give_identical_predictions(clock: FakeClock) -> None:
    options = {"retry": pw.Retry(attempts=3, on=(ConnectionError,)), "fallback": pw.Constant(-1)}
    sync_script, async_script = Script(_script()), Script(_script())

    async def async_step(x: int) -> int:
        await asyncio.sleep(0)
        return async_script.step(x)

    sync_model = pw.ProductionModel(sync_script.step, **options)
    async_model = pw.ProductionModel(async_step, **options)
    sync_views = [_view(sync_model.predict_detailed(i)) for i in range(6)]

    async def drive() -> list[tuple[object, ...]]:
        return [_view(await async_model.apredict_detailed(i)) for i in range(6)]

    async_views = asyncio.run(drive())
    assert sync_views == async_views
    assert [v[1] for v in sync_views] == ["ok", "ok", "fallback", "fallback", "ok", "ok"]
    assert sync_model.stats().outcomes == async_model.stats().outcomes
    assert sync_model.stats().failures == async_model.stats().failures


def test_64_threads_hammering_one_model() -> None:
    threads, per_thread = 64, 200
    fail_every = 7

    def predict(x: tuple[int, int]) -> tuple[int, int]:
        if x[1] % fail_every == 0:
            raise ConnectionError
        return x

    model = pw.ProductionModel(predict, fallback=lambda x: ("fb", x))
    barrier = threading.Barrier(threads)
    results: dict[int, list[pw.Prediction]] = {}

    def worker(t: int) -> None:
        barrier.wait()
        results[t] = [model.predict_detailed((t, i)) for i in range(per_thread)]

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    total = threads * per_thread
    ids = {p.id for preds in results.values() for p in preds}
    assert len(ids) == total  # no duplicated predictions
    for t, preds in results.items():  # none lost, none crossed between threads
        for i, p in enumerate(preds):
            expected = ("fb", (t, i)) if i % fail_every == 0 else (t, i)
            assert p.value == expected
    fallbacks = threads * len(range(0, per_thread, fail_every))
    stats = model.stats()
    assert stats.calls == total
    assert stats.outcomes == {"fallback": fallbacks, "ok": total - fallbacks}
    assert stats.served_by == {"<lambda>": fallbacks, "primary": total - fallbacks}


def test_64_threads_on_a_timed_model() -> None:
    threads, per_thread = 64, 20
    model = pw.ProductionModel(lambda x: x, timeout=5.0)
    barrier = threading.Barrier(threads)
    out: list[list[object]] = [[] for _ in range(threads)]

    def worker(t: int) -> None:
        barrier.wait()
        out[t] = [model((t, i)) for i in range(per_thread)]

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    assert out == [[(t, i) for i in range(per_thread)] for t in range(threads)]
    assert model.stats().calls == threads * per_thread
    assert model.stats().abandoned == 0


async def test_1000_concurrent_async_calls() -> None:
    started = 0
    all_started = asyncio.Event()

    async def predict(x: int) -> int:
        nonlocal started
        started += 1
        if started == 1000:
            all_started.set()
        await all_started.wait()  # every call is in flight at once
        return x * 3

    model = pw.ProductionModel(predict, timeout=10.0)
    preds = await asyncio.gather(*(model.apredict_detailed(i) for i in range(1000)))
    assert [p.value for p in preds] == [i * 3 for i in range(1000)]
    assert len({p.id for p in preds}) == 1000
    stats = model.stats()
    assert (stats.calls, stats.outcomes) == (1000, {"ok": 1000})


async def test_sync_model_apredict_runs_on_a_worker_thread() -> None:
    model = pw.ProductionModel(lambda x: threading.get_ident())
    assert await model.apredict(1) != threading.get_ident()


def test_fallback_timeout_message_names_the_fallback(gate: threading.Event) -> None:
    from prodwrap._context import within_deadline

    def slow_fb(x: int) -> int:
        gate.wait()
        return x

    inner = pw.ProductionModel(lambda x: 1 / 0, name="inner", fallback=slow_fb)
    with within_deadline(time.monotonic() + 0.05), pytest.raises(pw.FallbackExhausted) as info:
        inner(1)  # as if called by a model with 50 ms left
    assert "inner: fallback slow_fb timed out" in str(info.value.exceptions[-1])
    assert inner.stats().abandoned == 1


async def test_an_async_predict_that_swallows_its_cancel_runs_to_its_end_and_is_served() -> None:
    """docs/timeouts.md: a timeout cannot bound an async predict that will not be cancelled."""
    cancelled = []

    async def stubborn(x: int) -> str:
        try:
            await asyncio.sleep(60)  # cancelled at the 10 ms timeout
        except asyncio.CancelledError:
            cancelled.append(x)  # and swallowed
        return "finished anyway"

    model = pw.ProductionModel(stubborn, timeout=0.01, fallback=pw.Constant("fallback"))
    p = await model.apredict_detailed(1)
    assert cancelled == [1]
    assert (p.value, p.outcome, p.errors) == ("finished anyway", "ok", ())
