"""pw.Shadow: the primary never changes; the candidate runs in the background, bounded, and is
compared; the report counts exactly what happened."""

from __future__ import annotations

import asyncio
import gc
import math
import threading
import weakref
from typing import Any

import pydantic
import pytest

import prodwrap as pw
from prodwrap._context import current_tags
from prodwrap.rollout._shadow_stage import ShadowStage

WAIT = 10.0  # seconds a test waits for background runs at most (they take microseconds)


def stage_of(model: Any) -> ShadowStage:
    return next(s for s in model._engine.stages if isinstance(s, ShadowStage))


def double(x: int) -> int:
    return x * 2


# -- the primary is never affected -----------------------------------------------------------


def test_a_blocked_candidate_does_not_hold_the_primary_back() -> None:
    started, release = threading.Event(), threading.Event()

    def stuck(x: int) -> int:
        started.set()
        release.wait(WAIT)
        return x * 2

    model = pw.ProductionModel(double, shadow=pw.Shadow(stuck))
    assert model._engine.fast is not None  # the shadow keeps the compiled success path
    assert model(21) == 42
    assert started.wait(WAIT)
    assert model(4) == 8  # returns while the candidate is still blocked
    assert not release.is_set()
    assert model.shadow_report().pending == 2
    release.set()
    report = model.shadow_report(wait=WAIT)
    assert (report.n, report.agreements, report.pending) == (2, 2, 0)
    model.close()


async def test_a_blocked_async_candidate_does_not_hold_the_primary_back() -> None:
    import asyncio

    release = asyncio.Event()

    async def primary(x: int) -> int:
        return x + 1

    async def stuck(x: int) -> int:
        await release.wait()
        return x + 1

    model = pw.ProductionModel(primary, shadow=pw.Shadow(stuck))
    assert model._engine.fast is not None
    assert await model(1) == 2
    assert await model(2) == 3
    stage = stage_of(model)
    assert model.shadow_report().pending == 2 and not release.is_set()
    release.set()
    await asyncio.gather(*stage.experiments[0].tasks)
    assert model.shadow_report().n == 2
    model.close()


def test_a_raising_candidate_leaves_the_primary_intact_and_is_counted() -> None:
    def broken(x: int) -> int:
        raise RuntimeError("candidate bug")

    model = pw.ProductionModel(double, shadow=pw.Shadow(broken))
    assert [model(i) for i in range(5)] == [0, 2, 4, 6, 8]
    report = model.shadow_report(wait=WAIT)
    assert (report.n, report.candidate_errors, report.candidate_error_rate) == (0, 5, 1.0)
    assert report.agreement_rate is None and report.agreement_ci is None
    assert model.stats().observer_errors == 0
    model.close()


def test_the_primary_s_exception_is_unchanged_and_not_compared() -> None:
    seen: list[int] = []

    def failing(x: int) -> int:
        raise KeyError("primary")

    model = pw.ProductionModel(failing, shadow=pw.Shadow(seen.append))
    with pytest.raises(KeyError, match="primary"):
        model(1)
    report = model.shadow_report(wait=WAIT)
    assert seen == [] and report.n == 0 and report.not_served == 1
    model.close()


# -- sampling ---------------------------------------------------------------------------------


def test_ten_thousand_calls_at_a_tenth_give_binomial_counts_and_exact_agreement() -> None:
    seen: list[int] = []

    def scripted(x: int) -> int:
        seen.append(x)
        return -1 if x % 7 == 0 else x * 2  # disagrees on multiples of 7

    model = pw.ProductionModel(double, shadow=pw.Shadow(scripted, sample=0.1, seed=7, workers=1))
    for i in range(10_000):
        assert model(i) == 2 * i
    report = model.shadow_report(wait=WAIT)
    sigma = math.sqrt(10_000 * 0.1 * 0.9)
    assert abs(report.n - 1000) < 4 * sigma
    assert report.n == len(seen) and len(set(seen)) == len(seen)
    expected = sum(1 for x in seen if x % 7)
    assert report.agreements == expected
    assert report.agreement_rate == expected / len(seen)
    low, high = report.agreement_ci  # type: ignore[misc]
    assert low < report.agreement_rate < high
    assert report.mismatched == len(seen) - expected
    assert all(m.candidate == -1 and m.input % 7 == 0 for m in report.mismatches)
    assert 0 < len(report.mismatches) <= 5
    model.close()


def test_the_same_seed_samples_the_same_calls() -> None:
    def run() -> list[int]:
        seen: list[int] = []
        model = pw.ProductionModel(double, shadow=pw.Shadow(seen.append, sample=0.3, seed=1, workers=1))
        for i in range(200):
            model(i)
        model.shadow_report(wait=WAIT)
        model.close()
        return seen

    assert run() == run()


def test_a_keyed_sample_is_sticky_per_customer() -> None:
    seen: list[str] = []

    class Ask(pydantic.BaseModel):
        customer: str
        amount: float

    def cand(x: Ask) -> float:
        seen.append(x.customer)
        return x.amount

    model = pw.ProductionModel(lambda x: x.amount, input=Ask, shadow=pw.Shadow(cand, sample=0.3, key="customer"))
    customers = [f"c{i}" for i in range(300)]
    for _ in range(3):
        for c in customers:
            model({"customer": c, "amount": 1.0})
    model.shadow_report(wait=WAIT)
    chosen = set(seen)
    assert all(seen.count(c) == 3 for c in chosen)  # every call of a chosen customer, none of the others
    assert 40 < len(chosen) < 140
    # a pw.context tag of that name wins over the field
    seen.clear()
    with pw.context(customer=next(iter(chosen))):
        for c in customers:
            model({"customer": c, "amount": 1.0})
    assert len(model.shadow_report(wait=WAIT).mismatches) == 0 and len(seen) == 300
    model.close()


def test_a_call_without_the_key_is_not_shadowed() -> None:
    seen: list[Any] = []
    model = pw.ProductionModel(lambda x: x, shadow=pw.Shadow(seen.append, key="customer"))
    model({"other": 1})
    assert model.shadow_report(wait=WAIT).n == 0 and seen == []
    model.close()


def test_enabled_switches_the_experiment_at_run_time() -> None:
    on = [False]
    seen: list[int] = []
    model = pw.ProductionModel(double, shadow=pw.Shadow(lambda x: seen.append(x) or x * 2, enabled=lambda: on[0]))
    model(1)
    on[0] = True
    model(2)
    assert model.shadow_report(wait=WAIT).n == 1 and seen == [2]
    model.close()


def test_a_raising_enabled_counts_as_off() -> None:
    def boom() -> bool:
        raise RuntimeError("flag service down")

    seen: list[int] = []
    model = pw.ProductionModel(double, shadow=pw.Shadow(seen.append, enabled=boom))
    assert model(3) == 6
    report = model.shadow_report(wait=WAIT)
    assert (report.n, report.faults, seen) == (0, 1, [])
    model.close()


# -- what is compared -------------------------------------------------------------------------


def test_only_calls_the_primary_served_are_compared() -> None:
    seen: list[int] = []

    def flaky(x: int) -> int:
        if x < 0:
            raise ConnectionError("down")
        return x

    model = pw.ProductionModel(flaky, fallback=pw.Constant(0), shadow=pw.Shadow(lambda x: seen.append(x) or x))
    assert model(-1) == 0  # served by the fallback
    assert model(5) == 5
    report = model.shadow_report(wait=WAIT)
    assert seen == [5] and (report.n, report.not_served) == (1, 1)
    cached = pw.ProductionModel(flaky, cache=pw.Cache(10), shadow=pw.Shadow(lambda x: seen.append(x) or x))
    cached(7)
    cached(7)  # a cache hit: not compared
    report = cached.shadow_report(wait=WAIT)
    assert (report.n, report.not_served) == (1, 1)
    model.close()
    cached.close()


def test_a_call_that_leaves_the_success_path_is_drawn_for_sampling_once() -> None:
    def down(x: int) -> int:
        raise ConnectionError

    n, rate = 4000, 0.25
    model = pw.ProductionModel(down, fallback=pw.Constant(0), shadow=pw.Shadow(lambda x: 0, sample=rate, seed=3))
    for i in range(n):
        model(i)
    report = model.shadow_report(wait=WAIT)
    sigma = (n * rate * (1 - rate)) ** 0.5
    assert abs(report.not_served - n * rate) < 4 * sigma  # one draw per call, not two (about 0.44 n)
    model.close()


def test_calls_a_canary_candidate_served_are_not_served_by_the_primary() -> None:
    compared: list[int] = []
    model = pw.ProductionModel(
        lambda x: x,
        shadow=pw.Shadow(lambda x: compared.append(x) or x),
        canary=pw.Canary(lambda x: -x, 1.0),  # every call routed to the candidate
    )
    assert [model(i) for i in range(1, 6)] == [-1, -2, -3, -4, -5]
    report = model.shadow_report(wait=WAIT)
    assert compared == [] and (report.n, report.not_served) == (0, 5)
    model.close()


def test_a_call_retried_then_served_by_the_primary_is_compared(clock: Any) -> None:
    tries = [0]

    def once_down(x: int) -> int:
        tries[0] += 1
        if tries[0] == 1:
            raise ConnectionError("blip")
        return x

    model = pw.ProductionModel(once_down, retry=2, shadow=pw.Shadow(lambda x: x))
    assert model(9) == 9
    assert model.shadow_report(wait=WAIT).agreements == 1
    model.close()


def test_the_candidate_gets_the_validated_input_and_the_pass_through_arguments() -> None:
    class Row(pydantic.BaseModel):
        a: int

    got: list[tuple[Any, ...]] = []

    def primary(x: Row, scale: int, *, shift: int = 0) -> int:
        return x.a * scale + shift

    def cand(x: Row, scale: int, *, shift: int = 0) -> int:
        got.append((type(x).__name__, scale, shift))
        return x.a * scale + shift

    model = pw.ProductionModel(primary, input=Row, shadow=pw.Shadow(cand))
    assert model({"a": 2}, 3, shift=1) == 7  # the success path
    assert model.predict_detailed({"a": 2}, 5).value == 10  # the general path
    report = model.shadow_report(wait=WAIT)
    assert sorted(got) == [("Row", 3, 1), ("Row", 5, 0)] and report.agreements == 2
    model.close()


def test_tags_reach_the_candidate() -> None:
    tags: list[Any] = []
    model = pw.ProductionModel(double, shadow=pw.Shadow(lambda x: tags.append(dict(current_tags()))))
    with pw.context(customer="acme"):
        model(1)
    model.shadow_report(wait=WAIT)
    assert tags == [{"customer": "acme"}]
    model.close()


def test_ignore_marks_accepted_differences_and_is_asked_only_on_a_difference() -> None:
    asked: list[tuple[Any, Any, Any]] = []

    def ignore(x: int, primary: int, candidate: int) -> bool:
        asked.append((x, primary, candidate))
        return x == 2

    model = pw.ProductionModel(double, shadow=pw.Shadow(lambda x: x * 2 if x == 1 else 0, ignore=ignore))
    for x in (1, 2, 3):
        model(x)
    report = model.shadow_report(wait=WAIT)
    assert sorted(asked) == [(2, 4, 0), (3, 6, 0)]
    assert (report.n, report.agreements, report.ignored, report.mismatched) == (3, 1, 1, 1)
    assert report.agreement_rate == 0.5
    model.close()


def test_raising_ignore_and_comparator_count_as_not_ignored_and_disagreement() -> None:
    def bad_ignore(x: Any, p: Any, c: Any) -> bool:
        raise RuntimeError("ignore bug")

    def bad_compare(p: Any, c: Any) -> bool:
        raise RuntimeError("compare bug")

    model = pw.ProductionModel(double, shadow=pw.Shadow(double, compare=bad_compare, ignore=bad_ignore))
    assert model(1) == 2
    report = model.shadow_report(wait=WAIT)
    assert (report.n, report.agreements, report.ignored, report.mismatched, report.faults) == (1, 0, 0, 1, 2)
    model.close()


def test_on_mismatch_hears_each_mismatch_and_its_fault_is_counted() -> None:
    heard: list[tuple[Any, Any, Any]] = []

    def hear(x: Any, p: Any, c: Any) -> None:
        heard.append((x, p, c))
        raise RuntimeError("pager down")

    model = pw.ProductionModel(double, shadow=pw.Shadow(lambda x: x, on_mismatch=hear, workers=1))
    model(0)
    model(3)
    report = model.shadow_report(wait=WAIT)
    assert heard == [(3, 6, 3)] and report.faults == 1
    model.close()


# -- bounds, timeouts, lifecycle --------------------------------------------------------------


def test_a_stuck_candidate_never_has_more_than_max_pending_runs() -> None:
    release = threading.Event()

    class Box:
        def __init__(self, v: int) -> None:
            self.v = v

    def stuck(x: Box) -> int:
        release.wait(600)  # (until the test releases it, however long a loaded machine takes)
        return x.v

    model = pw.ProductionModel(lambda x: x.v, shadow=pw.Shadow(stuck, max_pending=10, workers=2))
    alive: list[weakref.ref[Box]] = []
    try:
        for i in range(1000):
            box = Box(i)
            alive.append(weakref.ref(box))
            assert model(box) == i
            del box
        gc.collect()
        worker = stage_of(model).experiments[0].worker
        assert worker is not None and worker.peak == 10
        assert sum(ref() is not None for ref in alive) == 0  # the pending runs hold copies, no caller's input
        assert sum(isinstance(o, Box) for o in gc.get_objects()) == 10  # and only theirs
        report = model.shadow_report()
        assert (report.pending, report.skipped) == (10, 990)
    finally:
        release.set()
    assert model.shadow_report(wait=WAIT).n == 10
    model.close()


def test_a_sync_candidate_past_its_timeout_is_a_timeout(clock: Any) -> None:
    def slow(x: int) -> int:
        assert pw.deadline() == pytest.approx(0.5)  # its own limit, not the caller's
        clock.advance(0.6)
        return x * 2

    model = pw.ProductionModel(double, shadow=pw.Shadow(slow, timeout=0.5))
    assert model(1) == 2
    report = model.shadow_report(wait=WAIT)
    assert (report.n, report.candidate_errors, report.candidate_timeouts) == (0, 1, 1)
    assert report.candidate_latency_p50 == pytest.approx(0.6)
    model.close()


async def test_an_async_candidate_past_its_timeout_is_cancelled() -> None:
    import asyncio

    cancelled = asyncio.Event()

    async def primary(x: int) -> int:
        return x

    async def hangs(x: int) -> int:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return x

    model = pw.ProductionModel(primary, shadow=pw.Shadow(hangs, timeout=0.01))
    assert await model(1) == 1
    await asyncio.gather(*stage_of(model).experiments[0].tasks)
    report = model.shadow_report()
    assert cancelled.is_set() and (report.candidate_errors, report.candidate_timeouts) == (1, 1)
    model.close()


async def raises_cancelled(x: int) -> int:
    import asyncio

    raise asyncio.CancelledError()


async def awaits_a_cancelled_future(x: int) -> int:
    import asyncio

    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    future.cancel()  # cancelled by someone else: the task running the candidate never was
    return await future


@pytest.mark.parametrize("candidate", [raises_cancelled, awaits_a_cancelled_future])
async def test_an_async_candidate_raising_cancelled_error_itself_is_a_candidate_error(candidate: Any) -> None:
    import asyncio

    async def primary(x: int) -> int:
        return x

    model = pw.ProductionModel(primary, shadow=pw.Shadow(candidate))
    assert await model(1) == 1
    tasks = set(stage_of(model).experiments[0].tasks)
    await asyncio.wait(tasks)
    assert not any(task.cancelled() for task in tasks)  # the run ended: it was not cancelled
    report = model.shadow_report()
    assert (report.dropped, report.candidate_errors, report.n, report.pending) == (0, 1, 0, 0)
    model.close()
    assert model.shadow_report().dropped == 0


async def test_close_drops_an_async_candidate_s_run_under_way() -> None:
    import asyncio

    started = asyncio.Event()

    async def primary(x: int) -> int:
        return x

    async def stuck(x: int) -> int:
        started.set()
        await asyncio.Event().wait()
        return x

    model = pw.ProductionModel(primary, shadow=pw.Shadow(stuck))
    assert await model(1) == 1
    tasks = set(stage_of(model).experiments[0].tasks)
    await started.wait()
    model.close()
    await asyncio.wait(tasks)
    assert all(task.cancelled() for task in tasks)
    report = model.shadow_report()
    assert (report.dropped, report.candidate_errors, report.pending) == (1, 0, 0)


def test_close_drops_what_is_queued_and_no_thread_outlives_its_current_job() -> None:
    started, release = threading.Event(), threading.Event()

    def stuck(x: int) -> int:
        started.set()
        release.wait(WAIT)
        return x

    model = pw.ProductionModel(lambda x: x, shadow=pw.Shadow(stuck, workers=1, name="slow"))
    for i in range(5):
        model(i)
    assert started.wait(WAIT)
    model.close()
    report = model.shadow_report()
    assert (report.dropped, report.pending) == (4, 1)
    assert model(9) == 9  # still predicts; no longer shadowed
    assert model.shadow_report().skipped == 1
    release.set()
    threads = [t for t in threading.enumerate() if t.name == "prodwrap-shadow-slow"]
    for t in threads:
        t.join(WAIT)
    assert not any(t.is_alive() for t in threads)
    assert model.shadow_report().n == 1


# -- several shadows, models as candidates, configuration ------------------------------------


def test_several_shadows_report_by_name() -> None:
    model = pw.ProductionModel(double, shadow=[pw.Shadow(double, name="same"), pw.Shadow(lambda x: 0, name="zero")])
    assert model._engine.fast is not None
    model(1)
    reports = model.shadow_report(wait=WAIT)
    assert set(reports) == {"same", "zero"}
    assert (reports["same"].agreements, reports["zero"].mismatched) == (1, 1)
    assert model.shadow_report("zero").mismatched == 1
    assert set(model.stats().shadow) == {"same", "zero"}
    with pytest.raises(KeyError, match="nope"):
        model.shadow_report("nope")
    model.close()


def test_a_model_candidate_runs_through_its_own_pipeline_and_costs() -> None:
    candidate = pw.ProductionModel(double, name="v2", cost=pw.PerCall("0.002"))
    model = pw.ProductionModel(double, cost=pw.PerCall("0.001"), shadow=pw.Shadow(candidate))
    for i in range(4):
        model(i)
    report = model.shadow_report(wait=WAIT)
    assert report.name == "v2" and report.agreements == 4
    assert (str(report.primary_cost), str(report.candidate_cost)) == ("0.001", "0.002")
    assert candidate.stats().calls == 4
    assert pw.ProductionModel(double, shadow=pw.Shadow(double)).shadow_report().primary_cost is None


def test_stacked_shadowed_decorators_make_one_model_with_both() -> None:
    @pw.shadowed(lambda x: x + 1, name="plus")
    @pw.shadowed(double, sample=0.5)
    def primary(x: int) -> int:
        return x * 2

    assert isinstance(primary, pw.ProductionModel)
    described = primary.describe()
    assert [s["candidate"] for s in described["shadow"]] == ["double", "plus"]
    assert described["shadow"][0]["sample"] == 0.5 and "shadow" in described["stages"]
    primary.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sample": 1.5}, "sample"),
        ({"sample": True}, "sample"),
        ({"timeout": 0}, "timeout"),
        ({"max_pending": 0}, "max_pending"),
        ({"workers": 0}, "workers"),
        ({"ignore": 3}, "ignore"),
        ({"key": ""}, "key"),
        ({"name": ""}, "name"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_nonsense_is_refused_naming_the_setting(options: dict[str, Any], message: str) -> None:
    with pytest.raises(pw.ConfigurationError, match=message):
        pw.Shadow(double, **options)


def test_configuration_errors_at_construction() -> None:
    async def acand(x: int) -> int:
        return x

    with pytest.raises(pw.ConfigurationError, match="async"):
        pw.ProductionModel(double, shadow=pw.Shadow(acand))
    with pytest.raises(pw.ConfigurationError, match="named 'double'"):
        pw.ProductionModel(double, shadow=[pw.Shadow(double), pw.Shadow(double)])
    with pytest.raises(pw.ConfigurationError, match=r"pw\.Shadow"):
        pw.ProductionModel(double, shadow=[double])  # type: ignore[list-item]
    with pytest.raises(pw.ConfigurationError, match="candidate"):
        pw.Shadow(3)
    with pytest.raises(pw.ConfigurationError, match="shadow_report needs"):
        pw.ProductionModel(double).shadow_report()


def test_the_candidate_sees_the_input_and_output_as_they_were_when_the_call_ended() -> None:
    """The candidate is held until the caller has reused its input buffer and changed what it
    was served: the comparisons are of the values each call had."""
    gate = threading.Event()

    def candidate(row: dict[str, int]) -> list[int]:
        gate.wait(10)
        return [row["x"] * 2]

    model = pw.ProductionModel(lambda row: [row["x"] * 2], shadow=pw.Shadow(candidate, workers=1))
    row: dict[str, int] = {}
    for i in range(5):
        row["x"] = i
        model(row).append(-1)  # the caller reuses its buffer, and adds to what it was served
    gate.set()
    report = model.shadow_report(wait=10)
    assert (report.n, report.agreements) == (5, 5)


@pytest.mark.parametrize("raised", [asyncio.CancelledError, KeyboardInterrupt, SystemExit])
def test_a_sync_candidate_raising_what_is_no_exception_is_a_candidate_error(raised: type[BaseException]) -> None:
    def candidate(x: int) -> int:
        raise raised()

    model = pw.ProductionModel(lambda x: x, shadow=pw.Shadow(candidate, workers=1))
    assert model(1) == 1
    report = model.shadow_report(wait=10)
    assert (report.candidate_errors, report.n, report.pending, report.dropped) == (1, 0, 0, 0)
    assert model(2) == 2 and model.shadow_report(wait=10).candidate_errors == 2  # its worker goes on
    model.close()


def test_arguments_passed_through_reach_the_candidate_as_they_are() -> None:
    class Client:
        """A handle a copy would duplicate (a connection pool, say)."""

    seen: list[object] = []

    def candidate(x: int, client: Client) -> int:
        seen.append(client)
        return x

    model = pw.ProductionModel(lambda x, client: x, shadow=pw.Shadow(candidate, workers=1))
    client = Client()
    assert model(1, client=client) == 1
    assert model.shadow_report(wait=10).n == 1
    assert seen == [client] and seen[0] is client
    model.close()
