"""Expectations at their edges: array outputs, masked failure tables, raising predicates,
impossible gates and empty checks (the testing toolkit's attack review)."""

from __future__ import annotations

import numpy as np
import pytest

import prodwrap as pw
from prodwrap.testing import ExpectationFailed, expect_cases, expect_invariant
from prodwrap.testing._calls import close

ROWS = pw.ProductionModel(lambda a: a.sum(axis=1), input=pw.ArraySpec(shape=(None, 2), dtype="float64"), name="rows")


def test_array_outputs_compare_element_wise_with_shape_and_nan() -> None:
    rows = [[[1.0, 2.0], [3.0, 4.0]]]
    assert expect_invariant(ROWS, rows, lambda a: a).passed
    assert expect_invariant(ROWS, rows, lambda a: [[v + 1e-12 for v in r] for r in a], tol=1e-6).passed
    assert expect_cases(ROWS, [(rows[0], np.array([3.0, 7.0]))]).passed
    with pytest.raises(ExpectationFailed, match="1 of 1 cases failed"):
        expect_cases(ROWS, [(rows[0], np.array([3.0, 8.0]))])
    assert close(np.array([1.0, np.nan]), np.array([1.0, np.nan]))
    assert not close(np.array([1.0, 2.0]), np.array([[1.0, 2.0]]))  # another shape
    assert not close(np.array([3.0]), 3.0) and close(np.float64(3.0), 3.0)
