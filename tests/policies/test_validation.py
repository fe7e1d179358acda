"""Input/output validation: every problem listed, never a crash inside prodwrap."""

from __future__ import annotations

import enum
import math
from typing import Literal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field, SecretStr

import prodwrap as pw


class Region(enum.Enum):
    NORTH = "north"
    SOUTH = "south"


class Applicant(BaseModel):
    age: int
    income: float = Field(allow_inf_nan=False)
    region: Literal["north", "south"]
    kind: Region = Region.NORTH
    note: str = Field(default="", max_length=1000)
    ssn: str = Field(default="", json_schema_extra={"sensitive": True})
    token: SecretStr = SecretStr("")


def _model(**options: object) -> pw.ProductionModel:
    return pw.ProductionModel(lambda a: a.age, input=Applicant, **options)


def _errors(value: object) -> list[tuple[object, str]]:
    with pytest.raises(pw.InputValidationError) as info:
        _model()(value)
    assert isinstance(info.value, ValueError)
    return [(e["loc"][0] if e["loc"] else None, e["type"]) for e in info.value.errors]


GOOD = {"age": 40, "income": 1.5, "region": "north"}


def test_valid_inputs_dict_instance_json_and_attributes() -> None:
    model = _model()
    assert model(GOOD) == 40
    assert model(Applicant(**GOOD)) == 40
    assert model('{"age": 41, "income": 2, "region": "south"}') == 41

    class Obj:
        age, income, region = 42, 1.0, "north"

    assert model(Obj()) == 42


def test_missing_optional_fields_take_defaults() -> None:
    seen = []
    pw.ProductionModel(seen.append, input=Applicant)(GOOD)
    assert seen[0].kind is Region.NORTH and seen[0].note == ""


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ({"income": 1.0, "region": "north"}, [("age", "missing")]),
        ({"age": "forty", "income": "x", "region": "north"}, [("age", "int_parsing"), ("income", "float_parsing")]),
        ({**GOOD, "income": math.nan}, [("income", "finite_number")]),
        ({**GOOD, "region": "mars"}, [("region", "literal_error")]),
        ({**GOOD, "kind": "east"}, [("kind", "enum")]),
        ({**GOOD, "note": "x" * 10_000_000}, [("note", "string_too_long")]),
        ({}, [("age", "missing"), ("income", "missing"), ("region", "missing")]),
    ],
)
def test_malformed_inputs_list_every_problem(bad: dict[str, object], expected: list[tuple[str, str]]) -> None:
    assert _errors(bad) == expected


def test_every_problem_at_once() -> None:
    errors = _errors({"age": "x", "income": math.inf, "region": "mars", "kind": "east"})
    assert [loc for loc, _ in errors] == ["age", "income", "region", "kind"]


def test_huge_string_input_is_an_error_not_a_crash_and_not_echoed() -> None:
    huge = "y" * 10_000_000
    with pytest.raises(pw.InputValidationError) as info:
        _model()(huge)
    assert len(str(info.value)) < 1000
    assert all(len(repr(e)) < 500 for e in info.value.errors)


def test_sensitive_values_never_in_errors() -> None:
    with pytest.raises(pw.InputValidationError) as info:
        _model()({**GOOD, "ssn": 123456789, "token": 987654321})
    text = str(info.value) + repr(info.value.errors)
    assert "123456789" not in text and "987654321" not in text
    assert {e["loc"][0] for e in info.value.errors} == {"ssn", "token"}


def test_whole_records_are_not_echoed_in_missing_field_errors() -> None:
    with pytest.raises(pw.InputValidationError) as info:
        _model()({"income": 1.0, "region": "north", "ssn": "secret-ssn"})
    assert "secret-ssn" not in str(info.value) + repr(info.value.errors)


def test_malformed_inputs_go_to_fallback_when_configured() -> None:
    model = _model(on_invalid="fallback", fallback=pw.Constant(-1))
    for bad in ({"age": "x"}, {**GOOD, "income": math.nan}, "z" * 10_000_000, None, 42):
        p = model.predict_detailed(bad)
        assert (p.value, p.outcome) == (-1, "fallback")
    assert model.stats().failures == {"invalid_input": 5}


def test_any_type_via_type_adapter() -> None:
    model = pw.ProductionModel(sum, input=list[float])
    assert model(["1", 2]) == 3.0
    with pytest.raises(pw.InputValidationError) as info:
        model(["a", 1, "b"])
    assert [e["loc"] for e in info.value.errors] == [(0,), (2,)]


def test_array_spec_accepts_and_converts() -> None:
    model = pw.ProductionModel(lambda a: a, input=pw.ArraySpec(shape=(None, 4), dtype="float64"))
    out = model([[1, 2, 3, 4], [5, 6, 7, 8]])
    assert out.dtype == np.float64 and out.shape == (2, 4)


def test_array_spec_lists_every_problem() -> None:
    model = pw.ProductionModel(lambda a: a, input=pw.ArraySpec(shape=(2, 4), dtype="float64"))
    bad = np.ones((3, 5))
    bad[0, 1] = np.nan
    bad[2, 4] = np.inf
    with pytest.raises(pw.InputValidationError) as info:
        model(bad)
    locs = [e["loc"] for e in info.value.errors]
    assert locs == [("shape", 0), ("shape", 1), ("values", 0, 1), ("values", 2, 4)]


@pytest.mark.parametrize(
    ("value", "loc"),
    [
        ([1.0, 2.0, 3.0], ("shape",)),  # wrong number of dimensions
        ([["a", "b", "c", "d"]], ("dtype",)),  # not numeric
        ([[1, 2], [3]], ("array",)),  # ragged
    ],
)
def test_array_spec_bad_arrays(value: object, loc: tuple[object, ...]) -> None:
    model = pw.ProductionModel(lambda a: a, input=pw.ArraySpec(shape=(None, 4), dtype="float64"))
    with pytest.raises(pw.InputValidationError) as info:
        model(value)
    assert info.value.errors[0]["loc"] == loc


def test_array_spec_nan_allowed_and_many_nans_summarised() -> None:
    ok = pw.ProductionModel(lambda a: a, input=pw.ArraySpec(allow_nan=True))
    assert np.isnan(ok([np.nan])[0])
    strict = pw.ProductionModel(lambda a: a, input=pw.ArraySpec())
    with pytest.raises(pw.InputValidationError) as info:
        strict(np.full(100, np.nan))
    assert len(info.value.errors) == 21 and "100 NaN" in info.value.errors[-1]["msg"]


def test_array_spec_float_to_int_is_refused() -> None:
    model = pw.ProductionModel(lambda a: a, input=pw.ArraySpec(dtype="int64"))
    with pytest.raises(pw.InputValidationError, match="cannot convert"):
        model([1.5])


@pytest.mark.parametrize("kwargs", [{"shape": [1, 2]}, {"shape": (-1,)}, {"dtype": "not-a-dtype"}])
def test_array_spec_rejects_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(pw.ConfigurationError):
        pw.ArraySpec(**kwargs)  # type: ignore[arg-type]


def test_output_validation_and_checks() -> None:
    class Score(BaseModel):
        probability: float

    model = pw.ProductionModel(lambda x: {"probability": x}, output=Score, check=lambda s: 0 <= s.probability <= 1)
    assert model(0.3) == Score(probability=0.3)
    with pytest.raises(pw.OutputValidationError, match="check"):
        model(1.5)
    with pytest.raises(pw.OutputValidationError) as info:
        model("high")
    assert info.value.errors[0]["loc"] == ("probability",)


def test_raising_check_is_an_invalid_output() -> None:
    def check(y: object) -> bool:
        if y == 1:
            raise KeyError("oops")
        return True

    model = pw.ProductionModel(lambda x: x, check=[check], fallback=pw.Constant(None))
    p = model.predict_detailed(1)
    assert p.outcome == "fallback"
    assert isinstance(p.errors[0], pw.OutputValidationError)
    assert isinstance(p.errors[0].__cause__, KeyError)


def test_unsupported_spec_is_a_configuration_error() -> None:
    with pytest.raises(pw.ConfigurationError):
        pw.ProductionModel(lambda x: x, input=object())


@given(
    st.one_of(
        st.none(),
        st.integers(),
        st.floats(),
        st.text(),
        st.binary(),
        st.lists(st.integers()),
        st.dictionaries(st.text(), st.integers() | st.text()),
    )
)
def test_fuzzed_inputs_give_a_prodwrap_error_or_a_value(value: object) -> None:
    try:
        _model()(value)
    except pw.InputValidationError as exc:
        assert exc.errors


def test_nested_and_optional_sensitive_fields_never_leak() -> None:
    class Person(BaseModel):
        ssn: str = Field(json_schema_extra={"sensitive": True}, pattern=r"^\d{3}-\d{2}-\d{4}$")

    class Outer(BaseModel):
        person: Person
        people: list[Person] = []
        token: SecretStr | None = None

    model = pw.ProductionModel(lambda x: x, input=Outer)
    with pytest.raises(pw.InputValidationError) as info:
        model({"person": {"ssn": "123456789"}, "people": [{"ssn": "987654321"}], "token": 55555})
    text = str(info.value) + repr(info.value.errors)
    assert "123456789" not in text and "987654321" not in text and "55555" not in text
    assert len(info.value.errors) == 3
    with pytest.raises(pw.InputValidationError) as info:
        pw.ProductionModel(lambda x: x, input=list[Person])([{"ssn": "123456789"}])
    assert "123456789" not in str(info.value) + repr(info.value.errors)


def test_invalid_json_text_is_not_echoed() -> None:
    with pytest.raises(pw.InputValidationError) as info:
        _model()('{"age": 1, "ssn": "123-45-6789", ')
    assert info.value.errors[0]["type"] == "json_invalid"
    assert "123-45-6789" not in str(info.value) + repr(info.value.errors)


def test_objects_with_attributes_are_read_the_same_at_any_depth() -> None:
    from types import SimpleNamespace

    class Inner(BaseModel):
        name: str

    class Outer(BaseModel):
        p: Inner

    model = pw.ProductionModel(lambda x: x.p.name, input=Outer)
    assert model({"p": SimpleNamespace(name="a")}) == "a"
    assert model(SimpleNamespace(p=SimpleNamespace(name="b"))) == "b"


@pytest.mark.parametrize(
    ("dtype", "value", "message"),
    [
        ("int8", [1000], "do not fit int8"),
        ("float32", [1e300], "do not fit float32"),
        ("int32", [2**40], "do not fit int32"),
    ],
)
def test_array_spec_never_narrows_values_silently(dtype: str, value: list[float], message: str) -> None:
    model = pw.ProductionModel(lambda a: a, input=pw.ArraySpec(dtype=dtype))
    with pytest.raises(pw.InputValidationError, match=message):
        model(value)
    assert model([1]).dtype == np.dtype(dtype)  # values that fit are converted


@pytest.mark.parametrize(
    ("dtype", "value"),
    [
        ("float64", np.array([1, 2**53 + 1], dtype=np.int64)),  # numpy calls this cast "safe"
        ("float64", np.array([2**63 - 1], dtype=np.int64)),  # rounds up to 2**63, beyond int64
        ("float64", np.array([2**64 - 1], dtype=np.uint64)),
        ("complex128", np.array([-(2**62) - 1], dtype=np.int64)),
        ("float32", np.array([2**24 + 1], dtype=np.int32)),
        ("float16", np.array([2049], dtype=np.int16)),
        ("float32", np.array([0.5, 0.1])),  # float64 0.1 is not a float32
        ("complex64", np.array([1 + 0.1j])),
    ],
)
def test_array_spec_refuses_a_conversion_that_changes_a_value(dtype: str, value: np.ndarray) -> None:
    model = pw.ProductionModel(lambda a: a, input=pw.ArraySpec(dtype=dtype))
    with pytest.raises(pw.InputValidationError, match="would change") as info:
        model(value)
    assert f"at ({len(value) - 1},)" in str(info.value)  # the position of the first changed value


@pytest.mark.parametrize(
    ("dtype", "value"),
    [
        ("float64", np.array([2**53, -(2**53), 2**60, -(2**63)], dtype=np.int64)),
        ("float64", np.array([2**64 - 2**11], dtype=np.uint64)),
        ("float32", np.array([2**24, 3, -(2**31)], dtype=np.int32)),
        ("float32", np.array([0.5, -0.0, 0.375, 2.0**-149, 2.0**127])),
        ("float16", np.array([2048, -4096], dtype=np.int64)),
    ],
)
def test_array_spec_converts_when_every_value_survives(dtype: str, value: np.ndarray) -> None:
    out = pw.ProductionModel(lambda a: a, input=pw.ArraySpec(dtype=dtype))(value)
    assert out.dtype == np.dtype(dtype) and out.tolist() == value.tolist()


def test_array_spec_keeps_nan_and_inf_when_narrowing_floats() -> None:
    value = np.array([np.nan, np.inf, -np.inf, 1.5])
    out = pw.ProductionModel(lambda a: a, input=pw.ArraySpec(dtype="float32", allow_nan=True))(value)
    assert out.dtype == np.float32 and np.array_equal(out, value, equal_nan=True)


@given(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=20))
def test_int64_to_float64_is_exact_or_refused(values: list[int]) -> None:
    model = pw.ProductionModel(lambda a: a, input=pw.ArraySpec(dtype="float64"))
    exact = all(int(float(v)) == v for v in values)
    try:
        out = model(np.array(values, dtype=np.int64))
    except pw.InputValidationError as exc:
        assert not exact and "would change" in str(exc)
    else:
        assert exact and [int(v) for v in out] == values


def test_a_check_result_with_no_truth_value_is_a_check_error() -> None:
    import numpy as np

    model = pw.ProductionModel(lambda x: np.array([0.2, 0.9]), check=lambda p: (p >= 0) & (p <= 1))
    with pytest.raises(pw.OutputValidationError, match=r"check_error|raised ValueError"):
        model(1)
    assert model.stats().failures == {"invalid_output": 1}
