"""Behavioural expectations: cases with repeats and Wilson bounds, invariants, directional
changes (issue 14, items 4 and 7)."""

from __future__ import annotations

import asyncio
import itertools
import math
from typing import Annotated, Any

import pydantic
import pytest
from scipy.stats import binomtest

import prodwrap as pw
from prodwrap.testing import Expectation, ExpectationFailed, expect_cases, expect_directional, expect_invariant
from prodwrap.testing._calls import close, wilson_lower


class Applicant(pydantic.BaseModel):
    age: int
    income: float
    ssn: Annotated[str, pw.Sensitive] = "000-00-0000"


class Score(pydantic.BaseModel):
    probability: float


def risk(a: Applicant) -> Score:
    return Score(probability=round(min(1.0, max(0.0, 1 - a.income / 100_000)), 6))


MODEL = pw.ProductionModel(risk, input=Applicant, output=Score, name="credit-risk")


# -- the Wilson bound --------------------------------------------------------------------------


@pytest.mark.parametrize(("passes", "runs"), [(0, 1), (1, 1), (9, 10), (10, 10), (5, 10), (87, 100), (0, 50), (3, 7)])
@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
def test_wilson_lower_bound_agrees_with_scipy(passes: int, runs: int, confidence: float) -> None:
    expected = binomtest(passes, runs).proportion_ci(confidence_level=confidence, method="wilson").low
    assert wilson_lower(passes, runs, confidence) == pytest.approx(expected, abs=1e-12)


def test_wilson_known_values() -> None:
    # statsmodels.stats.proportion.proportion_confint(9, 10, method="wilson") -> (0.5958, 0.9821)
    assert wilson_lower(9, 10) == pytest.approx(0.5958499732, abs=1e-9)
    assert wilson_lower(10, 10) == pytest.approx(1 / (1 + 1.959963984540054**2 / 10), abs=1e-12)
    assert wilson_lower(0, 0) == 0.0


# -- expect_cases ------------------------------------------------------------------------------


def test_passing_cases_return_a_rich_result() -> None:
    result = expect_cases(
        MODEL,
        [
            ({"age": 30, "income": 90_000}, Score(probability=0.1)),
            ({"age": 60, "income": 20_000}, {"probability": 0.8}),
        ],
    )
    assert isinstance(result, Expectation) and result and result.passed and result.failures == ()
    first = result.cases[0]
    assert (first.passes, first.runs, first.pass_rate, first.pass_all) == (1, 1, 1.0, True)
    assert first.outputs == (Score(probability=0.1),)
    assert first.wilson == pytest.approx(wilson_lower(1, 1))


def test_a_failing_case_raises_a_table_naming_it_with_the_three_numbers() -> None:
    with pytest.raises(ExpectationFailed) as info:
        expect_cases(
            MODEL,
            [
                ({"age": 30, "income": 90_000}, Score(probability=0.1)),
                ({"age": 45, "income": 50_000, "ssn": "123-45-6789"}, Score(probability=0.9)),
            ],
        )
    message = str(info.value)
    assert message.splitlines()[0] == "expect_cases(credit-risk): 1 of 2 cases failed (min_pass_rate=1)"
    assert "pass rate" in message and "pass^k" in message and "wilson lb (95%)" in message
    row = next(line for line in message.splitlines() if line.strip().startswith("1 "))
    # (a model with sensitive fields shows values as their fields, masked)
    assert "'income': 50000" in row and "{'probability': 0.9}" in row and "{'probability': 0.5}" in row
    assert "0/1 = 0%" in row and " no " in row and "0.000" in row
    assert "123-45-6789" not in message and "'ssn': '***'" in row  # sensitive fields masked
    assert info.value.result.failures[0].index == 1
    assert isinstance(info.value, AssertionError)


def test_an_exception_is_a_failed_run_shown_in_the_table() -> None:
    def explode(x: int) -> int:
        raise RuntimeError("model fell over")

    with pytest.raises(ExpectationFailed, match="RuntimeError: model fell over"):
        expect_cases(explode, [(1, 1)])


def test_expected_may_be_a_predicate_and_compare_a_custom_comparison() -> None:
    expect_cases(MODEL, [({"age": 1, "income": 10_000}, lambda s: s.probability > 0.5)])
    expect_cases(abs, [(-2.0, 2.0001)], compare=lambda out, want: math.isclose(out, want, abs_tol=1e-3))
    with pytest.raises(ExpectationFailed):
        expect_cases(abs, [(-2.0, 2.1)], compare=lambda out, want: math.isclose(out, want, abs_tol=1e-3))


def nondeterministic(pattern: list[bool]) -> Any:
    """A model whose successive calls are right or wrong by ``pattern`` (then right)."""
    calls = itertools.count()

    def predict(x: int) -> int:
        i = next(calls)
        return x if i >= len(pattern) or pattern[i] else -x

    return predict


def test_repeat_reports_pass_rate_pass_k_and_wilson_per_case() -> None:
    # case 0: 9 of 10 right; case 1: 10 of 10
    model = nondeterministic([True] * 4 + [False] + [True] * 5 + [True] * 10)
    result = expect_cases(model, [(1, 1), (2, 2)], repeat=10, min_pass_rate=0.9)
    first, second = result.cases
    assert (first.passes, first.runs, first.pass_rate, first.pass_all) == (9, 10, 0.9, False)
    assert first.wilson == pytest.approx(wilson_lower(9, 10))
    assert second.pass_all and result.pass_all_rate == 0.5 and result.pass_rate == 0.95
    assert first.outputs.count(-1) == 1 and len(first.outputs) == 10


def test_a_lucky_run_cannot_pass_a_gate_that_asks_for_confidence() -> None:
    model = nondeterministic([True] * 9 + [False])  # 9 of 10: the rate meets 0.9 ...
    expect_cases(model, [(1, 1)], repeat=10, min_pass_rate=0.9)
    with pytest.raises(ExpectationFailed) as info:  # ... the lower bound (0.596) does not
        expect_cases(nondeterministic([True] * 9 + [False]), [(1, 1)], repeat=10, min_pass_rate=0.9, confidence=0.95)
    message = str(info.value)
    assert "9/10 = 90%" in message and "0.596" in message and "wilson lb (95%)" in message
    assert "confidence=0.95, repeat=10" in message.splitlines()[0]
    # with enough evidence the gate opens: 100 of 100 has a lower bound of 0.963
    expect_cases(nondeterministic([]), [(1, 1)], repeat=100, min_pass_rate=0.9, confidence=0.95)


def test_below_min_pass_rate_fails() -> None:
    with pytest.raises(ExpectationFailed, match="8/10 = 80%"):
        expect_cases(nondeterministic([True] * 8 + [False] * 2), [(1, 1)], repeat=10, min_pass_rate=0.9)


@pytest.mark.parametrize(
    "options",
    [{"min_pass_rate": 1.5}, {"min_pass_rate": -0.1}, {"repeat": 0}, {"confidence": 1.0}, {"confidence": 0}],
)
def test_nonsense_settings_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(pw.ConfigurationError):
        expect_cases(abs, [(1, 1)], **options)


def test_cases_must_be_pairs() -> None:
    with pytest.raises(pw.ConfigurationError, match="case 0"):
        expect_cases(abs, [(1, 1, 1)])  # type: ignore[list-item]


async def arisk(a: Applicant) -> Score:
    await asyncio.sleep(0)
    return risk(a)


def test_async_models_and_plain_async_functions_are_awaited() -> None:
    model = pw.ProductionModel(arisk, input=Applicant, name="async-risk")
    expect_cases(model, [({"age": 30, "income": 90_000}, Score(probability=0.1))])

    async def plain(x: int) -> int:
        return x + 1

    expect_cases(plain, [(1, 2)])
    with pytest.raises(ExpectationFailed):
        expect_cases(plain, [(1, 3)])


async def test_checks_work_from_inside_a_running_event_loop() -> None:
    model = pw.ProductionModel(arisk, input=Applicant, name="async-risk")
    expect_cases(model, [({"age": 30, "income": 90_000}, Score(probability=0.1))])


# -- invariants and directional expectations ----------------------------------------------------


def test_invariant_passes_when_the_perturbation_does_not_matter() -> None:
    inputs = [{"age": 30, "income": 90_000}, {"age": 50, "income": 10_000}]
    result = expect_invariant(MODEL, inputs, lambda a: {**a, "age": a["age"] + 1})
    assert result.passed and len(result.cases) == 2


def test_invariant_fails_with_a_table_of_what_changed_and_respects_tol() -> None:
    inputs = [{"age": 30, "income": 90_000}]
    with pytest.raises(ExpectationFailed) as info:
        expect_invariant(MODEL, inputs, lambda a: {**a, "income": a["income"] - 1_000})
    message = str(info.value)
    assert message.splitlines()[0] == "expect_invariant(credit-risk): 1 of 1 cases failed"
    row = message.splitlines()[-1]
    assert "{'age': 30, 'income': 90000}" in row and "{'probability': 0.1}" in row
    assert "{'age': 30, 'income': 89000} -> {'probability': 0.11}" in row
    expect_invariant(MODEL, inputs, lambda a: {**a, "income": a["income"] - 1_000}, tol=0.011)


def test_directional_increase_and_decrease() -> None:
    inputs = [{"age": 30, "income": 90_000}, {"age": 40, "income": 60_000}]
    poorer = lambda a: {**a, "income": a["income"] / 2}  # noqa: E731
    expect_directional(MODEL, inputs, poorer, direction="increase", key="probability")
    expect_directional(MODEL, inputs, lambda a: {**a, "income": a["income"] * 1.1}, "decrease", key="probability")
    with pytest.raises(ExpectationFailed) as info:
        expect_directional(MODEL, inputs, poorer, direction="decrease", key=lambda s: s.probability)
    message = str(info.value)
    assert "2 of 2 cases failed" in message and "0.1 -> 0.55" in message and "must decrease" in message


def test_directional_strict_demands_a_move() -> None:
    inputs = [{"age": 30, "income": 200_000}]  # probability 0 either way
    expect_directional(MODEL, inputs, lambda a: {**a, "income": 150_000}, key="probability")
    with pytest.raises(ExpectationFailed):
        expect_directional(MODEL, inputs, lambda a: {**a, "income": 150_000}, key="probability", strict=True)


def test_directional_with_a_numeric_output_and_a_bad_direction() -> None:
    expect_directional(abs, [1.0, 2.0], lambda x: x + 1)
    with pytest.raises(pw.ConfigurationError):
        expect_directional(abs, [1.0], lambda x: x, direction="sideways")  # type: ignore[arg-type]


# -- comparison -----------------------------------------------------------------------------


def test_close_compares_at_depth_within_tol() -> None:
    import numpy as np

    assert close({"a": [1.0, (2.0, math.nan)]}, {"a": [1.05, [2.0, math.nan]]}, tol=0.1)
    assert not close({"a": 1.0}, {"a": 1.2}, tol=0.1)
    assert not close({"a": 1}, {"b": 1})
    assert close(Score(probability=0.5), {"probability": 0.5})
    assert close(np.array([1.0, 2.0]), [1.0, 2.0 + 1e-9], tol=1e-6)
    assert not close(np.array([1.0, 2.0]), [1.0])
    assert not close(True, 1) or close(True, True)
    assert close("x", "x") and not close("x", "y")
