"""Exact money: prices in, pico-dollars inside, Decimal out."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import prodwrap as pw
from prodwrap.cost._money import money, price, units


@pytest.mark.parametrize("given_price", ["0.0001", 1, Decimal("0.15"), "0"])
def test_exact_prices_are_taken_as_they_are(given_price: object) -> None:
    assert price(given_price, "PerCall") == Decimal(str(given_price))


def test_a_float_price_warns_and_is_read_through_its_repr() -> None:
    with pytest.warns(pw.ConfigurationWarning, match="not exact"):
        model = pw.PerCall(0.1)
    assert model.price_per_call == Decimal("0.1")  # not 0.1000000000000000055511151231257827...


@pytest.mark.parametrize("bad", ["abc", -1, "-0.01", "NaN", "Infinity", True, None, [1]])
def test_nonsense_prices_are_refused_naming_the_setting(bad: object) -> None:
    with pytest.raises(pw.ConfigurationError, match="PerCall"):
        pw.PerCall(bad)  # type: ignore[arg-type]


def test_a_price_finer_than_a_pico_dollar_is_refused() -> None:
    with pytest.raises(pw.ConfigurationError, match="pico-dollar"):
        pw.PerCall("0.0000000000001")
    assert units(Decimal("0.000000000001"), "x") == 1


@pytest.mark.parametrize(
    ("pico", "text"),
    [(10**14, "100.00"), (10**8, "0.0001"), (150_000, "0.00000015"), (0, "0.00"), (12_340_000_000_000, "12.34")],
)
def test_amounts_read_as_decimals_with_at_least_cents(pico: int, text: str) -> None:
    assert money(pico) == Decimal(text)
    assert f"{money(pico):f}" == text


@given(st.lists(st.decimals(min_value=0, max_value=1000, places=12, allow_nan=False), max_size=50))
def test_sums_of_charges_are_exact(prices: list[Decimal]) -> None:
    total = sum((units(p, "p") for p in prices), 0)
    assert money(total) == sum(prices, Decimal(0))


def test_money_is_exact_whatever_the_callers_decimal_context() -> None:
    import decimal

    model = pw.ProductionModel(lambda x: x, cost=pw.PerCall("12.345678"))
    with decimal.localcontext() as ctx:
        ctx.prec = 6
        assert model.predict_detailed(1).cost == Decimal("12.345678")
    with pytest.raises(pw.ConfigurationError, match="finer than a pico-dollar"):
        pw.PerCall("0.1000000000000000000000000000001")
    with pytest.raises(pw.ConfigurationError, match="more than prodwrap counts"):
        pw.PerCall("1e26")
