"""What may be served to many callers as it is, and what is copied for each (``_copies``)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import BaseModel, ConfigDict, PrivateAttr

import prodwrap as pw
from prodwrap._copies import immutable, server


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)
    p: float
    labels: tuple[str, ...] = ()


class FrozenList(BaseModel):
    model_config = ConfigDict(frozen=True)
    labels: list[str]


class FrozenExtra(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")
    p: float


class FrozenPrivate(BaseModel):
    model_config = ConfigDict(frozen=True)
    p: float
    _seen: int = PrivateAttr(default=0)


class Text(str):
    pass


@pytest.mark.parametrize(
    "value",
    [None, True, 3, 2.5, 1j, "s", b"b", Decimal("1.5"), (1, ("a", b"b")), frozenset({1, "a"}), Frozen(p=0.5)],
)
def test_immutable_values_are_served_as_they_are(value: object) -> None:
    assert immutable(value)
    assert server(value)() is value


@pytest.mark.parametrize(
    "value",
    [
        [1],
        {"a": 1},
        (1, [2]),  # a tuple holding a list
        frozenset({Frozen(p=1.0)}) | {("x", bytearray(b"y").decode())},  # (still immutable: checked below)
        FrozenList(labels=["a"]),  # frozen, but holding a list
        FrozenExtra(p=0.5, extra=[1]),  # an extra field holding a list
        FrozenPrivate(p=0.5),  # private attributes may be set on a frozen model
        Text("s"),  # a str subclass may carry attributes
    ],
)
def test_anything_that_can_change_is_copied(value: object) -> None:
    if isinstance(value, frozenset):
        assert immutable(value)  # a frozenset of immutable items
        return
    assert not immutable(value)
    assert server(value)() is not value


def test_deep_nesting_is_taken_as_mutable() -> None:
    value: object = 1
    for _ in range(100):
        value = (value,)
    assert not immutable(value)


def test_a_frozen_model_holding_a_list_is_copied_for_each_caller() -> None:
    def down(x: object) -> FrozenList:
        raise ConnectionError

    constant = pw.ProductionModel(down, fallback=pw.Constant(FrozenList(labels=["a"])))
    constant(1).labels.append("MUTATED")
    assert constant(1).labels == ["a"]
    cached = pw.ProductionModel(lambda x: FrozenList(labels=["a"]), cache=pw.Cache())
    cached(1).labels.append("MUTATED")
    assert cached(1).labels == ["a"]
