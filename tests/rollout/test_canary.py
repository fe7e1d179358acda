"""Canary routing: sticky splits, per-variant stats, the guard's automatic rollback, steps."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import subprocess
import sys
import threading
from decimal import Decimal
from typing import Any

import pydantic
import pytest

import prodwrap as pw
from prodwrap.rollout._keys import bucket
from prodwrap.state import MemoryStore
from prodwrap.testing import FakeClock
from tests.rollout.support import Scripted


def keyed(fraction: float = 0.1, **options: Any) -> tuple[pw.ProductionModel[Any, Any, Any], Scripted, Scripted]:
    primary, candidate = Scripted("primary", "p"), Scripted("candidate", "c")
    model = pw.ProductionModel(primary, name="shop", canary=pw.Canary(candidate, fraction, key="customer", **options))
    return model, primary, candidate


# -- routing ----------------------------------------------------------------------------------


def test_each_customer_always_gets_one_variant_and_a_tenth_of_them_the_candidate() -> None:
    model, primary, candidate = keyed(0.1)
    assert model._engine.fast is not None  # the primary's calls keep the compiled success path
    seen: dict[int, set[str]] = {}
    for _ in range(4):
        for customer in range(1000):
            seen.setdefault(customer, set()).add(model({"customer": customer}))
    assert all(len(variants) == 1 for variants in seen.values())
    on_candidate = sum(variants == {"c"} for variants in seen.values())
    assert 70 <= on_candidate <= 130  # binomial(1000, 0.1): mean 100, sd 9.5
    assert candidate.calls == 4 * on_candidate and primary.calls == 4 * (1000 - on_candidate)
    stats = model.stats()
    assert stats.served_by == {"candidate": candidate.calls, "primary": primary.calls}
    assert (stats.canary.calls, stats.canary.primary.calls) == (candidate.calls, primary.calls)
    assert stats.canary.state == "running" and stats.canary.fraction == 0.1


def test_the_split_is_the_same_in_every_process() -> None:
    assert bucket("shop", "customer-42") == 0.39475670530313145
    code = "from prodwrap.rollout._keys import bucket; print(repr(bucket('shop', 'customer-42')))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "0.39475670530313145"
    assert bucket("shop", 42) != bucket("shop", "42")  # an int and a str are different keys
    assert bucket("shop", "customer-42") != bucket("other", "customer-42")  # each model splits its own way


def test_the_key_is_a_context_tag_first_then_a_field_and_calls_without_it_go_to_the_primary() -> None:
    class Order(pydantic.BaseModel):
        customer: str
        amount: float

    inside = next(f"k{i}" for i in range(1000) if bucket("shop", f"k{i}") < 0.5)
    outside = next(f"k{i}" for i in range(1000) if bucket("shop", f"k{i}") >= 0.5)
    primary, candidate = Scripted("primary", "p"), Scripted("candidate", "c")
    model = pw.ProductionModel(primary, name="shop", input=Order, canary=pw.Canary(candidate, 0.5, key="customer"))
    assert model({"customer": inside, "amount": 1}) == "c"  # a pydantic field
    assert model({"customer": outside, "amount": 1}) == "p"
    with pw.context(customer=outside):
        assert model({"customer": inside, "amount": 1}) == "p"  # the tag wins
    bare = pw.ProductionModel(primary, name="shop", canary=pw.Canary(candidate, 0.5, key="customer"))
    assert bare({"amount": 1}) == "p" and bare(7) == "p"
    assert bare.stats().canary.unkeyed == 2


def test_a_random_split_draws_once_per_call_on_the_success_path_and_the_walk() -> None:
    random.seed(5)
    primary, candidate = Scripted("primary", "p"), Scripted("candidate", "c")
    model = pw.ProductionModel(primary, name="r", canary=pw.Canary(candidate, 0.5))
    outs = [model(i) for i in range(4000)]
    detailed = [model.predict_detailed(i) for i in range(4000)]  # the walk always
    # two draws per candidate call would give a quarter, not a half
    assert 1850 <= outs.count("c") <= 2150
    assert 1850 <= sum(p.served_by == "candidate" for p in detailed) <= 2150
    assert all((p.value == "c") == (p.served_by == "candidate") for p in detailed)
    assert candidate.calls + primary.calls == 8000


def test_the_candidates_outputs_are_validated_and_a_bad_one_is_a_failed_attempt() -> None:
    model = pw.ProductionModel(
        lambda x: 1.0,
        name="v",
        output=float,
        check=lambda y: y >= 0,
        fallback=pw.Constant(0.0),
        canary=pw.Canary(lambda x: -5.0, 1.0),
    )
    prediction = model.predict_detailed(1)
    assert (prediction.value, prediction.outcome, prediction.served_by) == (0.0, "fallback", "constant")
    assert model.stats().canary.errors == 1 and model.stats().failures == {"invalid_output": 1}


def test_a_candidate_model_runs_its_own_pipeline_and_serves_as_the_candidate() -> None:
    inner = pw.ProductionModel(lambda x: x * 10, name="next", version="2.0")
    model = pw.ProductionModel(lambda x: x, name="m", canary=pw.Canary(inner, 1.0))
    prediction = model.predict_detailed(4)
    assert (prediction.value, prediction.served_by) == (40, "candidate")
    assert inner.stats().calls == 1


def test_async_candidates() -> None:
    async def primary(x: int) -> str:
        return "p"

    async def candidate(x: int) -> str:
        return "c"

    model = pw.ProductionModel(primary, name="a", canary=pw.Canary(candidate, 0.5, key="customer"))
    assert model._engine.fast is not None
    inside = next(i for i in range(100) if bucket("a", i) < 0.5)
    outside = next(i for i in range(100) if bucket("a", i) >= 0.5)

    async def run() -> list[str]:
        return [await model({"customer": inside}), await model({"customer": outside})]

    assert asyncio.run(run()) == ["c", "p"]
    with pytest.raises(pw.ConfigurationError, match="async; a sync model cannot await it"):
        pw.ProductionModel(lambda x: x, canary=pw.Canary(candidate, 0.1))


# -- per-variant stats --------------------------------------------------------------------------


def test_per_variant_errors_latency_and_cost(clock: FakeClock) -> None:
    def primary(x: dict[str, int]) -> str:
        clock.advance(0.01)
        if x["n"] % 10 == 0:
            raise RuntimeError("primary failed")
        return "p"

    def candidate(x: dict[str, int]) -> str:
        clock.advance(0.05)
        return "c"

    model = pw.ProductionModel(
        primary, name="s", cost=pw.PerCall("0.001"), canary=pw.Canary(candidate, 0.25, key="customer")
    )
    ins = [i for i in range(1000) if bucket("s", i) < 0.25][:50]
    outs = [i for i in range(1000) if bucket("s", i) >= 0.25][:150]
    failed = 0
    for n, customer in enumerate(ins + outs):
        try:
            model({"customer": customer, "n": n})
        except RuntimeError:
            failed += 1
    stats = model.stats().canary
    assert (stats.calls, stats.errors, stats.error_rate) == (50, 0, 0.0)
    assert stats.p95_latency == pytest.approx(0.05)
    assert stats.cost == Decimal("0.05")
    primary_failed = sum(1 for n in range(50, 200) if n % 10 == 0)
    assert failed == primary_failed == stats.primary.errors  # the success path's failures reach the meter
    assert stats.primary.calls == 150 and stats.primary.p95_latency == pytest.approx(0.01)
    assert stats.primary.cost == Decimal("0.15")


def test_the_candidates_calls_are_charged_traced_and_reported_under_its_version() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(spans))
    ledger = pw.Ledger()
    model = pw.ProductionModel(
        lambda x: "p",
        name="v",
        version="1.0",
        cost=pw.PerCall("0.01"),
        ledger=ledger,
        tracer_provider=tracing,
        meter_provider=MeterProvider(metric_readers=[reader]),
    )
    model.stage(lambda x: "c", version="2.0", mode="canary", fraction=0.5, key="customer")
    ins = [i for i in range(1000) if bucket("v", i) < 0.5][:30]
    outs = [i for i in range(1000) if bucket("v", i) >= 0.5][:20]
    versions = {model.predict_detailed({"customer": c}).version for c in ins}
    assert versions == {"2.0"}
    assert {model.predict_detailed({"customer": c}).version for c in outs} == {"1.0"}
    assert ledger.total(by="version") == {"2.0": Decimal("0.30"), "1.0": Decimal("0.20")}
    traced = [dict(span.attributes or {}) for span in spans.get_finished_spans() if span.name == "predict v"]
    assert sorted(a["prodwrap.model.version"] for a in traced) == ["1.0"] * 20 + ["2.0"] * 30
    counted: dict[str, int] = {}
    for metric in reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics:
        if metric.name == "prodwrap.predictions":
            for point in metric.data.data_points:
                version = str(point.attributes["prodwrap.model.version"])
                counted[version] = counted.get(version, 0) + int(point.value)
    assert counted == {"1.0": 20, "2.0": 30}


def test_a_constructor_canarys_version_is_in_the_history_and_promoted() -> None:
    model = pw.ProductionModel(lambda x: "p", name="h", version="1", canary=pw.Canary(lambda x: "c", 1.0, version="2"))
    assert model.predict_detailed(1).version == "2"
    assert (model.versions[-1].version, model.versions[-1].event) == ("2", "staged")
    model.promote()
    assert model.version == "2" and model.versions[-1].version == "2"


def test_a_candidate_model_brings_its_version_and_a_bare_callable_none() -> None:
    candidate = pw.ProductionModel(lambda x: "c", name="next", version="3.1")
    model = pw.ProductionModel(lambda x: "p", name="w", version="3.0", canary=pw.Canary(candidate, 1.0))
    assert model.predict_detailed(1).version == "3.1"
    bare = pw.ProductionModel(lambda x: "p", name="w2", version="3.0", canary=pw.Canary(lambda x: "c", 1.0))
    prediction = bare.predict_detailed(1)
    assert (prediction.served_by, prediction.version) == ("candidate", "3.0")  # no version of its own


# -- the guard ------------------------------------------------------------------------------------


def _customers(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(1_000_000) for _ in range(n)]


@pytest.mark.parametrize("seed", range(10))
def test_a_candidate_failing_a_fifth_of_the_time_is_rolled_back_between_100_and_300_calls(seed: int) -> None:
    primary = Scripted("primary", "p", fail=0.01, seed=seed)
    candidate = Scripted("candidate", "c", fail=0.2, seed=seed + 100)
    events: list[pw.CanaryEvent] = []
    guard = pw.Guard(max_error_rate=0.05, min_calls=100)
    model = pw.ProductionModel(
        primary, name="shop", fallback=pw.Constant("fb"), canary=pw.Canary(candidate, 0.1, key="customer", guard=guard)
    )
    handle = model.canary
    assert handle is not None
    handle.listeners.append(events.append)
    at_rollback = None
    for customer in _customers(6000, seed):
        model({"customer": customer})
        if at_rollback is None and handle.state == "rolled_back":
            at_rollback = candidate.calls
    assert at_rollback is not None and 100 <= at_rollback < 300
    assert candidate.calls == at_rollback  # afterwards, not one call reached it
    stats = model.stats().canary
    assert (stats.state, stats.rolled_back, stats.fraction, stats.calls) == ("rolled_back", True, 0.0, at_rollback)
    assert stats.reason is not None and "above max_error_rate 5.0%" in stats.reason and "Fisher" in stats.reason
    assert [(e.event, e.state, e.fraction) for e in events] == [("rolled_back", "rolled_back", 0.0)]


@pytest.mark.parametrize("seed", range(10))
def test_a_candidate_as_good_as_the_primary_is_not_rolled_back_by_noise(seed: int) -> None:
    # both fail 3 % of the time, above max_error_rate: only the comparison keeps the candidate
    primary = Scripted("primary", "p", fail=0.03, seed=seed)
    candidate = Scripted("candidate", "c", fail=0.03, seed=seed + 100)
    guard = pw.Guard(max_error_rate=0.02, min_calls=100)
    model = pw.ProductionModel(
        primary, name="shop", fallback=pw.Constant("fb"), canary=pw.Canary(candidate, 0.5, key="customer", guard=guard)
    )
    for customer in _customers(2000, seed):
        model({"customer": customer})
    stats = model.stats().canary
    assert stats.state in ("running", "inconclusive") and not stats.rolled_back
    assert stats.calls + stats.primary.calls == 2000 and stats.calls > 900


def test_the_state_is_inconclusive_until_min_calls_then_running() -> None:
    guard = pw.Guard(max_error_rate=0.05, min_calls=20)
    model, _, candidate = keyed(1.0, guard=guard)
    for customer in range(19):
        model({"customer": customer})
    assert model.stats().canary.state == "inconclusive"
    model({"customer": 19})
    assert model.stats().canary.state == "running" and candidate.calls == 20


def test_consecutive_failures_roll_back_before_min_calls(caplog: pytest.LogCaptureFixture) -> None:
    candidate = Scripted("candidate", "c", fail=1.0)
    guard = pw.Guard(max_error_rate=0.5, min_calls=1000, max_consecutive_failures=3)
    model = pw.ProductionModel(
        lambda x: "p", name="shop", fallback=pw.Constant("fb"), canary=pw.Canary(candidate, 1.0, guard=guard)
    )
    with caplog.at_level(logging.INFO, logger="prodwrap.canary"):
        assert [model(i) for i in range(10)] == ["fb"] * 3 + ["p"] * 7
    assert candidate.calls == 3
    assert model.stats().canary.reason == "3 consecutive failures (max_consecutive_failures=3)"
    lines = [r for r in caplog.records if r.name == "prodwrap.canary"]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO and "rolled back" in lines[0].getMessage()
    assert lines[0].reason == "3 consecutive failures (max_consecutive_failures=3)"  # type: ignore[attr-defined]


def test_a_slow_candidate_is_rolled_back_on_its_p95(clock: FakeClock) -> None:
    def candidate(x: int) -> str:
        clock.advance(0.5 if x % 4 == 0 else 0.01)  # a quarter of its calls take 0.5 s
        return "c"

    guard = pw.Guard(max_error_rate=0.05, max_p95_latency=0.3, min_calls=20)
    model = pw.ProductionModel(lambda x: "p", name="slow", canary=pw.Canary(candidate, 1.0, guard=guard))
    outs = [model(i) for i in range(40)]
    assert outs[:20] == ["c"] * 20 and set(outs[20:]) == {"p"}
    assert "p95 latency 0.5 s is above max_p95_latency 0.3 s" in (model.stats().canary.reason or "")


def test_steps_ramp_up_while_the_guard_holds_and_keep_their_customers() -> None:
    guard = pw.Guard(max_error_rate=0.05, min_calls=50)
    model, _, _ = keyed(0.6, guard=guard, steps=[0.1, 0.3])
    handle = model.canary
    assert handle is not None
    events: list[pw.CanaryEvent] = []
    handle.listeners.append(events.append)
    first: set[int] = set()
    for customer in _customers(5000, 1):
        if model({"customer": customer}) == "c" and handle.fraction == 0.1:
            first.add(customer)
    assert [(e.event, e.fraction) for e in events] == [("advanced", 0.3), ("advanced", 0.6)]
    stats = model.stats().canary
    assert (stats.step, stats.fraction, stats.state) == (2, 0.6, "running")
    assert all(model({"customer": c}) == "c" for c in first)  # a larger share keeps the smaller one's


def test_calls_routed_after_a_breach_never_reach_the_candidate_under_threads() -> None:
    breached = threading.Event()
    entered_after = threading.local()
    late: list[int] = []

    def candidate(x: int) -> str:
        if getattr(entered_after, "flag", False):
            late.append(x)
        raise RuntimeError("bad")

    guard = pw.Guard(max_error_rate=0.5, max_consecutive_failures=5)
    model = pw.ProductionModel(
        lambda x: "p", name="race", fallback=pw.Constant("fb"), canary=pw.Canary(candidate, 0.5, guard=guard)
    )
    handle = model.canary
    assert handle is not None
    handle.listeners.append(lambda event: breached.set())
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def traffic() -> None:
        start.wait()
        try:
            for i in range(400):
                entered_after.flag = breached.is_set()
                model(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=traffic) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and breached.is_set() and late == []
    assert model.stats().canary.state == "rolled_back"


def test_halt_takes_the_candidate_out_by_hand() -> None:
    model, _, candidate = keyed(1.0)
    handle = model.canary
    assert handle is not None
    model({"customer": 1})
    handle.halt("bad dashboards")
    model({"customer": 1})
    assert candidate.calls == 1 and model.stats().canary.reason == "bad dashboards"
    assert repr(handle) == "<CanaryHandle 'shop' rolled_back fraction=0>"


# -- faults ---------------------------------------------------------------------------------------


class BrokenStore(MemoryStore):
    """A store whose reads fail once ``broken`` is set."""

    broken = False

    def get(self, key: str) -> Any:
        if self.broken:
            raise ConnectionError("store down")
        return super().get(key)


def test_a_failing_store_sends_calls_to_the_primary_and_is_counted() -> None:
    store = BrokenStore()
    primary, candidate = Scripted("primary", "p"), Scripted("candidate", "c")
    model = pw.ProductionModel(primary, name="f", canary=pw.Canary(candidate, 1.0, store=store))
    assert model(1) == "c"
    store.broken = True
    assert [model(i) for i in range(3)] == ["p"] * 3
    assert model.stats().canary.faults >= 3


def test_a_raising_listener_and_an_unkeyable_key_are_counted_never_raised() -> None:
    guard = pw.Guard(max_error_rate=0.1, max_consecutive_failures=1)
    model = pw.ProductionModel(
        lambda x: "p",
        name="f",
        fallback=pw.Constant("fb"),
        canary=pw.Canary(Scripted("c", "c", fail=1.0), 1.0, key="customer", guard=guard),
    )
    handle = model.canary
    assert handle is not None
    handle.listeners.append(lambda event: 1 / 0)
    assert model({"customer": 1}) == "fb"  # the breach: the listener raises
    assert model({"customer": object()}) == "p"  # no canonical form: the primary serves
    assert model.stats().canary.faults == 1  # (rolled back: the unkeyable key is not even read)


def test_an_unkeyable_key_is_a_counted_fault() -> None:
    model, _, _ = keyed(1.0)
    assert model({"customer": object()}) == "p"
    assert model.stats().canary.faults == 1


# -- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fraction": 0}, "Canary.fraction"),
        ({"fraction": 1.5}, "Canary.fraction"),
        ({"fraction": 0.5, "key": ""}, "Canary.key"),
        ({"fraction": 0.5, "guard": 0.05}, "Canary.guard"),
        ({"fraction": 0.5, "steps": [0.1, 0.05], "guard": pw.Guard(0.05)}, "Canary.steps must increase"),
        ({"fraction": 0.5, "steps": [0.1, 0.5], "guard": pw.Guard(0.05)}, "Canary.steps must increase"),
        ({"fraction": 0.5, "steps": [0.1]}, "give guard="),
        ({"fraction": 0.5, "steps": "0.1", "guard": pw.Guard(0.05)}, "list of fractions"),
        ({"fraction": 0.5, "guard": pw.Guard(0.05, max_mismatch_rate=0.1)}, "max_mismatch_rate needs shadow"),
        ({"fraction": 0.5, "store": {}}, "Canary.store"),
        ({"fraction": 0.5, "version": 2}, "Canary.version"),
    ],
)
def test_nonsense_settings_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(pw.ConfigurationError, match=re.escape(message)):
        pw.Canary(lambda x: x, **options)


def test_a_candidate_must_be_callable_and_the_canary_is_described() -> None:
    with pytest.raises(pw.ConfigurationError, match=r"Canary\.candidate"):
        pw.Canary(42, 0.1)

    def next_model(x: int) -> int:
        return x

    model = pw.ProductionModel(lambda x: x, name="d", canary=pw.Canary(next_model, 0.1, key="customer"))
    info = model.describe()
    assert info["canary"] == {
        "candidate": "next_model",
        "fraction": 0.1,
        "key": "customer",
        "guard": None,
        "steps": None,
        "store": None,
        "version": None,
    }
    assert "canary" in info["stages"]


@pytest.mark.parametrize("key", ["customer-42", "", "ünï\ud800", 0, -5, 2**80, True, 1.5, ("a", 1), None])
def test_the_buckets_shortcuts_are_the_canonical_forms_hash(key: Any) -> None:
    from hashlib import blake2b

    from prodwrap.policies._canonical import canonical_form

    text = canonical_form("shop", key).encode("utf-8", "surrogatepass")
    assert bucket("shop", key) == int.from_bytes(blake2b(text, digest_size=8).digest(), "big") * 2.0**-64
