"""The cost settings that are counts: the policies' one validation (numpy's integers in, bools out).

Money (prices, limits) keeps its own rules: a str, int or Decimal, a float with a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

import prodwrap as pw

# (owner, setting, least, build(value) -> the object, read(object) -> the kept value)
COUNTS: list[tuple[str, str, int, Callable[[Any], Any], Callable[[Any], Any]]] = [
    ("Ledger", "window", 1, lambda v: pw.Ledger(window=v), lambda led: led._recent.maxlen),
    ("Ledger", "max_values", 1, lambda v: pw.Ledger(max_values=v), lambda led: led.max_values),
    ("PerToken", "per", 1, lambda v: pw.PerToken("1", "2", per=v), lambda p: p.per),
    (
        "PerToken",
        "max_output_tokens",
        0,
        lambda v: pw.PerToken("1", "2", max_output_tokens=v),
        lambda p: p.max_output_tokens,
    ),
]


def _ids(rows: list[Any]) -> list[str]:
    return [f"{row[0]}.{row[1]}" for row in rows]


@pytest.mark.parametrize(("owner", "name", "least", "build", "read"), COUNTS, ids=_ids(COUNTS))
@pytest.mark.parametrize("value", [np.int64(4), np.int32(4), np.uint16(4), 4])
def test_a_count_takes_numpy_integers_and_keeps_an_int(
    owner: str, name: str, least: int, build: Callable[[Any], Any], read: Callable[[Any], Any], value: Any
) -> None:
    kept = read(build(value))
    assert kept == 4 and type(kept) is int


@pytest.mark.parametrize(("owner", "name", "least", "build", "read"), COUNTS, ids=_ids(COUNTS))
@pytest.mark.parametrize("value", [True, False, np.True_, 4.0, np.float64(4.0), "4", np.int64(-1)])
def test_a_count_refuses_bools_and_non_integers_in_the_shared_words(
    owner: str, name: str, least: int, build: Callable[[Any], Any], read: Callable[[Any], Any], value: Any
) -> None:
    with pytest.raises(pw.ConfigurationError) as caught:
        build(value)
    assert str(caught.value) == f"{owner}.{name} must be an int >= {least}, got {value!r}"


@pytest.mark.parametrize("q", [np.float64(0.5), np.float32(0.5), np.int64(1)])
def test_a_percentile_takes_numpy_scalars(q: Any) -> None:
    with pw.ProductionModel(lambda x: x, cost=pw.PerCall("0.01")) as model:
        model(1)
        assert model.ledger.percentile(q) == Decimal("0.01")


@pytest.mark.parametrize("q", [True, np.True_, "0.5", np.float64(1.5)])
def test_a_percentile_refuses_bools(q: Any) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        pw.Ledger().percentile(q)


def test_money_is_left_as_the_docs_say_it_is() -> None:
    with pytest.raises(pw.ConfigurationError, match=r"^PerCall takes a price as a str, int or Decimal"):
        pw.PerCall(np.int64(1))  # type: ignore[arg-type]
    with pytest.warns(pw.ConfigurationWarning, match="a float price is not exact"):
        assert pw.PerCall(np.float64(0.5)).price_per_call == Decimal("0.5")  # a float, as a float is


def test_a_custom_model_may_return_a_numpy_float_as_it_may_a_float() -> None:
    with pw.ProductionModel(lambda x: x, cost=lambda attempt: np.float64(0.5)) as model:
        model(1)
        assert model.stats().cost == Decimal("0.5")
