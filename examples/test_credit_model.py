"""Testing a credit-risk model with ``prodwrap.testing``: a test module pytest runs as it is.

    .venv/bin/python -m pytest examples/test_credit_model.py

Known cases, a nondeterministic gate, invariances, directional expectations, a golden file,
fuzzed invalid inputs and an unreliable dependency, all without real sleeping. The plugin's
fixtures (``prodwrap_clock``) come with prodwrap; nothing is configured here.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Literal

import pydantic
import pytest

import prodwrap as pw
from prodwrap.testing import (
    FakeClock,
    chaos,
    expect_cases,
    expect_directional,
    expect_golden,
    expect_invariant,
    fuzz,
)

GOLDEN = Path(__file__).with_name("credit_golden.jsonl")


class Applicant(pydantic.BaseModel):
    age: int = pydantic.Field(ge=18, le=100)
    income: float = pydantic.Field(ge=0, allow_inf_nan=False)
    debt: float = pydantic.Field(ge=0, allow_inf_nan=False)
    region: Literal["north", "south", "east", "west"]
    name: str = ""


class Score(pydantic.BaseModel):
    probability: float = pydantic.Field(ge=0, le=1)


def risk(a: Applicant) -> Score:
    """The model under test: debt over income, and a little more risk under 25."""
    ratio = min(a.debt / max(a.income, 1.0), 1.0)
    young = 0.1 if a.age < 25 else 0.0
    return Score(probability=round(min(0.05 + 0.6 * ratio + young, 1.0), 4))


def baseline(a: Any) -> Score:
    return Score(probability=0.5)


def credit_model(predict: Any = risk) -> pw.ProductionModel[Any, [], Any]:
    return pw.ProductionModel(
        predict,
        name="credit-risk",
        input=Applicant,
        output=Score,
        retry=pw.Retry(attempts=4, on=ConnectionError, wait=pw.backoff(initial=0.5, maximum=4.0)),
        fallback=[baseline],
    )


MODEL = credit_model()

APPLICANTS = [
    {"age": 40, "income": 80_000, "debt": 8_000, "region": "north"},
    {"age": 22, "income": 30_000, "debt": 15_000, "region": "south"},
    {"age": 65, "income": 50_000, "debt": 0, "region": "east"},
    {"age": 35, "income": 20_000, "debt": 40_000, "region": "west"},
]


def test_known_cases() -> None:
    expect_cases(
        MODEL,
        [
            (APPLICANTS[0], Score(probability=0.11)),
            (APPLICANTS[1], Score(probability=0.45)),  # young: the extra 0.1
            (APPLICANTS[2], lambda s: s.probability == 0.05),  # no debt: the floor
            (APPLICANTS[3], lambda s: s.probability >= 0.6),  # debt over income: high risk
        ],
    )


def test_a_nondeterministic_model_passes_a_gate_with_confidence() -> None:
    rng = random.Random(7)

    def noisy(a: Applicant) -> Score:  # e.g. an LLM-backed scorer: right 99 times in 100
        score = risk(a)
        return Score(probability=0.99) if rng.random() < 0.01 else score

    result = expect_cases(
        credit_model(noisy),
        [(APPLICANTS[0], Score(probability=0.11)), (APPLICANTS[2], Score(probability=0.05))],
        repeat=100,
        min_pass_rate=0.9,
        confidence=0.95,  # the Wilson lower bound must clear 0.9, not just the rate
    )
    assert all(case.wilson > 0.9 for case in result.cases)


def test_the_name_and_the_region_do_not_matter() -> None:
    expect_invariant(MODEL, APPLICANTS, lambda a: {**a, "name": "Someone Else"})
    expect_invariant(MODEL, APPLICANTS, lambda a: {**a, "region": "north"})


def test_more_debt_never_lowers_the_risk() -> None:
    expect_directional(
        MODEL, APPLICANTS, lambda a: {**a, "debt": a["debt"] + 5_000}, direction="increase", key="probability"
    )


def test_a_raise_never_raises_the_risk() -> None:
    expect_directional(MODEL, APPLICANTS, lambda a: {**a, "income": a["income"] * 1.2}, "decrease", key="probability")


def test_outputs_match_the_golden_file() -> None:
    # Rewrite the file after an intended change: pytest --prodwrap-update-golden
    expect_golden(MODEL, GOLDEN, tol=1e-9)


def test_invalid_inputs_are_refused_never_leaked() -> None:
    result = fuzz(MODEL, n=200, seed=14)
    assert result.refused == result.inputs


def test_an_unreliable_dependency_is_retried_without_real_waiting(prodwrap_clock: FakeClock) -> None:
    flaky = chaos(risk, error_rate=0.3, seed=3)
    model = credit_model(flaky)
    predictions = [model.predict_detailed(a) for a in APPLICANTS * 5]
    assert all(p.outcome in ("ok", "fallback") for p in predictions)
    assert flaky.calls == sum(p.attempts for p in predictions) and flaky.errors > 0
    assert prodwrap_clock.slept > 0  # backoff happened, on the fake clock


@pytest.mark.prodwrap(clock=True)
def test_the_fallback_serves_when_the_dependency_is_down() -> None:
    down = chaos(risk, error_rate=1.0, seed=0)
    prediction = credit_model(down).predict_detailed(APPLICANTS[0])
    assert (prediction.outcome, prediction.served_by, prediction.attempts) == ("fallback", "baseline", 4)
