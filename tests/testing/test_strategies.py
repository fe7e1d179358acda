"""``prodwrap.testing.strategies`` and ``fuzz``: inputs drawn from a model's schema (issue 14, item 5)."""

from __future__ import annotations

import enum
import math
import subprocess
import sys
from typing import Annotated, Any, Literal

import numpy as np
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typing_extensions import TypedDict

import prodwrap as pw
from prodwrap.testing import fuzz
from prodwrap.testing.strategies import invalid_inputs, valid_inputs


class Region(enum.Enum):
    NORTH = "north"
    SOUTH = "south"


class Address(pydantic.BaseModel):
    city: str = pydantic.Field(min_length=1, max_length=30)
    postcode: str = pydantic.Field(pattern=r"[0-9]{5}")


class Applicant(pydantic.BaseModel):
    age: int = pydantic.Field(ge=18, le=100)
    income: float = pydantic.Field(ge=0, allow_inf_nan=False)
    region: Region
    channel: Literal["web", "branch"] = "web"
    ssn: Annotated[str, pw.Sensitive] = "000-00-0000"
    address: Address | None = None
    tags: list[str] = []


class Reading(TypedDict):
    sensor: str
    value: float


def score(a: Any) -> float:
    return 0.5


SPECS: dict[str, Any] = {
    "pydantic": Applicant,
    "int": Annotated[int, pydantic.Field(ge=0, le=10)],
    "list[float]": list[float],
    "dict[str, int]": dict[str, int],
    "TypedDict": Reading,
    "Literal": Literal["a", "b"],
    "array": pw.ArraySpec(shape=(None, 3), dtype="float64"),
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_valid_inputs_are_accepted(name: str) -> None:
    model = pw.ProductionModel(score, input=SPECS[name], name=name)

    @settings(max_examples=60, database=None, deadline=None)
    @given(valid_inputs(model))
    def check(x: Any) -> None:
        assert model(x) == 0.5

    check()


@pytest.mark.parametrize("name", sorted(SPECS))
def test_invalid_inputs_are_refused(name: str) -> None:
    model = pw.ProductionModel(score, input=SPECS[name], name=name)

    @settings(max_examples=60, database=None, deadline=None)
    @given(invalid_inputs(model))
    def check(x: Any) -> None:
        with pytest.raises(pw.InputValidationError):
            model(x)

    check()


@pytest.mark.parametrize("name", sorted(SPECS))
def test_fuzz_500_invalid_inputs_per_input_type_only_refusals(name: str) -> None:
    model = pw.ProductionModel(score, input=SPECS[name], name=name)
    result = fuzz(model, n=500, seed=14)
    assert result.inputs == 500 and result.refused == 500 and result.fallbacks == 0


def test_valid_inputs_respect_bounds_patterns_and_literals() -> None:
    drawn: list[dict[str, Any]] = []

    @settings(max_examples=100, database=None, deadline=None)
    @given(valid_inputs(Applicant))  # a spec itself works too
    def check(x: dict[str, Any]) -> None:
        drawn.append(x)

    check()
    assert all(18 <= x["age"] <= 100 and math.isfinite(x["income"]) for x in drawn)
    assert all(x["region"] in {"north", "south"} for x in drawn)
    assert all(x["address"]["postcode"].isdigit() for x in drawn if x.get("address"))


def test_invalid_inputs_cover_every_kind_of_mistake() -> None:
    kinds: set[str] = set()

    def kind(x: Any) -> str:
        if not isinstance(x, dict):
            return "huge" if isinstance(x, str | list) and len(x) > 100_000 else "odd"
        if not {"age", "income", "region"} <= set(x):
            return "missing"
        if x["region"] not in ("north", "south") or x.get("channel", "web") not in ("web", "branch"):
            return "unseen"
        if any(isinstance(v, float) and not math.isfinite(v) for v in x.values()):
            return "nan"
        return "wrong type"

    @settings(max_examples=300, database=None, deadline=None, derandomize=True)
    @given(invalid_inputs(Applicant))
    def check(x: Any) -> None:
        kinds.add(kind(x))

    check()
    assert kinds == {"odd", "huge", "missing", "unseen", "nan", "wrong type"}


def test_invalid_arrays_have_wrong_shapes_dtypes_or_nan() -> None:
    spec = pw.ArraySpec(shape=(2, 3), dtype="float64")
    seen = []

    @settings(max_examples=100, database=None, deadline=None)
    @given(invalid_inputs(spec))
    def check(x: Any) -> None:
        arr = np.asarray(x, dtype=object)
        seen.append("shape" if arr.shape != (2, 3) else "nan-or-dtype")

    check()
    assert set(seen) == {"shape", "nan-or-dtype"}


def test_fuzz_accepts_the_fallback_with_on_invalid_fallback() -> None:
    model = pw.ProductionModel(score, input=Applicant, name="lenient", on_invalid="fallback", fallback=pw.Constant(0.0))
    result = fuzz(model, n=100, seed=1)
    assert result.fallbacks == result.inputs and result.refused == 0


def test_fuzz_fails_on_a_leak_naming_the_input_with_secrets_masked() -> None:
    def fragile(a: Any) -> float:
        raise KeyError("the fallback broke")

    model = pw.ProductionModel(score, input=Applicant, name="leaky", on_invalid="fallback", fallback=fragile)
    with pytest.raises(AssertionError) as info:
        fuzz(model, n=50, seed=2)
    message = str(info.value)
    assert message.startswith("fuzz(leaky): FallbackExhausted leaked") or "leaked" in message
    assert "input:" in message and not getattr(info.value, "__notes__", None)


def test_fuzz_fails_when_an_invalid_input_is_served_by_the_primary() -> None:
    model = pw.ProductionModel(score, input=Applicant, name="m")
    model._swap(pw.ProductionModel(score, name="m")._engine)  # its validation lost: everything passes
    with pytest.raises(AssertionError, match=r"fuzz\(m\): an invalid input was served by primary"):
        fuzz(model, n=20, seed=3)


def test_fuzz_and_strategies_refuse_what_they_cannot_use() -> None:
    with pytest.raises(pw.ConfigurationError, match="ProductionModel"):
        fuzz(score)
    with pytest.raises(pw.ConfigurationError, match="no input= schema"):
        valid_inputs(pw.ProductionModel(score, name="bare"))
    with pytest.raises(pw.ConfigurationError, match="n="):
        fuzz(pw.ProductionModel(score, input=int), n=0)
    with pytest.raises(pw.ConfigurationError, match="no invalid input"):
        fuzz(pw.ProductionModel(score, input=Any, name="anything"), n=10, seed=1)


def test_a_seed_draws_the_same_inputs() -> None:
    def drawn(seed: int) -> list[Any]:
        out: list[Any] = []
        model = pw.ProductionModel(
            lambda x: out.append(x) or 0.0,
            input=Applicant,
            name="m",
            on_invalid="fallback",
            fallback=lambda x: out.append(x) or 0.0,
        )
        fuzz(model, n=30, seed=seed)
        return [repr(x)[:100] for x in out]

    assert drawn(5) == drawn(5)


def test_strategies_compose_with_hypothesis() -> None:
    pairs = st.tuples(valid_inputs(Applicant), valid_inputs(Applicant))

    @settings(max_examples=10, database=None, deadline=None)
    @given(pairs)
    def check(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
        assert len(pair) == 2

    check()


def test_hypothesis_is_imported_only_when_used() -> None:
    code = (
        "import sys, prodwrap.testing as t; assert 'hypothesis' not in sys.modules; "
        "import prodwrap.testing.strategies; assert 'hypothesis' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


class Tree(pydantic.BaseModel):
    value: int
    children: list[Tree] = []


def _depth(tree: dict[str, Any]) -> int:
    return 1 + max((_depth(child) for child in tree.get("children", [])), default=0)


def test_a_self_referencing_model_gets_finite_inputs_and_fuzzes() -> None:
    Tree.model_rebuild()
    model = pw.ProductionModel(lambda t: t.value, input=Tree, name="tree")
    trees: list[dict[str, Any]] = []

    @settings(max_examples=50, database=None, deadline=None)
    @given(valid_inputs(model))
    def draw(x: dict[str, Any]) -> None:
        trees.append(x)

    draw()
    assert trees and max(_depth(t) for t in trees) <= 6
    result = fuzz(model, n=50, seed=1)
    assert result.inputs == 50 and result.refused == 50
