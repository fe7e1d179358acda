"""Feature columns (prodwrap/drift/_features.py): what a window's values become."""

from __future__ import annotations

import enum
from typing import Any

import numpy as np
import pydantic
import pytest

import prodwrap as pw
from prodwrap._record import MISSING
from prodwrap.drift._features import column, reference_columns, window_columns


class Size(enum.IntEnum):
    S = 1
    L = 3


class Colour(enum.Enum):
    RED = "red"


@pytest.mark.parametrize(
    ("values", "dtype", "expected"),
    [
        ([1, 2.5, None, MISSING], np.float64, [1.0, 2.5]),  # numbers: float64, the absent left out
        ([], np.float64, []),
        ([True, 1], object, [True, 1]),  # a bool is no number
        (["a", "b"], object, ["a", "b"]),
        (["a", None, MISSING], object, ["a", None]),  # a None is a category: kept, the absent left out
        ([Colour.RED, None], object, ["red", None]),
        ([np.float64(1.5), np.int32(2)], np.float64, [1.5, 2.0]),  # numpy scalars read as theirs
        ([Size.L, 2], np.float64, [3.0, 2.0]),  # an enum member by its value
        ([Colour.RED, "red"], object, ["red", "red"]),
        ([np.bool_(True)], object, [True]),
    ],
)
def test_a_column_is_numeric_exactly_when_every_present_value_is_a_number(
    values: list[Any], dtype: type, expected: list[Any]
) -> None:
    col = column(values)
    assert col.dtype == dtype and col.tolist() == expected


def test_plain_and_wrapped_outputs_give_the_same_output_column() -> None:
    plain = window_columns([({"a": 1.0}, 0.5), ({"a": 2.0}, 1.5)], ["a", "output"], {"a": True})
    wrapped = window_columns([({"a": 1.0}, {"p": 0.5}), ({"a": 2.0}, {"p": 1.5})], ["a", "output"], {"a": True})
    assert plain.columns["output"].tolist() == wrapped.columns["output"].tolist() == [0.5, 1.5]
    assert plain.columns["a"].tolist() == [1.0, 2.0]


class Reading(pydantic.BaseModel):
    a: float
    b: str

    @property
    def doubled(self) -> float:
        return 2 * self.a


def test_pydantic_inputs_are_read_from_their_fields_and_properties_alike() -> None:
    """Fields are read from each instance's ``__dict__``; a feature that is no field (a property)
    as an attribute; an instance missing a field (``model_construct``) sends the window to the
    value-by-value reading, which leaves the absent value out."""
    rows = [Reading(a=1.0, b="x"), Reading(a=2.5, b="y")]
    read = window_columns([(r, None) for r in rows], ["a", "b"], {"a": True, "b": False})
    assert read.columns["a"].tolist() == [1.0, 2.5] and read.columns["b"].tolist() == ["x", "y"]
    by_property = window_columns([(r, None) for r in rows], ["doubled"], {"doubled": True})
    assert by_property.columns["doubled"].tolist() == [2.0, 5.0]
    partial = [*rows, Reading.model_construct(b="z")]  # no "a"
    read = window_columns([(r, None) for r in partial], ["a", "b"], {"a": True, "b": False})
    assert read.columns["a"].tolist() == [1.0, 2.5] and read.columns["b"].tolist() == ["x", "y", "z"]


INF = float("inf")


@pytest.mark.parametrize(
    "rows",
    [
        [Reading(a=v, b="x") for v in (1.0, INF, -INF, float("nan"), 2.0)],  # one model: read at once
        [{"a": v, "b": "x"} for v in (1.0, INF, -INF, float("nan"), 2.0)],  # dicts: read at once
        [{"a": 1.0, "b": "x"}, Reading(a=INF, b="x"), {"a": -INF}, {"a": float("nan")}, {"a": 2.0}],  # one by one
    ],
)
def test_infinite_live_values_are_left_out_and_counted_as_nan_is(rows: list[Any]) -> None:
    read = window_columns([(r, None) for r in rows], ["a"], {"a": True})
    assert read.columns["a"].tolist() == [1.0, 2.0] and read.missing == {"a": 3}


def test_infinite_outputs_and_several_numeric_features_are_left_out_too() -> None:
    rows = [({"a": 1.0, "b": INF}, INF), ({"a": -INF, "b": 2.0}, 0.5), ({"a": 3.0, "b": 4.0}, None)]
    read = window_columns(rows, ["a", "b", "output"], {"a": True, "b": True})
    assert read.columns["a"].tolist() == [1.0, 3.0] and read.columns["b"].tolist() == [2.0, 4.0]
    assert read.columns["output"].tolist() == [0.5] and read.missing == {"a": 1, "b": 1, "output": 2}


def test_a_categorical_column_keeps_infinity_as_a_label() -> None:
    read = window_columns([({"k": v}, None) for v in ("x", INF)], ["k"], {"k": False})
    assert read.columns["k"].tolist() == ["x", INF] and read.missing == {"k": 0}


@pytest.mark.parametrize("reference", [[], None, 5, {}, np.empty((4, 0)), np.zeros((2, 2, 2))])
def test_a_reference_that_is_no_data_set_is_a_configuration_error(reference: Any) -> None:
    with pytest.raises(pw.ConfigurationError, match=r"^DriftMonitor: reference ") as info:
        reference_columns(reference)
    assert isinstance(info.value, ValueError)  # as the ValueError it was
