"""Cost models against hand-computed totals, every usage shape (litellm#14849: a cache hit
charged at 4x its price is the bug to avoid)."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace as NS
from typing import Any

import numpy as np
import pytest

import prodwrap as pw
from prodwrap.cost import CostSum

# USD per million tokens: input 3.00, cached input 0.30, cache write 3.75, output 15.00.
PRICE = pw.PerToken(input="3.00", output="15.00", cached_input="0.30", cache_write="3.75")


def cost(model: Any, output: Any, *, seconds: float = 0.0, input: Any = None) -> Decimal | None:
    return model.price(pw.Attempt(input, output, None, seconds))  # type: ignore[no-any-return]


CHAT = {  # OpenAI chat: prompt_tokens include the cached ones; completion_tokens the reasoning ones
    "prompt_tokens": 2000,
    "completion_tokens": 500,
    "prompt_tokens_details": {"cached_tokens": 1500},
    "completion_tokens_details": {"reasoning_tokens": 300},
}
# 500 uncached x 3.00 + 1500 cached x 0.30 + 500 output (300 reasoning among them) x 15.00, per million
CHAT_COST = Decimal("0.0015") + Decimal("0.00045") + Decimal("0.0075")

RESPONSES = {
    "input_tokens": 2000,
    "output_tokens": 500,
    "input_tokens_details": {"cached_tokens": 1500},
    "output_tokens_details": {"reasoning_tokens": 300},
}

ANTHROPIC = {  # input_tokens leave the cache out: 100 fresh + 1500 read + 400 written
    "input_tokens": 100,
    "output_tokens": 500,
    "cache_read_input_tokens": 1500,
    "cache_creation_input_tokens": 400,
}
ANTHROPIC_COST = Decimal("0.0003") + Decimal("0.00045") + Decimal("0.0015") + Decimal("0.0075")


def ns(shape: dict[str, Any]) -> Any:
    return NS(**{k: ns(v) if isinstance(v, dict) else v for k, v in shape.items()})


@pytest.mark.parametrize(
    ("shape", "expected"),
    [("chat", CHAT_COST), ("responses", CHAT_COST), ("anthropic", ANTHROPIC_COST)],
)
@pytest.mark.parametrize("form", ["dict", "object", "usage itself"])
def test_every_usage_shape_is_priced_by_hand(shape: str, expected: Decimal, form: str) -> None:
    usage = {"chat": CHAT, "responses": RESPONSES, "anthropic": ANTHROPIC}[shape]
    output: Any = {"dict": {"usage": usage}, "object": NS(usage=ns(usage)), "usage itself": usage}[form]
    assert cost(PRICE, output) == expected


def test_cached_tokens_are_priced_once_at_the_cached_price() -> None:
    only_cached = {"prompt_tokens": 1000, "completion_tokens": 0, "prompt_tokens_details": {"cached_tokens": 1000}}
    assert cost(PRICE, {"usage": only_cached}) == Decimal("0.0003")  # 1000 x 0.30 / 1M, not 0.0033 nor 0.0012


def test_cached_input_defaults_to_the_input_price_and_cache_writes_too() -> None:
    plain = pw.PerToken(input="3.00", output="15.00")
    assert cost(plain, {"usage": CHAT}) == Decimal("0.006") + Decimal("0.0075")
    assert cost(plain, {"usage": ANTHROPIC}) == Decimal("0.006") + Decimal("0.0075")


def test_reasoning_tokens_are_output_tokens_and_not_added_again() -> None:
    usage = {"prompt_tokens": 0, "completion_tokens": 1000, "completion_tokens_details": {"reasoning_tokens": 900}}
    assert cost(PRICE, {"usage": usage}) == Decimal("0.015")


def test_prices_per_thousand_and_rounding_to_the_pico_dollar() -> None:
    per_k = pw.PerToken(input="0.0005", output="0.0015", per=1000)
    assert cost(per_k, {"usage": {"prompt_tokens": 3, "completion_tokens": 7}}) == Decimal("0.000012")
    odd = pw.PerToken(input="0.000001", output="0", per=3)  # a third of a pico-dollar... times 1e6
    assert cost(odd, {"usage": {"prompt_tokens": 1, "completion_tokens": 0}}) == Decimal("0.000000333333")


def test_numpy_counts_and_a_usage_reader() -> None:
    assert cost(PRICE, {"usage": {"prompt_tokens": np.int64(1000), "completion_tokens": np.int32(0)}}) == Decimal(
        "0.003"
    )
    reader = pw.PerToken(input="1", output="2", usage=lambda out: pw.Usage(out["in"], out["out"]))
    assert cost(reader, {"in": 10**6, "out": 10**6}) == Decimal("3.00")
    as_dict = pw.PerToken(input="1", output="2", usage=lambda out: out["meta"])
    assert cost(as_dict, {"meta": {"input_tokens": 10**6, "output_tokens": 0}}) == Decimal("1.00")


@pytest.mark.parametrize("output", [None, "text", 3, {"answer": 1}, {"usage": None}, NS(usage=NS())])
def test_no_usage_is_unpriced_never_zero(output: Any) -> None:
    assert cost(PRICE, output) is None
    assert PRICE.charge(None, output, None, 0.0) == (0, None, True)


def test_a_failed_attempt_reports_no_usage() -> None:
    assert PRICE.price(pw.Attempt(None, None, ConnectionError(), 1.0)) is None


def test_per_call_per_second_per_item() -> None:
    assert cost(pw.PerCall("0.0001"), None) == Decimal("0.0001")
    assert cost(pw.PerSecond("0.5"), None, seconds=0.25) == Decimal("0.125")
    assert cost(pw.PerSecond("0.000001"), None, seconds=1 / 3) == Decimal("0.000000333333")  # to the pico-dollar
    assert cost(pw.PerItem("0.01"), None, input=[1, 2, 3]) == Decimal("0.03")
    assert cost(pw.PerItem("0.01"), None, input=np.zeros((4, 2))) == Decimal("0.04")
    for one in ({"a": 1}, "text", 7, np.float64(1.0), NS(x=1)):
        assert cost(pw.PerItem("0.01"), None, input=one) == Decimal("0.01")


def test_models_add_up() -> None:
    model = pw.PerCall("0.001") + pw.PerSecond("0.01") + PRICE
    assert isinstance(model, CostSum)
    assert cost(model, {"usage": CHAT}, seconds=2.0) == Decimal("0.001") + Decimal("0.02") + CHAT_COST
    assert cost(model, None, seconds=2.0) is None  # the token part is unpriced: so is the attempt
    assert sum([pw.PerCall("1"), pw.PerCall("2")]) == pw.PerCall("1") + pw.PerCall("2")  # type: ignore[comparison-overlap]
    assert (pw.PerCall("1") + pw.PerItem("1")).describe() == [{"per_call": "1"}, {"per_item": "1"}]
    assert PRICE.describe() == {
        "per_token": {
            "input": "3.00",
            "output": "15.00",
            "cached_input": "0.30",
            "cache_write": "3.75",
            "per": 1_000_000,
        }
    }


def test_estimates_before_an_attempt_runs() -> None:
    assert pw.PerCall("0.01").estimate("anything") == Decimal("0.01")
    assert pw.PerItem("0.01").estimate([1, 2]) == Decimal("0.02")
    assert pw.PerSecond("1").estimate("x") is None  # the duration is not known in advance
    assert PRICE.estimate([1, 2, 3]) is None  # no max_output_tokens: no worst case
    capped = pw.PerToken(input="3.00", output="15.00", max_output_tokens=1000)
    assert capped.estimate(list(range(2000))) == Decimal("0.006") + Decimal("0.015")  # token ids are countable
    assert capped.estimate("some text") is None  # not countable without a tokenizer
    counted = pw.PerToken(input="3.00", output="15.00", max_output_tokens=1000, count_input=len)
    assert counted.estimate("x" * 2000) == Decimal("0.021")
    assert (pw.PerCall("0.01") + capped).estimate([1] * 2000) == Decimal("0.031")
    assert (pw.PerCall("0.01") + pw.PerSecond("1")).estimate(1) is None


def test_a_custom_cost_model_is_a_callable_or_has_price() -> None:
    flat = pw.ProductionModel(lambda x: x, cost=lambda attempt: Decimal("0.5") if attempt.output else None)
    assert flat.predict_detailed(1).cost == Decimal("0.5")
    assert flat.predict_detailed(0).charges[0].unpriced  # None: it cannot say

    class Quoted:
        def price(self, attempt: pw.Attempt) -> Decimal | None:
            return Decimal("0.25") * attempt.input

        def estimate(self, input: Any) -> Decimal | None:
            return Decimal("0.25") * input

    assert isinstance(Quoted(), pw.CostModel)
    model = pw.ProductionModel(lambda x: x, cost=Quoted())
    assert model.predict_detailed(4).cost == Decimal("1.00")
    from prodwrap.cost._models import cost_model

    assert cost_model(Quoted()).estimate(2) == Decimal("0.50")


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"per": 0}, "per"),
        ({"per": 1.5}, "per"),
        ({"max_output_tokens": -1}, "max_output_tokens"),
        ({"usage": "not callable"}, "usage"),
        ({"cached_input": "x"}, "cached_input"),
    ],
)
def test_per_token_settings_are_checked(kwargs: dict[str, Any], setting: str) -> None:
    with pytest.raises(pw.ConfigurationError, match=setting):
        pw.PerToken(input="1", output="1", **kwargs)


def test_cost_takes_cost_models_only() -> None:
    with pytest.raises(pw.ConfigurationError, match="cost="):
        pw.ProductionModel(lambda x: x, cost="0.01")
