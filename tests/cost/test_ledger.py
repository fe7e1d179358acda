"""pw.Ledger: exact totals by model, version, outcome and tag; shared across models and stores."""

from __future__ import annotations

import gc
import itertools
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

import prodwrap as pw
from prodwrap._context import NO_TAGS
from prodwrap.state import MemoryStore
from tests.support import Raising


def flaky(fails: set[int]) -> Any:
    def predict(x: int) -> int:
        if x in fails:
            raise ValueError(x)
        return x

    return predict


def test_totals_by_every_dimension() -> None:
    ledger = pw.Ledger()
    a = pw.ProductionModel(lambda x: x, name="a", version="1", cost=pw.PerCall("0.01"), ledger=ledger)
    b = pw.ProductionModel(
        flaky({0}), name="b", version="2", cost=pw.PerCall("0.10"), ledger=ledger, fallback=pw.Constant(-1)
    )
    with pw.context(customer="acme"):
        a(1)
        a(2)
        b(0)  # fails, served by the constant: its one attempt is charged
    with pw.context(customer="initech", team="x"):
        b(1)
    a(3)
    assert ledger.total() == Decimal("0.23")
    assert ledger.calls() == 5
    assert ledger.total(by="model") == {"b": Decimal("0.20"), "a": Decimal("0.03")}
    assert ledger.total(by="version") == {"2": Decimal("0.20"), "1": Decimal("0.03")}
    assert ledger.total(by="outcome") == {"ok": Decimal("0.13"), "fallback": Decimal("0.10")}
    assert ledger.total(by="served_by") == {"primary": Decimal("0.23")}
    assert ledger.total(by="customer") == {"acme": Decimal("0.12"), "initech": Decimal("0.10"), None: Decimal("0.01")}
    assert sum(ledger.total(by="customer").values()) == ledger.total()
    assert ledger.total(by="team") == {"x": Decimal("0.10"), None: Decimal("0.13")}
    assert ledger.total(by="nothing") == {None: Decimal("0.23")}
    assert ledger.cost_per_request() == Decimal("0.046")
    assert a.stats().cost == Decimal("0.03") and b.stats().cost == Decimal("0.20")  # each model's own


def test_percentiles_of_the_cost_per_call() -> None:
    model = pw.ProductionModel(lambda x: x, cost=pw.PerItem("0.01"))
    assert model.ledger is not None
    assert model.ledger.percentile(0.5) is None and model.ledger.cost_per_request() is None
    for n in range(1, 101):  # calls costing 0.01 .. 1.00
        model(list(range(n)))
    ledger = model.ledger
    assert ledger.percentile(0.5) == Decimal("0.505")
    assert ledger.percentile(0.95) == Decimal("0.9505")
    assert ledger.percentile(0) == Decimal("0.01") and ledger.percentile(1) == Decimal("1.00")
    with pytest.raises(ValueError, match="between 0 and 1"):
        ledger.percentile(95)


def test_the_percentile_window_keeps_the_latest_calls() -> None:
    ledger = pw.Ledger(window=10)
    cheap = pw.ProductionModel(lambda x: x, name="cheap", cost=pw.PerCall("0.01"), ledger=ledger)
    dear = pw.ProductionModel(lambda x: x, name="dear", cost=pw.PerCall("1"), ledger=ledger)
    for _ in range(50):
        cheap(1)
    for _ in range(10):
        dear(1)
    assert ledger.percentile(0.5) == Decimal("1.00")
    assert ledger.total() == Decimal("10.50")


def test_a_ledger_shared_through_a_store_sums_both() -> None:
    store = MemoryStore()
    one, two = pw.Ledger(store, name="spend"), pw.Ledger(store, name="spend")  # two processes, say
    pw.ProductionModel(lambda x: x, name="a", cost=pw.PerCall("0.5"), ledger=one)(1)
    with pw.context(customer="acme"):
        pw.ProductionModel(lambda x: x, name="b", cost=pw.PerCall("0.25"), ledger=two)(1)
    assert one.total() == Decimal("0.50")  # each ledger's calls reach the store in batches, and at its reads
    two.drain()
    assert one.total() == two.total() == Decimal("0.75")
    assert two.total(by="model") == {"a": Decimal("0.50"), "b": Decimal("0.25")}
    assert one.total(by="customer") == {"acme": Decimal("0.25"), None: Decimal("0.50")}
    assert pw.Ledger(store, name="other").total() == 0


def test_concurrent_threads_lose_no_charge() -> None:
    ledger = pw.Ledger()
    models = [pw.ProductionModel(lambda x: x, name=f"m{i}", cost=pw.PerCall("0.0001"), ledger=ledger) for i in range(2)]
    threads, per_thread = 16, 2500
    start = threading.Barrier(threads)

    def work(i: int) -> None:
        start.wait()
        with pw.context(customer=f"c{i % 2}"):
            for _ in range(per_thread):
                models[i % 2](1)
                if i == 0 and _ % 1000 == 0:
                    ledger.total()  # reads while others write

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert ledger.total() == Decimal("4.0000")
    assert ledger.calls() == threads * per_thread
    assert ledger.total(by="customer") == {"c0": Decimal("2.00"), "c1": Decimal("2.00")}
    assert models[0].stats().cost == models[1].stats().cost == Decimal("2.00")


def test_untagged_calls_are_counted_exactly_under_threads_and_mix_with_tagged_ones() -> None:
    ledger = pw.Ledger()
    model = pw.ProductionModel(lambda x: x, name="m", cost=pw.PerCall("0.0001"), ledger=ledger)
    assert "tally0.append(None)" in model._engine.run_sync.__source__  # counted inline
    threads, per_thread = 16, 2500
    start = threading.Barrier(threads)

    def work(i: int) -> None:
        start.wait()
        for n in range(per_thread):
            if i == 0 and n % 10 == 0:
                with pw.context(customer="acme"):
                    model(1)  # tagged: an entry of its own
            else:
                model(1)
            if i == 1 and n % 1000 == 0:
                ledger.total()  # reads (folds) while others append

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    calls = threads * per_thread
    assert ledger.calls() == model.stats().calls == calls
    assert ledger.total() == model.stats().cost == Decimal("0.0001") * calls
    assert ledger.total(by="customer") == {None: Decimal("3.975"), "acme": Decimal("0.025")}
    assert ledger.total(by="outcome") == {"ok": Decimal("4.0000")}
    assert ledger.cost_per_request() == Decimal("0.0001") and ledger.percentile(0.5) == Decimal("0.0001")


def _owner() -> None:
    """A stand-in for the cost hook that counts in a tally."""


def test_the_tally_is_private_as_the_kind_it_takes_is() -> None:
    assert not hasattr(pw.Ledger, "tally")  # (it takes a Kind, the ledger's internal tuple)
    assert callable(pw.Ledger._tally)


def test_a_kind_has_one_tally_and_what_it_counted_outlives_its_model() -> None:
    ledger = pw.Ledger()
    kind = (object(), NO_TAGS, "ok", None, 0)
    assert ledger._tally(kind, 7, _owner) is ledger._tally(kind, 7, _owner)  # one list per kind and amount
    assert ledger._tally(kind, 8, _owner) is not ledger._tally(kind, 7, _owner)
    model = pw.ProductionModel(lambda x: x, name="m", cost=pw.PerCall("0.5"), ledger=ledger)
    other = model.with_options(name="n")
    for i in range(10):
        model(i)  # fewer than a batch: only counted in their tallies
    other(0)
    del model, other
    gc.collect()
    assert ledger.calls() == 11 and ledger.total() == Decimal("5.5")  # folded at the read
    assert ledger.total(by="model") == {"m": Decimal("5.0"), "n": Decimal("0.5")}


def test_a_tally_is_dropped_once_every_hook_counting_in_it_is_gone() -> None:
    ledger = pw.Ledger()
    keep = pw.ProductionModel(lambda x: x, name="kept", cost=pw.PerCall("1"), ledger=ledger)
    kept = len(ledger._tallies)
    for i in range(200):
        pw.ProductionModel(lambda x: x, name=f"m{i}", cost=pw.PerCall("1"), ledger=ledger)(i)
    gc.collect()
    assert ledger.calls() == 200  # every count taken, the dropped tallies' last ones included
    assert len(ledger._tallies) == kept and len(ledger._owners) == kept  # the models' tallies gone
    keep(0)
    keep.stage(lambda x: x, version="2")  # a swap compiles the same kinds again: they share a tally
    keep(1)
    assert ledger.calls() == 202 and len(ledger._tallies) <= 2 * kept


def test_a_call_counted_while_the_fold_takes_a_tally_is_kept_for_the_next_fold() -> None:
    """Deterministic: the list appends one ``None`` right after the fold reads its length."""
    ledger = pw.Ledger()
    model = pw.ProductionModel(lambda x: x, name="m", cost=pw.PerCall("1"), ledger=ledger)
    model(0)  # (its tally made, one call in it)
    (key, (kind, each, counted)), *_ = ledger._tallies.items()

    class Racing(list[None]):
        racing = True

        def __len__(self) -> int:
            n = super().__len__()
            if self.racing:
                self.racing = False
                self.append(None)  # a call counted between the fold's len() and its del
            return n

    racing = Racing(counted)
    ledger._tallies[key] = (kind, each, racing)
    assert ledger.calls() == 1 and list.__len__(racing) == 1  # the late one left in the list
    assert ledger.calls() == 2  # and counted by the next fold


def test_a_second_ledger_on_the_store_sees_the_calls_within_a_batch() -> None:
    first = pw.Ledger()
    model = pw.ProductionModel(lambda x: x, name="m", cost=pw.PerCall("0.01"), ledger=first)
    second = pw.Ledger(first.store)  # reads the same totals (the same name)
    for i in range(100_000):
        model(i)
    assert second.calls() > 100_000 - 1024  # the success path folds every 1024 calls
    assert first.calls() == second.calls() == 100_000  # (first's read folded the rest)


def test_the_percentile_window_is_the_latest_calls_in_order() -> None:
    fails = itertools.count()
    flaky = [True]

    def predict(x: int) -> int:
        if flaky[0] and next(fails) % 2 == 0:
            raise ConnectionError
        return x

    retried = pw.Retry(attempts=2, on=ConnectionError, wait=pw.backoff(initial=0.0))
    model = pw.ProductionModel(predict, cost=pw.PerCall("0.01"), retry=retried)
    for _ in range(500):
        model(0)  # the older calls: retried, 0.02 each (recorded on the walk)
    flaky[0] = False
    for _ in range(10_000):
        model(1)  # the latest: 0.01 each (the success path)
    assert model.ledger.percentile(0.95) == Decimal("0.01")
    assert model.ledger.total() == Decimal("110.00")


def test_the_percentile_window_takes_the_latest_of_many_success_path_calls() -> None:
    ledger = pw.Ledger(window=4)
    cheap = pw.ProductionModel(lambda x: x, name="cheap", cost=pw.PerCall("0.01"), ledger=ledger)
    dear = pw.ProductionModel(lambda x: x, name="dear", cost=pw.PerCall("1"), ledger=ledger)
    for _ in range(100):
        dear(1)
    ledger.drain()
    for _ in range(10_000):
        cheap(1)
    assert ledger.percentile(1.0) == Decimal("0.01")  # the window holds 4 of the cheap calls
    assert ledger.total() == Decimal("200")


class FailingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.failing = True

    def swap(self, key: str, expected: Any, new: Any) -> bool:
        if self.failing:
            raise ConnectionError("store down")
        return super().swap(key, expected, new)


def test_a_failing_store_never_breaks_a_prediction_and_totals_catch_up(caplog: pytest.LogCaptureFixture) -> None:
    store = FailingStore()
    ledger = pw.Ledger(store)
    model = pw.ProductionModel(lambda x: x * 2, cost=pw.PerCall("0.01"), ledger=ledger)
    with pw.context(customer="acme"):
        assert [model(i) for i in range(3000)][-1] == 5998  # folds (every 1024 calls) fail underneath
    assert ledger.faults > 0
    assert ledger.total() == 0  # the store has taken nothing yet
    assert "store down" in caplog.text
    store.failing = False
    assert ledger.total() == Decimal("30.00")
    assert ledger.total(by="customer") == {"acme": Decimal("30.00")}
    assert model.stats().cost == Decimal("30.00")


def test_a_tag_with_too_many_values_folds_the_rest_into_other() -> None:
    ledger = pw.Ledger(max_values=3)
    model = pw.ProductionModel(lambda x: x, cost=pw.PerCall("1"), ledger=ledger)
    for i in range(5):
        with pw.context(request_id=i):
            model(i)
    by = ledger.total(by="request_id")
    assert by == {"<other>": Decimal("2.00"), "0": Decimal("1.00"), "1": Decimal("1.00"), "2": Decimal("1.00")}


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [({"store": object()}, "store"), ({"name": ""}, "name"), ({"window": 0}, "window"), ({"max_values": -1}, "max")],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, Any], setting: str) -> None:
    with pytest.raises(pw.ConfigurationError, match=setting):
        pw.Ledger(**kwargs)


def test_ledger_needs_something_to_record() -> None:
    with pytest.raises(pw.ConfigurationError, match="cost="):
        pw.ProductionModel(lambda x: x, ledger=pw.Ledger())
    with pytest.raises(pw.ConfigurationError, match=r"pw\.Ledger"):
        pw.ProductionModel(lambda x: x, cost=pw.PerCall("1"), ledger="ledger")  # type: ignore[arg-type]


def test_tag_totals_add_up_to_the_total_with_none_and_look_alike_values() -> None:
    ledger = pw.Ledger()
    model = pw.ProductionModel(lambda x: x, cost=pw.PerCall("1.00"), ledger=ledger)
    for customer, n in ((None, 3), ("acme", 1), (1, 1), (True, 1)):
        for _ in range(n):
            with pw.context(customer=customer):
                model(0)
    for _ in range(5):
        model(0)  # untagged
    by = ledger.total(by="customer")
    assert sum(by.values()) == ledger.total() == Decimal("11.00")
    assert by[None] == Decimal("8.00")  # tagged None and untagged, together
    assert by["1"] == by["True"] == Decimal("1.00")  # equal under ==, but two texts: two values


def test_tag_values_are_keyed_by_their_text_as_budget_scopes_are() -> None:
    ledger = pw.Ledger()
    budget = pw.Budget("100", by="customer")
    model = pw.ProductionModel(lambda x: x, cost=pw.PerCall("0.01"), ledger=ledger, budget=budget)
    for customer in ("acme", 1, "1", ["eu", "us"], ["eu", "us"], ("acme", ["eu"])):  # lists: never unhashable
        with pw.context(customer=customer):
            model(0)
    model(0)  # untagged
    by = ledger.total(by="customer")
    assert by == {
        "1": Decimal("0.02"),  # 1 and "1": one text
        "['eu', 'us']": Decimal("0.02"),
        "('acme', ['eu'])": Decimal("0.01"),
        "acme": Decimal("0.01"),
        None: Decimal("0.01"),
    }
    (spent,) = model.stats().budget
    assert set(spent.scopes) == {f"customer={text}" for text in by}  # the budget's scopes, one for one
    indexed = list(ledger._index.values("tag:customer"))
    assert len(indexed) == 4 and all(isinstance(v, str) for v in indexed)  # (a store holds text)


def test_a_raw_tag_value_an_older_ledger_indexed_in_the_store_counts_under_its_text() -> None:
    store = MemoryStore()
    for key, value in (("index:tag:customer", (7,)), ("by:tag:customer:7", 10**12), ("units", 10**12)):
        store.swap(f"ledger:{key}", None, value)  # as a ledger keying raw values wrote them
    ledger = pw.Ledger(store)
    model = pw.ProductionModel(lambda x: x, cost=pw.PerCall("1"), ledger=ledger)
    with pw.context(customer=7):
        model(0)
    assert ledger.total(by="customer") == {"7": Decimal("2.00")}


@pytest.mark.parametrize("fast", [True, False], ids=["success path", "walk"])
def test_equal_tag_values_of_other_texts_in_one_batch_keep_their_own_texts(fast: bool) -> None:
    observers = [] if fast else [lambda p: None]
    model = pw.ProductionModel(lambda x: x, cost=pw.PerCall("1"), observers=observers)
    for customer in (1, True, True, 1.0, 1, Decimal("1.0"), Decimal("1")):  # equal to each other under ==
        with pw.context(customer=customer, region="eu"):
            model(0)
    assert model.ledger is not None
    by = model.ledger.total(by="customer")
    assert by == {"1": Decimal("3.00"), "True": Decimal("2.00"), "1.0": Decimal("2.00")}


@pytest.mark.parametrize("fast", [True, False], ids=["success path", "walk"])
def test_a_shared_ledger_attributes_a_fallback_models_spend_to_the_call_it_served(fast: bool) -> None:
    shared = pw.Ledger()

    def down(x: int) -> float:
        raise ConnectionError("down")

    observers = [] if fast else [lambda p: None]  # an observer of the fallback's own: its calls take a record
    baseline = pw.ProductionModel(lambda x: 0.5, name="B", cost=pw.PerCall("0.003"), ledger=shared, observers=observers)
    llm = pw.ProductionModel(
        down, name="A", retry=pw.Retry(attempts=2), cost=pw.PerCall("0.002"), fallback=baseline, ledger=shared
    )
    for i in range(3):
        assert llm.predict_detailed(i).cost == Decimal("0.007")
    assert shared.total() == Decimal("0.021")
    assert shared.calls() == 3  # the calls made, not one per model they went through
    assert shared.total(by="served_by") == {"primary": Decimal("0.012"), "B": Decimal("0.009")}
    assert shared.total(by="outcome") == {"fallback": Decimal("0.021")}
    assert shared.total(by="model") == {"A": Decimal("0.012"), "B": Decimal("0.009")}
    assert baseline.stats().cost == Decimal("0.009")  # the fallback's own view keeps its spend


@pytest.mark.parametrize("fast", [True, False], ids=["success path", "walk"])
def test_no_tag_value_loses_splits_or_doubles_a_batch(bad_tag: tuple[Callable[[], object], str], fast: bool) -> None:
    """A tag value that does not hash, compare or print, among a batch's calls (the first fold
    at 1024 calls holds them): every call's money and count reaches the totals once."""
    make, text = bad_tag
    observers = [] if fast else [lambda p: None]  # an observer: the calls take a record
    model = pw.ProductionModel(lambda x: 1, cost=pw.PerCall("0.01"), observers=observers)
    ledger = model.ledger
    assert ledger is not None
    for i in range(2003):
        with pw.context(customer=make() if 1000 <= i < 1003 else "acme"):  # a fresh value each
            model(i)
    assert model.stats().cost == ledger.total() == Decimal("20.03")
    assert ledger.calls() == model.stats().calls == 2003 and ledger.faults == 0
    by = ledger.total(by="customer")
    assert by.pop("acme") == Decimal("20.00")
    assert sum(by.values()) == Decimal("0.03")
    assert {key if isinstance(key, str) else repr(key) for key in by} == {text}  # under its text


def test_a_tag_value_that_does_not_hash_is_counted_under_its_text() -> None:
    ledger = pw.Ledger()
    model = pw.ProductionModel(lambda x: 1, cost=pw.PerCall("1"), ledger=ledger)
    for customer in (["eu", "us"], ("acme", ["eu-west"]), {"id": 7}, ("acme", ["eu-west"])):
        with pw.context(customer=customer):
            model(0)
    with pw.context(customer=Raising()):
        model(0)
    assert ledger.total(by="customer") == {
        "('acme', ['eu-west'])": Decimal("2.00"),
        "<Raising>": Decimal("1.00"),  # not even its repr: its type's name
        "['eu', 'us']": Decimal("1.00"),
        "{'id': 7}": Decimal("1.00"),
    }
