"""Feature columns (prodwrap/drift/_features.py): what a window's values become."""

from __future__ import annotations

import enum
from typing import Any

import numpy as np
import pydantic
import pytest

import prodwrap as pw
from prodwrap._record import MISSING
from prodwrap.drift._features import column, output_column, reference_columns, window_columns


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
        (["a", None, MISSING], object, ["a", None, None]),  # a None is a category, and so is an absent value
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
    value-by-value reading, which leaves the absent value out of a numeric feature and counts it."""
    rows = [Reading(a=1.0, b="x"), Reading(a=2.5, b="y")]
    read = window_columns([(r, None) for r in rows], ["a", "b"], {"a": True, "b": False})
    assert read.columns["a"].tolist() == [1.0, 2.5] and read.columns["b"].tolist() == ["x", "y"]
    by_property = window_columns([(r, None) for r in rows], ["doubled"], {"doubled": True})
    assert by_property.columns["doubled"].tolist() == [2.0, 5.0]
    partial = [*rows, Reading.model_construct(b="z")]  # no "a"
    read = window_columns([(r, None) for r in partial], ["a", "b"], {"a": True, "b": False})
    assert read.columns["a"].tolist() == [1.0, 2.5] and read.columns["b"].tolist() == ["x", "y", "z"]
    assert read.missing == {"a": 1, "b": 0}


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


PLANS = [{"plan": p} for p in ["a", "b", None] * 100]  # a categorical feature with a None category


@pytest.mark.parametrize(
    ("live", "unseen"),
    [
        ([None] * 50, 0),  # a window of only None: the category "<missing>", a surge of it
        ([float("nan")] * 50, 0),  # only NaN: the same category
        ([None, 1, 2.5] * 16 + [None, None], 32),  # None among numbers: kept, the numbers unseen labels
    ],
)
def test_a_live_window_takes_its_features_kind_from_the_reference(live: list[Any], unseen: int) -> None:
    monitor = pw.DriftMonitor(PLANS, window=50, background=False)
    for value in live:
        monitor.observe({"plan": value}, None)
    [result] = monitor.check()
    assert result.detector == "chisquare" and result.drifted
    assert (result.n_current, result.n_missing, result.details["unseen"]) == (50, 0, unseen)
    assert monitor.stats().missing == {}  # a categorical feature counts none missing


def test_a_numeric_feature_reads_a_window_of_only_none_as_missing() -> None:
    monitor = pw.DriftMonitor({"x": [float(i) for i in range(100)]}, window=10, background=False)
    for _ in range(10):
        monitor.observe({"x": None}, None)
    assert monitor.check() == [] and monitor.stats().missing == {"x": 10}


def _jsonl_reference() -> list[dict[str, Any]]:
    """Training records as JSON lines often omit a null field: one in five has no "plan"."""
    return [{"x": float(i % 5), **({"plan": ["a", "b"][i % 2]} if i % 5 else {})} for i in range(1, 501)]


class Applicant(pydantic.BaseModel):
    x: float
    plan: str | None = None


def test_a_key_a_reference_record_omits_is_none_as_a_live_none_is() -> None:
    monitor = pw.DriftMonitor(_jsonl_reference(), window=50, background=False)
    assert len(monitor.columns["plan"]) == 500 and monitor.columns["plan"].tolist().count(None) == 100
    for i in range(50):  # the same traffic, live inputs carrying None
        monitor.observe(Applicant(x=float(i % 5), plan=["a", "b"][i % 2] if i % 5 else None), None)
    result = monitor.report()["plan"]
    assert not result.drifted and result.details["unseen"] == 0 and result.n_missing == 0
    for i in range(50):  # live dicts omitting the key: the same
        monitor.observe({"x": float(i % 5), **({"plan": ["a", "b"][i % 2]} if i % 5 else {})}, None)
    assert not monitor.report()["plan"].drifted and monitor.report()["plan"].details["unseen"] == 0


def test_a_key_omitted_in_a_numeric_feature_is_missing_on_both_sides() -> None:
    reference = [{"plan": "a"}, *({"x": float(i % 7), "plan": "a"} for i in range(99))]  # the first omits "x"
    monitor = pw.DriftMonitor(reference, window=10, background=False)
    assert set(monitor.detectors) == {"plan", "x"}  # a key the first record omits is a feature all the same
    assert monitor.reference_missing == {"x": 1, "plan": 0} and len(monitor.columns["x"]) == 99
    for i in range(10):
        monitor.observe({"x": float(i % 7), "plan": "a"} if i % 2 else {"plan": "a"}, None)
    assert monitor.report()["x"].n_missing == 5 and monitor.stats().missing == {"x": 5}


class Scored(pydantic.BaseModel):
    probability: float


OUTPUTS = [{"probability": i / 10} for i in range(10)]


@pytest.mark.parametrize(
    "outputs",
    [
        OUTPUTS,
        tuple(OUTPUTS),  # a tuple of one-field dicts
        tuple(Scored(**o) for o in OUTPUTS),  # of one-field models
        np.array(OUTPUTS, dtype=object),  # an object array of dicts
        (o for o in OUTPUTS),  # any iterable
        tuple(o["probability"] for o in OUTPUTS),  # a tuple of numbers
    ],
)
def test_an_output_reference_of_any_sequence_of_one_field_records_is_read_through(outputs: Any) -> None:
    found = output_column(outputs)
    assert found.columns["output"].tolist() == [i / 10 for i in range(10)] and found.missing == {"output": 0}


@pytest.mark.parametrize("outputs", ["0.5", b"0.5"])
def test_an_output_reference_that_is_one_string_is_refused(outputs: Any) -> None:
    with pytest.raises(pw.ConfigurationError, match=r"^DriftMonitor: output_reference array must be 1-D"):
        output_column(outputs)
