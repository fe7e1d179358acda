"""Versions: stage, promote, rollback and the history, with swaps under traffic."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest

import prodwrap as pw
from prodwrap.rollout._keys import bucket
from prodwrap.testing import FakeClock
from tests.rollout.support import Scripted


def test_stage_promote_rollback_and_the_history(clock: FakeClock) -> None:
    old, new = Scripted("old", "old"), Scripted("new", "new")
    model = pw.ProductionModel(old, name="credit", version="1.4.0")
    start = clock.time()
    model.stage(new, version="1.5.0", mode="canary", fraction=1.0, by="ana", reason="better recall")
    assert model.version == "1.4.0" and model.predict_detailed(1).served_by == "candidate"
    assert model._engine.fast is not None
    clock.advance(60)
    model.promote(by="ana", reason="canary held")
    assert model.version == "1.5.0" and model.canary is None
    prediction = model.predict_detailed(1)
    assert (prediction.value, prediction.served_by, prediction.version) == ("new", "primary", "1.5.0")
    clock.advance(60)
    model.rollback(by="bob", reason="complaints")
    assert model.version == "1.4.0" and model(1) == "old"
    assert [(v.version, v.event, v.role, v.mode, v.by, v.reason, v.at - start) for v in model.versions] == [
        ("1.4.0", "deployed", "primary", None, None, None, 0.0),
        ("1.5.0", "staged", "candidate", "canary", "ana", "better recall", 0.0),
        ("1.5.0", "promoted", "primary", None, "ana", "canary held", 60.0),
        ("1.5.0", "rolled_back", "primary", None, "bob", "complaints", 120.0),
    ]
    with pytest.raises(pw.ConfigurationError, match="nothing to roll back"):
        model.rollback()
    with pytest.raises(pw.ConfigurationError, match="no candidate is staged"):
        model.promote()
    with pytest.raises(AttributeError):
        model.versions[0].by = "eve"  # type: ignore[misc]


def test_rollback_of_a_staged_candidate_keeps_the_primary_and_the_counts() -> None:
    model = pw.ProductionModel(lambda x: "p", name="m", version="1", cost=pw.PerCall("0.01"))
    model(1)
    model.stage(lambda x: "c", version="2", mode="canary", fraction=1.0)
    model(1)
    model.rollback(reason="not yet")
    assert model(1) == "p" and model.version == "1" and model.canary is None
    stats = model.stats()
    assert stats.calls == 3 and stats.served_by == {"candidate": 1, "primary": 2}  # one recorder across swaps
    assert model.ledger is not None and model.ledger.total() == Decimal("0.03")  # one ledger across swaps
    assert [v.event for v in model.versions] == ["deployed", "staged", "rolled_back"]
    assert model.versions[-1].role == "candidate"


def test_staging_again_replaces_the_staged_candidate() -> None:
    model = pw.ProductionModel(lambda x: "p", name="m")
    model.stage(lambda x: "c1", version="2", mode="canary", fraction=1.0)
    model.stage(lambda x: "c2", version="3", mode="canary", fraction=1.0)
    assert model(1) == "c2"
    model.promote()
    assert model.version == "3" and model(1) == "c2"
    model.rollback()
    assert model(1) == "p" and model.version is None


def test_a_model_built_with_canary_can_be_promoted_and_a_candidate_models_function_becomes_primary() -> None:
    candidate = pw.ProductionModel(lambda x: x * 2, name="next", version="2.0", retry=3)
    model = pw.ProductionModel(lambda x: x, name="m", version="1.0", canary=pw.Canary(candidate, 0.5))
    assert [(v.version, v.event) for v in model.versions] == [("1.0", "deployed"), ("2.0", "staged")]
    model.promote()
    assert model.version == "2.0" and model(4) == 8
    assert model.describe()["retry"] is None  # the host's settings apply, not the candidate's


def test_the_guards_rollback_is_in_the_history_and_blocks_promote() -> None:
    model = pw.ProductionModel(lambda x: "p", name="m", version="1", fallback=pw.Constant("fb"))
    guard = pw.Guard(max_error_rate=0.1, max_consecutive_failures=2)
    model.stage(Scripted("bad", "c", fail=1.0), version="2", mode="canary", fraction=1.0, guard=guard)
    assert [model(i) for i in range(3)] == ["fb", "fb", "p"]
    last = model.versions[-1]
    assert (last.version, last.event, last.by, last.reason) == (
        "2",
        "rolled_back",
        "guard",
        "2 consecutive failures (max_consecutive_failures=2)",
    )
    with pytest.raises(pw.ConfigurationError, match="the guard rolled the candidate back"):
        model.promote()
    model.rollback()  # removes the rolled-back candidate
    assert model.canary is None and [v.event for v in model.versions][-2:] == ["rolled_back", "rolled_back"]


def test_promote_tells_the_canarys_listeners() -> None:
    model = pw.ProductionModel(lambda x: "p", name="m")
    model.stage(lambda x: "c", mode="canary", fraction=0.5)
    handle = model.canary
    assert handle is not None
    events: list[pw.CanaryEvent] = []
    handle.listeners.append(events.append)
    model.promote()
    assert [(e.event, e.state) for e in events] == [("promoted", "promoted")]
    assert handle.state == "promoted"


def test_bad_stage_arguments() -> None:
    model = pw.ProductionModel(lambda x: "p", name="m")
    with pytest.raises(pw.ConfigurationError, match="needs fraction="):
        model.stage(lambda x: "c", mode="canary")
    with pytest.raises(pw.ConfigurationError, match='"shadow" or "canary"'):
        model.stage(lambda x: "c", mode="blue-green")  # type: ignore[arg-type]

    async def async_candidate(x: int) -> str:
        return "c"

    with pytest.raises(pw.ConfigurationError, match="a sync model cannot await it"):
        model.stage(async_candidate, mode="canary", fraction=0.1)
    assert [v.event for v in model.versions] == ["deployed"]  # a refused stage changes nothing
    assert model(1) == "p"


def test_shadow_mode_stages_a_shadow() -> None:
    pytest.importorskip("prodwrap.rollout.shadow")  # (built in parallel: runs once both are merged)
    model = pw.ProductionModel(lambda x: "p", name="m", version="1")
    model.stage(lambda x: "c", version="2", by="ana")
    assert model(1) == "p"  # a shadow is compared, never served
    assert model.versions[-1].mode == "shadow"
    model.promote()
    assert model(1) == "c" and model.version == "2"


def test_a_constructor_shadow_keeps_its_report_across_stage_and_rollback() -> None:
    model = pw.ProductionModel(lambda x: x, name="m", shadow=pw.Shadow(lambda x: x if x < 3 else -1, name="next"))
    for i in range(5):
        model(i)
    before = model.shadow_report(wait=10.0)
    assert (before.n, before.agreements) == (5, 3)
    model.stage(lambda x: x, version="2", mode="canary", fraction=0.5)  # a new pipeline
    assert model.shadow_report(wait=10.0).n == 5  # the same shadow: its report goes on
    model.rollback()
    model(1)  # served by the primary: compared
    after = model.shadow_report(wait=10.0)
    assert (after.n, after.agreements) == (6, 4)
    model.close()


def test_the_models_cost_goes_on_across_stage_promote_and_rollback() -> None:
    model = pw.ProductionModel(lambda x: x, name="m", version="1", cost=pw.PerCall("0.01"))
    steps = (
        lambda: model.stage(lambda x: -x, version="2", mode="canary", fraction=0.5),
        model.promote,
        model.rollback,
    )
    for step in (lambda: None, *steps):
        step()
        for i in range(10):
            model(i)
    stats = model.stats()
    assert stats.calls == 40
    assert stats.cost == model.ledger.total() == Decimal("0.40")
    assert stats.unpriced == 0


def test_swaps_keep_one_meter_per_version() -> None:
    model = pw.ProductionModel(lambda x: x, name="m", version="1", cost=pw.PerCall("0.01"))
    for _ in range(50):
        model.stage(lambda x: -x, version="2", mode="canary", fraction=0.5)
        model(1)
        model.rollback()
    assert len(model._engine.stats.meters) == 1  # the host's, version "1", all along
    assert model.stats().cost == Decimal("0.50")


def test_shadow_runs_queued_at_a_swap_go_on_and_nothing_is_dropped() -> None:
    release = threading.Event()

    def slow(x: int) -> int:
        assert release.wait(10)
        return x

    model = pw.ProductionModel(lambda x: x, name="q", shadow=pw.Shadow(slow, name="slow", workers=1, timeout=30))
    for i in range(5):
        model(i)  # one run blocked on the event, four queued behind it
    model.stage(lambda x: x, version="2", mode="canary", fraction=0.5)
    model.rollback()
    release.set()
    report = model.shadow_report(wait=10.0)
    assert (report.n, report.agreements, report.dropped, report.pending) == (5, 5, 0, 0)
    model.close()


def test_a_call_in_flight_across_a_swap_is_compared_by_the_kept_shadow() -> None:
    gate, entered = threading.Event(), threading.Event()

    def primary(x: int) -> int:
        if x == 1:
            entered.set()
            assert gate.wait(10)
        return x

    before = set(threading.enumerate())
    model = pw.ProductionModel(primary, name="f", shadow=pw.Shadow(lambda x: x, name="cand"))
    caller = threading.Thread(target=model, args=(1,))
    caller.start()
    assert entered.wait(10)  # the call began on the first pipeline
    model.stage(lambda x: x, version="2", mode="canary", fraction=0.5, key="customer")
    gate.set()
    caller.join()
    model(2)
    report = model.shadow_report(wait=10.0)
    assert (report.n, report.skipped, report.dropped) == (2, 0, 0)
    model.close()
    for thread in set(threading.enumerate()) - before:
        if thread.name.startswith("prodwrap-shadow"):  # this model's: none is left behind
            thread.join(10)  # (a worker ends after its current job)
            assert not thread.is_alive()


def test_a_call_in_flight_ends_on_the_engine_it_began_with() -> None:
    entered, release = threading.Event(), threading.Event()

    def old(x: int) -> str:
        entered.set()
        assert release.wait(10)
        return "old"

    model = pw.ProductionModel(old, name="m", version="1")
    model.stage(lambda x: "new", version="2", mode="canary", fraction=0.5, key="customer")
    customer = next(f"k{i}" for i in range(100) if bucket("m", f"k{i}") >= 0.5)  # on the primary's side
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(model.predict_detailed({"customer": customer})))
    worker.start()
    assert entered.wait(10)
    model.promote()
    assert model({"customer": customer}) == "new"
    release.set()
    worker.join(10)
    assert (results[0].value, results[0].version) == ("old", "1")


def test_promote_then_rollback_under_16_threads_of_traffic() -> None:
    served: dict[str, int] = {"v1": 0, "v2": 0}
    lock = threading.Lock()

    def version(name: str) -> Any:
        def predict(x: int) -> str:
            with lock:
                served[name] += 1
            return name

        predict.__name__ = name
        return predict

    model = pw.ProductionModel(version("v1"), name="m", version="1")
    model.stage(version("v2"), version="2", mode="canary", fraction=0.2)
    start = threading.Barrier(17)
    progress = threading.Semaphore(0)
    stop = threading.Event()
    failures: list[BaseException] = []
    made = [0] * 16

    def traffic(n: int) -> None:
        start.wait()
        try:
            while not stop.is_set():
                assert model(n) in ("v1", "v2")
                made[n] += 1
                progress.release()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=traffic, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    start.wait()
    for _ in range(2000):
        progress.acquire()
    model.promote(by="ci")
    for _ in range(2000):
        progress.acquire()
    model.rollback(by="ci", reason="drill")
    for _ in range(2000):
        progress.acquire()
    stop.set()
    for t in threads:
        t.join(10)
    assert not failures
    assert served["v1"] + served["v2"] == sum(made) == model.stats().calls  # each call served once
    assert [(v.version, v.event) for v in model.versions] == [
        ("1", "deployed"),
        ("2", "staged"),
        ("2", "promoted"),
        ("2", "rolled_back"),
    ]
    assert model.version == "1" and model(0) == "v1"


def test_two_concurrent_promotes_promote_once() -> None:
    model = pw.ProductionModel(lambda x: "p", name="m", version="1")
    model.stage(lambda x: "c", version="2", mode="canary", fraction=0.1)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def promote() -> None:
        start.wait()
        try:
            model.promote()
            outcomes.append("promoted")
        except pw.ConfigurationError:
            outcomes.append("refused")

    threads = [threading.Thread(target=promote) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["promoted", "refused"]
    assert [v.event for v in model.versions] == ["deployed", "staged", "promoted"]
    model.rollback()
    assert model.version == "1"


def test_restaging_a_shadow_leaves_no_worker_thread_behind() -> None:
    import threading as _threading

    def shadow_threads() -> int:
        return sum(1 for t in _threading.enumerate() if "shadow" in t.name)

    model = pw.ProductionModel(lambda x: x, name="restaged")
    before = shadow_threads()
    for i in range(4):
        model.stage(lambda x, i=i: x + i, version=f"c{i}", mode="shadow")
        model(1)
        model.shadow_report(wait=None)
    model.close()
    deadline = 50
    while shadow_threads() > before and deadline:  # (a worker ends after its current job)
        _threading.Event().wait(0.1)
        deadline -= 1
    assert shadow_threads() == before


def test_a_canary_candidate_model_with_its_own_fallback_is_refused() -> None:
    candidate = pw.ProductionModel(lambda x: x, name="next", fallback=pw.Constant(0))
    with pytest.raises(pw.ConfigurationError, match="fallback"):
        pw.ProductionModel(lambda x: x, name="m", canary=pw.Canary(candidate, 0.5))


def test_a_candidate_staged_again_under_a_new_version_starts_afresh_in_a_shared_store() -> None:
    from prodwrap.state import MemoryStore

    store = MemoryStore()
    guard = pw.Guard(max_error_rate=0.05, max_consecutive_failures=3)
    model = pw.ProductionModel(lambda x: "v1", name="m", fallback=pw.Constant("fb"))

    def candidate(x: int) -> str:
        raise RuntimeError("a bug")

    model.stage(candidate, version="1.5.0", mode="canary", fraction=1.0, store=store, guard=guard)
    for i in range(5):
        model(i)
    assert model.canary is not None and model.canary.state == "rolled_back"
    model.rollback()

    def candidate(x: int) -> str:  # type: ignore[no-redef]  # fixed, under the same name
        return "v1.5.1"

    model.stage(candidate, version="1.5.1", mode="canary", fraction=1.0, store=store, guard=guard)
    assert model.canary is not None and model.canary.state != "rolled_back"
    assert [model(i) for i in range(3)] == ["v1.5.1"] * 3
    replica = pw.ProductionModel(lambda x: "v1", name="m", fallback=pw.Constant("fb"))
    replica.stage(candidate, version="1.5.0", mode="canary", fraction=1.0, store=store, guard=guard)
    assert replica.canary is not None and replica.canary.state == "rolled_back"  # that version's verdict
