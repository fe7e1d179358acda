"""pw.Ledger keys each call under its own tags' text, whatever calls it arrives with."""

from __future__ import annotations

from decimal import Decimal
from enum import Enum
from typing import Any

import pytest

import prodwrap as pw


class Color(str, Enum):  # noqa: UP042 (not a StrEnum, whose text is its value: this one prints otherwise)
    RED = "red"  # equal to "red" (and hashed as it is), but its text is "Color.RED"


class LooksLikeRed:
    """Equal to ``"red"`` under ``==``, with a text of its own."""

    def __eq__(self, other: object) -> bool:
        return other == "red" or isinstance(other, LooksLikeRed)

    def __hash__(self) -> int:
        return hash("red")

    def __format__(self, spec: str) -> str:
        return "looks-like-red"


def totals(order: list[Any], fast: bool, **other: Any) -> dict[Any, Decimal]:
    observers = [] if fast else [lambda p: None]  # an observer: the calls take a record
    model = pw.ProductionModel(lambda x: x, cost=pw.PerCall("1"), observers=observers)
    for value in order:
        with pw.context(color=value, **other):
            model(0)
    assert model.ledger is not None
    by: dict[Any, Decimal] = model.ledger.total(by="color")
    assert sum(by.values()) == model.ledger.total() == len(order)
    return by


@pytest.mark.parametrize("fast", [True, False], ids=["success path", "walk"])
@pytest.mark.parametrize("other", [{}, {"region": "eu"}], ids=["one tag", "two tags"])
def test_a_str_subclass_or_an_object_equal_to_a_str_keeps_its_own_text_in_either_order(
    fast: bool, other: dict[str, Any]
) -> None:
    expected = {"red": Decimal(2), "Color.RED": Decimal(2), "looks-like-red": Decimal(1)}
    assert totals(["red", Color.RED, Color.RED, LooksLikeRed(), "red"], fast, **other) == expected
    assert totals([Color.RED, "red", LooksLikeRed(), "red", Color.RED], fast, **other) == expected
    assert totals(["red"] * 2 + [Color.RED] * 2 + [LooksLikeRed()], fast, **other) == expected
    assert totals([LooksLikeRed(), "red", "red", Color.RED, Color.RED], fast, **other) == expected


@pytest.mark.parametrize("fast", [True, False], ids=["success path", "walk"])
def test_a_batch_of_one_kind_is_keyed_by_each_calls_text(fast: bool) -> None:
    """A whole batch of equal calls (the fold's one-run case), one of them a str subclass."""
    order = ["red"] * 1500
    order[700] = Color.RED
    assert totals(order, fast) == {"red": Decimal(1499), "Color.RED": Decimal(1)}


def test_none_is_never_one_of_max_values_and_always_under_none() -> None:
    ledger = pw.Ledger(max_values=1)
    model = pw.ProductionModel(lambda x: x, cost=pw.PerCall("1"), ledger=ledger)
    for customer in (None, "a", None, "b", None):
        with pw.context(customer=customer):
            model(0)
    model(0)  # untagged
    assert ledger.total(by="customer") == {None: Decimal(4), "a": Decimal(1), "<other>": Decimal(1)}
    with pw.context(customer=None):
        model(0)  # (with "<other>" in use too)
    assert ledger.total(by="customer")[None] == Decimal(5)
