from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import numpy as np
import pydantic
import pytest

import prodwrap as pw
from prodwrap._context import within_deadline
from prodwrap._engine import Engine
from prodwrap._stage import Build, Seam, Stage
from prodwrap.policies._cache_stage import CacheCore, compile_cache
from prodwrap.testing import FakeClock


class Counted:
    """A predict that counts its calls and returns a fresh dict of its input and arguments."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        return {"x": x, "args": list(args), "kwargs": kwargs}


def core_of(model: pw.ProductionModel[Any, Any, Any]) -> CacheCore:
    return next(s.core for s in model._engine.stages if s.name == "cache")  # type: ignore[attr-defined, no-any-return]


def assert_nothing_in_flight(model: pw.ProductionModel[Any, Any, Any]) -> None:
    core = core_of(model)
    assert core.flights == {} and core.pending == {} and not any(core.undone.values())


# -- the policy -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"maxsize": 0}, "maxsize"),
        ({"maxsize": True}, "maxsize"),
        ({"maxsize": 2.5}, "maxsize"),
        ({"ttl": 0}, "ttl"),
        ({"ttl": -1.0}, "ttl"),
        ({"ttl": float("inf")}, "ttl"),
        ({"ttl": "300"}, "ttl"),
        ({"key": "customer_id"}, "key"),
        ({"cache_fallbacks": 1}, "cache_fallbacks"),
        ({"copy": None}, "copy"),
    ],
)
def test_nonsense_settings_are_refused_naming_the_setting(kwargs: dict[str, Any], setting: str) -> None:
    with pytest.raises(pw.ConfigurationError, match=f"Cache.{setting}"):
        pw.Cache(**kwargs)


def test_describe_and_the_pipeline_show_the_cache() -> None:
    def by_id(x: Any) -> Any:
        return x["id"]

    model = pw.ProductionModel(Counted(), cache=pw.Cache(maxsize=10, ttl=60, key=by_id))
    assert model.describe()["cache"] == {
        "maxsize": 10,
        "ttl": 60.0,
        "key": "test_describe_and_the_pipeline_show_the_cache.<locals>.by_id",
        "cache_fallbacks": False,
        "copy": True,
    }
    assert model.describe()["stages"] == ["cache", "predict"]
    assert pw.ProductionModel(Counted()).stats().cache is None


# -- hits and keys ----------------------------------------------------------------------------


def test_identical_inputs_in_other_key_orders_hit_and_keep_the_success_path() -> None:
    predict = Counted()
    model = pw.ProductionModel(predict, cache=pw.Cache())
    assert model._engine.fast is not None
    first = model({"a": 1, "b": [1, 2]})
    again = model.predict_detailed({"b": [1, 2], "a": 1})
    assert predict.calls == 1
    assert (again.outcome, again.served_by, again.value, again.attempts) == ("cached", "cache", first, 0)
    stats = model.stats()
    assert stats.outcomes == {"ok": 1, "cached": 1} and stats.served_by == {"primary": 1, "cache": 1}
    cache = stats.cache
    assert (cache.hits, cache.misses, cache.hit_rate, cache.size, cache.waits) == (1, 1, 0.5, 1, 0)
    assert cache.saved_seconds > 0
    assert_nothing_in_flight(model)


async def test_async_hits_too() -> None:
    calls = 0

    async def remote(x: Any) -> str:
        nonlocal calls
        calls += 1
        return f"answer {x['q']}"

    model = pw.ProductionModel(remote, cache=pw.Cache())
    assert model._engine.fast is not None
    assert await model({"q": 1, "r": 2}) == await model({"r": 2, "q": 1}) == "answer 1"
    p = await model.apredict_detailed({"q": 1, "r": 2})
    assert (p.outcome, p.served_by, calls) == ("cached", "cache", 1)


def test_an_array_holding_nan_hits_on_an_equal_copy() -> None:
    predict = Counted()
    model = pw.ProductionModel(predict, cache=pw.Cache())
    x = np.array([[1.0, np.nan], [3.0, 4.0]])
    model(x)
    assert model.predict_detailed(x.copy()).outcome == "cached"
    assert model.predict_detailed(x.astype(np.float32)).outcome == "ok"  # another dtype: another input
    assert predict.calls == 2


class Applicant(pydantic.BaseModel):
    age: int
    income: float


def test_the_key_is_that_of_the_validated_input() -> None:
    predict = Counted()
    model = pw.ProductionModel(predict, input=Applicant, cache=pw.Cache())
    model({"age": 40, "income": 1000})
    assert model.predict_detailed('{"income": 1000.0, "age": 40}').outcome == "cached"
    assert model.predict_detailed(Applicant(age=40, income=1000.0)).outcome == "cached"
    assert model.predict_detailed({"age": 41, "income": 1000}).outcome == "ok"
    assert predict.calls == 2


def test_every_pass_through_argument_is_part_of_the_key() -> None:
    predict = Counted()
    model = pw.ProductionModel(predict, cache=pw.Cache())
    model("q", 1, temperature=0.0, top_p=1.0)
    assert model.predict_detailed("q", 1, top_p=1.0, temperature=0.0).outcome == "cached"  # kwargs in any order
    for args, kwargs in [((), {}), ((2,), {"temperature": 0.0, "top_p": 1.0}), ((1,), {"temperature": 0.7})]:
        p = model.predict_detailed("q", *args, **kwargs)
        assert p.outcome == "ok" and p.value == {"x": "q", "args": list(args), "kwargs": kwargs}
    assert predict.calls == 4


def test_the_version_is_part_of_the_key() -> None:
    one = compile_cache(pw.Cache(), Build("m", "1.0", False, None))[0].core
    two = compile_cache(pw.Cache(), Build("m", "2.0", False, None))[0].core
    assert one.key_of({"a": 1}, (), {}) == one.key_of({"a": 1}, (), {}) != two.key_of({"a": 1}, (), {})
    own = compile_cache(pw.Cache(key=len), Build("m", "1.0", False, None))[0].core
    assert own.key_of("abc", (), {}) == own.key_of("xyz", (), {}) != own.key_of("xyz", (1,), {})


def test_a_key_function_replaces_the_inputs_key_and_is_called_once_per_call() -> None:
    seen: list[Any] = []

    def by_id(x: dict[str, Any]) -> Any:
        seen.append(x)
        return x["id"]

    predict = Counted()
    model = pw.ProductionModel(predict, cache=pw.Cache(key=by_id))
    model({"id": 7, "noise": object()})  # no canonical key, but key= gives one
    assert model.predict_detailed({"id": 7, "noise": object()}).outcome == "cached"
    model({"id": 7, "noise": 1})  # a hit on the success path: keyed once, not again on the walk
    assert predict.calls == 1 and len(seen) == 3


def test_an_input_without_a_key_is_not_cached_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    predict = Counted()
    model = pw.ProductionModel(predict, name="m", cache=pw.Cache())
    with caplog.at_level(logging.WARNING, logger="prodwrap.cache"):
        for _ in range(3):
            assert model.predict_detailed({"f": object()}).outcome == "ok"
    assert predict.calls == 3 and model.stats().cache.unkeyable == 3
    lines = [r for r in caplog.records if r.name == "prodwrap.cache"]
    assert len(lines) == 1  # once per burst
    assert "input['f']: a builtins.object has no canonical key" in lines[0].getMessage()
    assert "pw.Cache(key=...)" in lines[0].getMessage()


def test_a_key_function_that_raises_costs_the_call_nothing() -> None:
    predict = Counted()
    model = pw.ProductionModel(predict, cache=pw.Cache(key=lambda x: x["id"]))
    assert model({"no id": 1}) == {"x": {"no id": 1}, "args": [], "kwargs": {}}
    assert model.predict_detailed({"id": [1]}).outcome == "ok"  # unhashable: not cached either
    assert model.stats().cache.unkeyable == 2 and predict.calls == 2


# -- what is stored ---------------------------------------------------------------------------


def test_entries_expire_after_ttl_on_the_fake_clock(clock: FakeClock) -> None:
    predict = Counted()
    model = pw.ProductionModel(predict, cache=pw.Cache(ttl=10))
    model("a")
    clock.advance(9.9)
    assert model.predict_detailed("a").outcome == "cached"
    clock.advance(0.2)
    assert model.predict_detailed("a").outcome == "ok"
    assert predict.calls == 2 and model.stats().cache.expired == 1
    clock.advance(10.1)
    assert model.stats().cache.size == 0


def test_the_least_recently_used_entry_goes_first() -> None:
    predict = Counted()
    model = pw.ProductionModel(predict, cache=pw.Cache(maxsize=2))
    model("a"), model("b"), model("a"), model("c")  # "b" was used least recently
    assert model.predict_detailed("a").outcome == "cached"
    assert model.predict_detailed("b").outcome == "ok"
    assert model.stats().cache.evictions == 2 and model.stats().cache.size == 2


def flaky(fails: int) -> Any:
    state = {"calls": 0}

    def predict(x: Any) -> str:
        state["calls"] += 1
        if state["calls"] <= fails:
            raise ConnectionError("down")
        return f"primary {x}"

    predict.state = state  # type: ignore[attr-defined]
    return predict


@pytest.mark.parametrize("cache_fallbacks", [False, True])
def test_fallbacks_are_cached_only_when_asked(cache_fallbacks: bool) -> None:
    predict = flaky(fails=1)
    model = pw.ProductionModel(
        predict, fallback=pw.Constant("baseline"), cache=pw.Cache(cache_fallbacks=cache_fallbacks)
    )
    assert model("x") == "baseline"
    p = model.predict_detailed("x")
    if cache_fallbacks:
        assert (p.outcome, p.value, predict.state["calls"]) == ("cached", "baseline", 1)
    else:
        assert (p.outcome, p.value, predict.state["calls"]) == ("ok", "primary x", 2)
        assert model.predict_detailed("x").outcome == "cached"
    assert_nothing_in_flight(model)


def test_a_failed_first_attempt_on_the_success_path_ends_its_flight(clock: FakeClock) -> None:
    predict = flaky(fails=1)
    model = pw.ProductionModel(predict, cache=pw.Cache())
    with pytest.raises(ConnectionError):
        model("x")
    assert_nothing_in_flight(model)
    assert model("x") == "primary x" and model.predict_detailed("x").outcome == "cached"

    retried = pw.ProductionModel(flaky(fails=1), retry=pw.Retry(attempts=2), cache=pw.Cache())
    assert retried("y") == "primary y"  # handed over to the walk, retried: stored all the same
    assert retried.predict_detailed("y").outcome == "cached"
    assert_nothing_in_flight(retried)


def test_an_invalid_output_is_not_cached(clock: FakeClock) -> None:
    outputs = iter([-1.0, 0.5])
    model = pw.ProductionModel(
        lambda x: next(outputs),
        check=lambda y: y >= 0,
        retry=pw.Retry(2, on=pw.OutputValidationError),
        cache=pw.Cache(),
    )
    assert model("x") == 0.5 and model.predict_detailed("x").value == 0.5
    assert_nothing_in_flight(model)


def test_a_caller_mutating_what_it_was_served_changes_nothing_for_the_next() -> None:
    model = pw.ProductionModel(Counted(), cache=pw.Cache())
    first = model("x")
    first["args"].append("mutated by the filling caller")
    hit = model("x")
    assert hit == {"x": "x", "args": [], "kwargs": {}}
    hit["args"].append("mutated by a served caller")
    assert model("x") == {"x": "x", "args": [], "kwargs": {}}

    shared = pw.ProductionModel(Counted(), cache=pw.Cache(copy=False))
    assert shared("x") is shared("x")  # copy=False: the stored object itself

    frozen = pw.ProductionModel(lambda x: Applicant.model_construct(age=1, income=2.0), cache=pw.Cache())
    assert frozen("x") is not frozen("x")  # a mutable model is copied
    immutable = pw.ProductionModel(lambda x: (x, "text"), cache=pw.Cache())
    assert immutable("x") == immutable("x")


def test_an_output_that_cannot_be_copied_is_served_not_stored() -> None:
    lock_maker = Counted()
    model = pw.ProductionModel(lambda x: [lock_maker(x), threading.Lock()], cache=pw.Cache())
    assert len(model("x")) == 2 and len(model("x")) == 2
    assert lock_maker.calls == 2 and model.stats().cache.errors == 2
    assert_nothing_in_flight(model)


# -- decorators ------------------------------------------------------------------------------


def test_the_decorator_bare_with_options_or_a_policy_and_stacked() -> None:
    @pw.cache
    def bare(x: int) -> int:
        return x * 2

    @pw.cache(maxsize=5, ttl=30.0)
    def configured(x: int) -> int:
        return x * 3

    @pw.cache(pw.Cache(maxsize=7))
    @pw.retry(2)
    def stacked(x: int) -> int:
        return x * 4

    assert bare(2) == 4 and bare.predict_detailed(2).outcome == "cached"
    assert bare.describe()["cache"]["maxsize"] == 1024
    assert configured(1) == 3 and configured.describe()["cache"] == pw.Cache(maxsize=5, ttl=30.0).describe()
    assert stacked(1) == 4 and stacked.describe()["cache"]["maxsize"] == 7 and stacked.describe()["retry"] is not None
    assert stacked.predict_detailed(1).outcome == "cached"


# -- single flight ---------------------------------------------------------------------------


def wait_for(condition: Any, what: str) -> None:
    """Poll ``condition`` (bounded: 10 s of real time at most)."""
    for _ in range(10_000):
        if condition():
            return
        time.sleep(0.001)
    raise AssertionError(f"timed out waiting for {what}")


def test_32_concurrent_identical_misses_make_one_predict_call() -> None:
    release = threading.Event()
    calls = 0

    def slow(x: dict[str, int]) -> dict[str, int]:
        nonlocal calls
        calls += 1
        assert release.wait(10)
        return {"y": x["a"] * 2}

    model = pw.ProductionModel(slow, cache=pw.Cache())
    barrier = threading.Barrier(32)
    results: list[Any] = [None] * 32

    def call(i: int) -> None:
        barrier.wait()
        results[i] = model.predict_detailed({"a": 21, "b": i % 2 * 0} if i % 2 else {"b": 0, "a": 21})

    threads = [threading.Thread(target=call, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    wait_for(lambda: model.stats().cache.waits == 31, "31 waiters")
    release.set()
    for t in threads:
        t.join(10)
    assert calls == 1
    assert all(r.value == {"y": 42} for r in results)
    assert sorted(r.outcome for r in results) == ["cached"] * 31 + ["ok"]
    cache = model.stats().cache
    assert (cache.hits, cache.misses, cache.waits) == (31, 1, 31)
    assert_nothing_in_flight(model)


async def test_32_concurrent_async_misses_make_one_predict_call() -> None:
    calls = 0
    model: pw.ProductionModel[Any, Any, Any]

    async def remote(x: str) -> str:
        nonlocal calls
        calls += 1
        for _ in range(10_000):  # until the 31 others wait (bounded)
            if model.stats().cache.waits == 31:
                break
            await asyncio.sleep(0)
        return x.upper()

    model = pw.ProductionModel(remote, cache=pw.Cache())
    results = await asyncio.gather(*(model.apredict_detailed("abc") for _ in range(32)))
    assert calls == 1 and {r.value for r in results} == {"ABC"}
    assert sorted(r.outcome for r in results) == ["cached"] * 31 + ["ok"]
    assert_nothing_in_flight(model)


def test_when_the_flight_fails_the_waiters_call_the_predict_themselves() -> None:
    release = threading.Event()
    calls = 0

    def first_fails(x: str) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            assert release.wait(10)
            raise ConnectionError("down")
        return x * 2

    model = pw.ProductionModel(first_fails, cache=pw.Cache())
    outcomes: dict[int, Any] = {}

    def call(i: int) -> None:
        try:
            outcomes[i] = model("ab")
        except ConnectionError as exc:
            outcomes[i] = exc

    owner = threading.Thread(target=call, args=(0,))
    owner.start()
    wait_for(lambda: calls == 1, "the first call")
    waiters = [threading.Thread(target=call, args=(i,)) for i in range(1, 5)]
    for t in waiters:
        t.start()
    wait_for(lambda: model.stats().cache.waits == 4, "4 waiters")
    release.set()
    for t in [owner, *waiters]:
        t.join(10)
    assert isinstance(outcomes[0], ConnectionError)  # the failure is not shared
    assert [outcomes[i] for i in range(1, 5)] == ["abab"] * 4
    assert 2 <= calls <= 5  # each waiter calls the predict unless another one has filled the key by then
    assert_nothing_in_flight(model)


def test_a_waiter_waits_no_longer_than_its_deadline() -> None:
    release = threading.Event()

    def slow(x: str) -> str:
        assert release.wait(10)
        return "slow"

    model = pw.ProductionModel(slow, fallback=pw.Constant("fallback"), cache=pw.Cache())
    owner = threading.Thread(target=model, args=("q",))
    owner.start()
    wait_for(lambda: core_of(model).flights, "the first call")
    started = time.monotonic()
    with within_deadline(started + 0.05):  # as a calling model's deadline
        p = model.predict_detailed("q")
    assert (p.outcome, p.value) == ("fallback", "fallback") and time.monotonic() - started < 5
    assert isinstance(p.errors[0], pw.PredictionTimeout)
    release.set()
    owner.join(10)
    assert model.predict_detailed("q").outcome == "cached"
    assert_nothing_in_flight(model)


class SaysNo(Stage):
    """An attempt stage whose success-path hook always sends the call to the walk."""

    name = "says no"
    seam = Seam.ATTEMPT

    def __init__(self) -> None:
        self.fast_admit = lambda value, args, kwargs: False


def test_a_later_stage_sending_a_claimed_call_to_the_walk_leaks_nothing() -> None:
    predict = Counted()
    cache = pw.Cache().stages(Build("m", None, False, None))
    engine = Engine(fn=predict, name="m", stages=[*cache, SaysNo()])
    model = pw.ProductionModel(predict)
    model._swap(engine)
    with within_deadline(time.monotonic() + 5):  # (were the claim lost, the call would wait on itself)
        model("x")
    assert model.predict_detailed("x").outcome == "cached" and predict.calls == 1
    assert_nothing_in_flight(model)


async def test_a_cancelled_success_path_call_ends_its_flight() -> None:
    started = asyncio.Event()

    async def hang(x: str) -> str:
        started.set()
        await asyncio.sleep(3600)
        return x

    model = pw.ProductionModel(hang, cache=pw.Cache())
    task = asyncio.ensure_future(model("x"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert_nothing_in_flight(model)


def test_a_record_on_the_success_path_still_fills_the_cache() -> None:
    seen: list[pw.Prediction] = []
    model = pw.ProductionModel(Counted(), cache=pw.Cache(), observers=[seen.append])
    model("x"), model("x")
    assert [p.outcome for p in seen] == ["ok", "cached"]
    assert_nothing_in_flight(model)


def test_two_calls_with_one_input_object_and_other_arguments_keep_their_own_answers() -> None:
    release = threading.Event()

    def predict(x: dict[str, int], *, a: int) -> int:
        if a == 1:
            assert release.wait(10)
        return x["v"] * 10 + a

    model = pw.ProductionModel(predict, cache=pw.Cache())
    x = {"v": 4}  # the same object in both calls
    first = threading.Thread(target=model, args=(x,), kwargs={"a": 1})
    first.start()
    wait_for(lambda: core_of(model).pending, "the first call")
    assert model(x, a=2) == 42  # not made to wait: another key
    release.set()
    first.join(10)
    assert model.predict_detailed(x, a=1).value == 41 and model.predict_detailed(x, a=2).value == 42
    assert model.stats().cache.hits == 2
    assert_nothing_in_flight(model)


class BadKey:
    """A key whose equality raises (a fault inside the lookup itself)."""

    def __hash__(self) -> int:
        return 1

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no comparing")


def test_a_fault_in_the_lookup_costs_the_call_nothing(caplog: pytest.LogCaptureFixture) -> None:
    predict = Counted()
    model = pw.ProductionModel(predict, cache=pw.Cache(key=lambda x: BadKey()))
    model.predict_detailed("a")
    with caplog.at_level(logging.WARNING, logger="prodwrap.cache"):
        p = model.predict_detailed("b")  # its key compares with the first's: the lookup raises
    assert p.outcome == "ok" and predict.calls == 2 and model.stats().cache.errors >= 1
    assert any("lookup failed" in r.getMessage() for r in caplog.records)


def test_a_full_bulkhead_after_the_cache_claim_leaks_nothing() -> None:
    release = threading.Event()

    def slow(x: str) -> str:
        if x == "held":
            assert release.wait(10)
        return x.upper()

    model = pw.ProductionModel(
        slow, bulkhead=pw.Bulkhead(max_concurrent=1), fallback=pw.Constant("busy"), cache=pw.Cache()
    )
    holder = threading.Thread(target=model, args=("held",))
    holder.start()
    wait_for(lambda: core_of(model).pending, "the held call")
    assert model("other") == "busy"  # claimed by the cache, then refused by the bulkhead
    release.set()
    holder.join(10)
    assert model.predict_detailed("other").outcome == "ok"  # the fallback was not stored
    assert model.predict_detailed("held").outcome == "cached"
    assert_nothing_in_flight(model)


def test_a_hit_is_served_on_the_success_path_and_counted_as_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    from prodwrap._engine import Engine

    calls: list[int] = []
    walked: list[int] = []
    walk = Engine.walk

    def counting(self: Engine, *args: Any, **kwargs: Any) -> Any:
        walked.append(1)
        return walk(self, *args, **kwargs)

    monkeypatch.setattr(Engine, "walk", counting)
    model = pw.ProductionModel(lambda x: calls.append(x) or x * 2, cache=pw.Cache(maxsize=8))
    assert model._engine.fast is not None
    assert model(3) == 6  # a miss: the success path calls the predict
    assert model(3) == 6  # a hit: served by fast_admit, never walked
    assert (calls, walked) == ([3], [])
    stats = model.stats()
    assert stats.outcomes == {"ok": 1, "cached": 1} and stats.served_by == {"primary": 1, "cache": 1}


def test_flat_keys_tell_apart_what_canonical_keys_tell_apart() -> None:
    from prodwrap.policies._cache_keys import flat_key

    class Point(pydantic.BaseModel):
        x: int | float | bool
        label: str | None = None

    keys = {flat_key(Point(x=v)) for v in (1, 1.0, True)}
    assert len(keys) == 3  # equal under ==, different inputs
    assert flat_key(Point(x=0.0)) is None and flat_key(Point(x=float("nan"))) is None  # canonical form decides
    assert flat_key(Point(x=2, label="a")) == flat_key(Point(x=2, label="a"))
    assert flat_key([1, 2]) is None and flat_key(-0.0) is None and flat_key("s") == (str, "s")


def test_a_model_class_key_is_compiled_from_its_first_flat_instance() -> None:
    from prodwrap.policies import _cache_keys

    class Reading(pydantic.BaseModel):
        n: int | str | list[int]
        level: float

    assert _cache_keys.flat_key(Reading(n=[1], level=1.5)) is None  # not flat: nothing learnt yet
    first = _cache_keys.flat_key(Reading(n=1, level=1.5))
    keyer = _cache_keys.KEYERS[Reading]
    assert "<prodwrap cache key of" in keyer.__code__.co_filename  # compiled for int, float
    assert (
        first == _cache_keys.flat_key(Reading(n=1, level=1.5)) == (Reading, 1, 1.5)
    )  # the first is keyed alike (one flat tuple)
    assert _cache_keys.flat_key(Reading(n="1", level=1.5)) == (Reading, ("1", 1.5), (str, float))  # other types
    assert (
        _cache_keys.flat_key(Reading(n=1, level=-0.0)) is None and _cache_keys.flat_key(Reading(n=1, level=0.0)) is None
    )
    assert _cache_keys.flat_key(Reading(n=[2], level=1.5)) is None


def test_past_the_remembered_classes_keys_are_still_equal_for_equal_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    from prodwrap.policies import _cache_keys

    monkeypatch.setattr(_cache_keys, "_REMEMBERED", 0)

    class Unremembered(pydantic.BaseModel):
        x: int

    model = pw.ProductionModel(lambda u: u.x * 2, input=Unremembered, cache=pw.Cache(maxsize=8))
    assert model({"x": 2}) == model({"x": 2}) == 4
    assert Unremembered not in _cache_keys.KEYERS and model.stats().cache.hits == 1


def test_a_model_with_extra_fields_is_keyed_by_them_too() -> None:
    from prodwrap.policies._cache_keys import flat_key

    class Open(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="allow")
        x: int

    assert flat_key(Open(x=1)) is not None  # no extra field: flat
    assert flat_key(Open(x=1, y=2)) is None  # extra fields: the canonical form has them
    model = pw.ProductionModel(lambda o: o.model_dump(), input=Open, cache=pw.Cache(maxsize=8))
    assert model({"x": 1, "y": 2}) == {"x": 1, "y": 2}
    assert model({"x": 1, "y": 3}) == {"x": 1, "y": 3}  # not the first call's entry
    assert model({"x": 1, "y": 3}) == {"x": 1, "y": 3} and model.stats().cache.hits == 1

    class Closed(pydantic.BaseModel):  # extra="ignore", but an instance may have extras all the same
        x: int

    try:
        a, b = (Closed.model_validate({"x": 1, "y": y}, extra="allow") for y in (2, 3))  # type: ignore[call-arg]
    except TypeError:  # (a pydantic without per-call extra=)
        return
    keyed = pw.ProductionModel(lambda c: c.model_extra, cache=pw.Cache(maxsize=8))
    assert (keyed(a), keyed(b)) == ({"y": 2}, {"y": 3}) and keyed.stats().cache.hits == 0


def test_a_hit_without_a_record_counts_as_one_with_a_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """A success-path hit makes no record when no observer needs one; its stats, its ledger
    entry (tags and a calling model's included) and its cache counts are a recorded hit's."""
    from prodwrap import _record

    made: list[int] = []
    init = _record.CallRecord.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        made.append(1)
        init(self, *args, **kwargs)

    def run(observers: list[Any]) -> tuple[Any, ...]:
        ledger = pw.Ledger()
        model = pw.ProductionModel(
            lambda x: x * 2, cost=pw.PerCall("0.01"), ledger=ledger, cache=pw.Cache(maxsize=8), observers=observers
        )
        caller = pw.ProductionModel(lambda x: 1 / 0, fallback=model, name="caller", ledger=ledger)
        model(1)  # the miss that fills the key
        made.clear()
        model(1)
        with pw.context(customer="acme"):
            model(1)
        assert caller(1) == 2  # a hit for a calling model (its fallback)
        hits = len(made)
        stats = model.stats()
        return (
            hits,
            stats.calls,
            stats.outcomes,
            stats.served_by,
            stats.cost,
            stats.cache.hits,
            ledger.calls(),
            ledger.total(by="outcome"),
            ledger.total(by="customer"),
        )

    monkeypatch.setattr(_record.CallRecord, "__init__", counting)
    quiet, recorded = run([]), run([lambda p: None])
    assert quiet[0] == 1  # the calling model's own record only
    assert recorded[0] == 4  # the same with a record for each hit
    assert quiet[1:] == recorded[1:]
    assert quiet[2] == {"cached": 3, "ok": 1}


def test_two_first_instances_at_once_compile_one_key_for_their_class(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two threads with the first instances of a class (an int, a float) both reach the
    compile: the second waits for the first's, and keys with it (else its own compile would
    replace the first's, and the first's key of 1 would equal the second's of 1.0)."""
    from prodwrap.policies import _cache_keys

    class Number(pydantic.BaseModel):
        x: int | float

    second_waits = threading.Event()

    class Watched:
        """The learning lock, telling when a second thread waits for it."""

        def __init__(self) -> None:
            self.lock = threading.Lock()

        def __enter__(self) -> None:
            if not self.lock.acquire(blocking=False):
                second_waits.set()
                self.lock.acquire()

        def __exit__(self, *exc: object) -> None:
            self.lock.release()

    compile_key = _cache_keys._compiled
    entered = threading.Event()

    def slow_compile(*args: Any) -> Any:
        entered.set()
        assert second_waits.wait(timeout=10), "the second thread never waited"
        return compile_key(*args)

    monkeypatch.setattr(_cache_keys, "_LEARNING", Watched(), raising=False)
    monkeypatch.setattr(_cache_keys, "_compiled", slow_compile)
    keys: dict[str, Any] = {}

    def first() -> None:
        keys["int"] = _cache_keys.flat_key(Number(x=1))

    def second() -> None:
        entered.wait(timeout=10)
        keys["float"] = _cache_keys.flat_key(Number(x=1.5))

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    monkeypatch.setattr(_cache_keys, "_compiled", compile_key)
    assert keys["int"] == _cache_keys.flat_key(Number(x=1)) == (Number, 1)  # the class's key: for ints
    assert keys["float"] == (Number, (1.5,), (float,))  # a float: its type in its key
    assert _cache_keys.flat_key(Number(x=1.0)) != keys["int"]


def test_keying_an_input_while_a_key_is_compiled_on_the_same_thread_never_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prodwrap.policies import _cache_keys

    class Outer(pydantic.BaseModel):
        x: int

    class Inner(pydantic.BaseModel):
        y: int

    compile_key = _cache_keys._compiled
    nested: list[Any] = []

    def reentering(cls: type, get: Any, kinds: Any) -> Any:
        if cls is Outer:  # a finaliser (or signal handler) run meanwhile keys an input of its own
            nested.append(_cache_keys.flat_key(Inner(y=2)))
        return compile_key(cls, get, kinds)

    monkeypatch.setattr(_cache_keys, "_compiled", reentering)
    done: list[Any] = []
    keying = threading.Thread(target=lambda: done.append(_cache_keys.flat_key(Outer(x=1))), daemon=True)
    keying.start()
    keying.join(timeout=10)
    assert done == [(Outer, 1)] and nested == [(Inner, 2)]


def test_an_input_missing_a_field_is_not_cached_and_the_warning_names_the_field(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Point(pydantic.BaseModel):
        x: int
        y: int

    calls: list[Any] = []
    model = pw.ProductionModel(lambda p: calls.append(p) or 1, name="points", cache=pw.Cache())
    model(Point(x=1, y=2))  # the class's key is compiled from this one
    with caplog.at_level(logging.WARNING, "prodwrap.cache"):
        assert model(Point.model_construct(x=1)) == model(Point.model_construct(x=1)) == 1
    assert len(calls) == 3 and model.stats().cache.unkeyable == 2
    assert "'Point' object has no attribute 'y'" in caplog.text  # the field, not a bare KeyError('y')
