"""pw.compare: equal, close, same_label, top_k."""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal

import numpy as np
import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

import prodwrap as pw
from prodwrap.rollout.compare import close, equal, same_label, top_k


class Score(pydantic.BaseModel):
    probability: float
    label: str


@dataclasses.dataclass
class Point:
    x: float
    y: float


def test_equal_goes_through_containers_arrays_and_models() -> None:
    assert equal({"a": [1, (2, 3)]}, {"a": [1, (2, 3)]})
    assert not equal({"a": [1, 2]}, {"a": [1, 3]})
    assert not equal({"a": 1}, {"b": 1})
    assert not equal([1, 2], [1, 2, 3])
    assert equal(np.array([1.0, np.nan]), np.array([1.0, np.nan]))  # NaN equals NaN
    assert not equal(np.array([1, 2]), np.array([[1, 2]]))  # shapes differ
    assert equal(float("nan"), float("nan"))
    assert equal(Score(probability=0.5, label="a"), Score(probability=0.5, label="a"))
    assert not equal(Score(probability=0.5, label="a"), Score(probability=0.5000001, label="a"))
    assert equal("spam", "spam") and not equal("spam", "ham")


def test_close_within_tolerance_everywhere() -> None:
    c = close(atol=0.01)
    assert c(0.5, 0.505) and not c(0.5, 0.52)
    assert close()(1.0, 1.0 + 1e-12) and not close()(1.0, 1.0001)
    assert close(rtol=0.1)(100, 109) and not close(rtol=0.1)(100, 112)
    assert c(Decimal("0.50"), 0.501)
    assert c(np.array([0.1, 0.2]), np.array([0.105, 0.195]))
    assert not c(np.array([0.1, 0.2]), np.array([0.1, 0.3]))
    assert not c(np.array([0.1, 0.2]), np.array([0.1]))
    assert c(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]))
    assert c(Score(probability=0.5, label="a"), Score(probability=0.504, label="a"))  # field-wise
    assert not c(Score(probability=0.5, label="a"), Score(probability=0.5, label="b"))
    assert c(Point(1.0, 2.0), Point(1.001, 2.0))
    assert c({"p": [0.1, {"q": 0.2}]}, {"p": [0.1, {"q": 0.201}]})
    assert not c(float("nan"), 1.0) and c(float("nan"), float("nan"))
    assert c(True, True) and not c(True, False)  # bools compare by equality
    assert "atol=0.01" in repr(c)


def test_close_refuses_nonsense_tolerances() -> None:
    for bad in (-1.0, math.inf, math.nan, True, "0.1"):
        with pytest.raises(pw.ConfigurationError, match="close"):
            close(atol=bad)  # type: ignore[arg-type]


@given(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6), st.floats(0, 1), st.floats(0, 10))
def test_close_is_symmetric(a: float, b: float, rtol: float, atol: float) -> None:
    c = close(rtol, atol)
    assert c(a, b) == c(b, a) == c(np.array([a]), np.array([b]))


def test_same_label_reads_labels_and_argmaxes() -> None:
    assert same_label(Score(probability=0.9, label="spam"), Score(probability=0.6, label="spam"))
    assert not same_label(Score(probability=0.9, label="spam"), Score(probability=0.9, label="ham"))
    assert same_label({"label": 1, "p": 0.9}, {"label": 1, "p": 0.2})
    assert same_label([0.1, 0.7, 0.2], [0.3, 0.4, 0.3])
    assert not same_label([0.1, 0.7, 0.2], [0.5, 0.4, 0.1])
    assert same_label(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([[0.6, 0.4], [0.4, 0.6]]))  # a batch
    assert not same_label(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([[0.6, 0.4], [0.6, 0.4]]))
    assert same_label("cat", "cat") and not same_label(3, 4)
    assert same_label([0.5, 0.5], [0.5, 0.5])  # ties go to the first index on both sides


def test_top_k_compares_the_top_sets() -> None:
    t = top_k(2)
    assert t([0.1, 0.9, 0.8, 0.2], [0.2, 0.7, 0.95, 0.0])  # {1, 2} either way
    assert not t([0.1, 0.9, 0.8, 0.2], [0.9, 0.7, 0.1, 0.0])
    assert t({"a": 3, "b": 2, "c": 1}, {"b": 5, "a": 4, "c": 0})
    assert t(["doc1", "doc2", "doc3"], ["doc2", "doc1", "doc9"])  # ranked lists: first k
    assert not t(["doc1", "doc2"], ["doc1", "doc3"])
    assert top_k(1)(np.array([1.0, 3.0]), np.array([0.0, 2.0]))
    assert repr(t) == "compare.top_k(2)"
    with pytest.raises(TypeError, match="rank"):
        t(3, 4)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(pw.ConfigurationError, match="top_k"):
            top_k(bad)  # type: ignore[arg-type]


def test_comparators_work_as_shadow_compare() -> None:
    model = pw.ProductionModel(
        lambda x: [0.2, 0.8], shadow=pw.Shadow(lambda x: [0.4, 0.6], compare=pw.compare.same_label)
    )
    model(1)
    assert model.shadow_report(wait=10).agreements == 1
    assert model.describe()["shadow"][0]["compare"] == "same_label"
    model.close()
