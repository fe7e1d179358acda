"""The success-path lookup compiled for a model's declared input class
(``prodwrap.policies._cache_hit``): it keys as ``_cache_keys`` does, and hands every input it
does not key to the general hook."""

from __future__ import annotations

import math
from typing import Any

import pydantic
import pytest

import prodwrap as pw
from prodwrap.policies import _cache_keys


class Reading(pydantic.BaseModel):
    sensor: str
    value: int | float
    level: float


def counted(model_input: Any = Reading, **cache: Any) -> tuple[pw.ProductionModel[Any, Any, Any], list[Any]]:
    calls: list[Any] = []

    def predict(r: Any, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        calls.append(r)
        return (r.sensor, r.value, r.level, args, tuple(sorted(kwargs.items())))

    return pw.ProductionModel(predict, input=model_input, cache=pw.Cache(**cache)), calls


def compiled_hook(model: pw.ProductionModel[Any, Any, Any]) -> bool:
    fast = model._engine.fast
    assert fast is not None and fast.admit_one is not None
    return fast.admit_one.__code__.co_filename.startswith("<prodwrap cache lookup of ")


def test_the_declared_class_is_keyed_inline_once_its_key_is_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    model, calls = counted()
    assert compiled_hook(model)
    raw = {"sensor": "t1", "value": 3, "level": 1.5}
    model(raw)  # the class's key is compiled from this one
    model(raw)  # a hit by the general hook: the inline one learns the class's field types
    keyer = _cache_keys.KEYERS[Reading]

    def unused(value: Any) -> Any:
        raise AssertionError("the inline lookup keys the declared class itself")

    monkeypatch.setitem(_cache_keys.KEYERS, Reading, unused)
    assert model(raw) == model(raw) == ("t1", 3, 1.5, (), ())
    monkeypatch.setitem(_cache_keys.KEYERS, Reading, keyer)
    stats = model.stats()
    assert len(calls) == 1 and stats.cache.hits == 3 and stats.cache.unkeyable == 0
    assert stats.outcomes == {"ok": 1, "cached": 3}


@pytest.mark.parametrize(
    ("first", "other", "same"),
    [
        ({"value": 1}, {"value": 1.0}, False),  # another type than the usual one: 1 and 1.0 differ
        ({"value": 1}, {"value": True}, True),  # (validated: True is the int 1)
        ({"level": 0.0}, {"level": -0.0}, False),  # zero floats: the canonical form tells them apart
        ({"level": 2.0}, {"level": 2}, True),  # (validated: 2 is the float 2.0)
    ],
)
def test_what_the_inline_lookup_does_not_key_is_keyed_as_before(
    first: dict[str, Any], other: dict[str, Any], same: bool
) -> None:
    model, calls = counted()
    base = {"sensor": "t1", "value": 3, "level": 1.5}
    model(base)
    model(base)  # (learnt)
    a, b = {**base, **first}, {**base, **other}
    assert model(a) == model(a)
    assert model(b) == model(b)
    assert len(calls) == (2 if same else 3) and model.stats().cache.hits == (4 if same else 3)
    assert [repr(c.value) + repr(c.level) for c in calls[1:]] == [
        repr(Reading(**x).value) + repr(Reading(**x).level) for x in ([a] if same else [a, b])
    ]


def test_nan_hits_nan_and_arguments_are_part_of_the_key() -> None:
    model, calls = counted()
    plain = {"sensor": "t1", "value": 3, "level": 1.5}
    nan = {**plain, "level": math.nan}
    model(plain)
    model(plain)  # (learnt)
    model(nan)
    assert model(nan)[0] == "t1" and len(calls) == 2  # NaN: the canonical form, every NaN alike
    model(plain, temperature=0.5)
    assert model(plain, temperature=0.5)[4] == (("temperature", 0.5),)
    assert model(plain, temperature=0.7)[4] == (("temperature", 0.7),)
    assert model(plain, 1)[3] == (1,)
    assert len(calls) == 5 and model.stats().cache.hits == 3


def test_extra_fields_of_the_declared_class_are_part_of_the_key() -> None:
    class Open(pydantic.BaseModel, extra="allow"):
        x: int

    model = pw.ProductionModel(lambda o: o.model_extra, input=Open, cache=pw.Cache())
    model({"x": 1})
    model({"x": 1})  # (learnt)
    assert [model({"x": 1, "y": y}) for y in (2, 3, 2)] == [{"y": 2}, {"y": 3}, {"y": 2}]
    assert model.stats().cache.hits == 2


def test_a_subclass_and_extra_fields_are_not_the_declared_class_s_plain_instances() -> None:
    class Labelled(Reading):
        model_config = pydantic.ConfigDict(extra="allow")

    model, calls = counted()
    raw = {"sensor": "t1", "value": 3, "level": 1.5}
    model(raw)
    model(raw)
    model(Labelled(**raw))  # its own entry (its class is in the key)
    model(Labelled(**raw))
    model(Labelled(**raw, note="x"))  # extra fields: keyed by them too
    model(Labelled(**raw, note="y"))
    assert [type(c).__name__ for c in calls] == ["Reading", "Labelled", "Labelled", "Labelled"]
    assert [c.model_extra for c in calls[1:]] == [{}, {"note": "x"}, {"note": "y"}]
    assert model.stats().cache.hits == 2


def test_past_the_remembered_classes_the_general_hook_keys_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    class Unremembered(pydantic.BaseModel):
        x: int

    monkeypatch.setattr(_cache_keys, "_REMEMBERED", 0)
    model = pw.ProductionModel(lambda u: u.x, input=Unremembered, cache=pw.Cache())
    assert [model({"x": 1}) for _ in range(4)] == [1] * 4
    assert Unremembered not in _cache_keys.USUAL and model.stats().cache.hits == 3


@pytest.mark.parametrize("cache", [{"ttl": 60.0}, {"key": lambda r: r.sensor}])
def test_a_ttl_or_a_key_function_keeps_the_general_hook(cache: dict[str, Any]) -> None:
    model, calls = counted(**cache)
    assert not compiled_hook(model)
    raw = {"sensor": "t1", "value": 3, "level": 1.5}
    assert model(raw) == model(raw) and len(calls) == 1


def test_an_input_that_is_not_a_model_class_keeps_the_general_hook() -> None:
    model, _ = counted(model_input=None)
    assert not compiled_hook(model)
