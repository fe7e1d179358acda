"""Expectations at their edges: array outputs, masked failure tables, raising predicates,
impossible gates and empty checks (the testing toolkit's attack review)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pydantic
import pytest

import prodwrap as pw
from prodwrap.testing import ExpectationFailed, expect_cases, expect_directional, expect_golden, expect_invariant
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


class Secret(pydantic.BaseModel):
    user: str
    token: pydantic.SecretStr
    ssn: Annotated[str, pw.Sensitive]


RAW = {"user": "u", "token": "hunter2", "ssn": "123-45-6789"}


def _table(model: Any, x: Any) -> str:
    with pytest.raises(ExpectationFailed) as info:
        expect_cases(model, [(x, 1)])
    return str(info.value)


def test_failure_tables_mask_json_text_inputs_and_annotated_plain_callables() -> None:
    model = pw.ProductionModel(lambda i: 0, input=Secret, name="sec")
    for x in (RAW, json.dumps(RAW), json.dumps(RAW).encode()):
        table = _table(model, x)
        assert "hunter2" not in table and "123-45" not in table and "'user': 'u'" in table

    def plain(i: Secret) -> int:
        return 0

    table = _table(plain, Secret(**RAW))  # type: ignore[arg-type]
    assert "123-45" not in table and "'ssn': '***'" in table
    assert "'u'" in _table(lambda i: 0, "u")  # nothing to mask: shown as given


def test_confidence_with_a_bar_of_one_is_refused_as_it_can_never_pass() -> None:
    with pytest.raises(
        pw.ConfigurationError, match=r"never reaches 1 \(1000 of 1000 runs gives 0\.99.*min_pass_rate below 1"
    ):
        expect_cases(lambda x: x, [(1, 1)], repeat=1000, confidence=0.95)
    assert expect_cases(lambda x: x, [(1, 1)], repeat=100, confidence=0.95, min_pass_rate=0.9).passed


def test_a_raising_predicate_or_compare_fails_its_case_not_the_whole_check() -> None:
    cases = [(1, 1), (2, lambda out: out["probability"] > 0.5), (3, 4)]
    with pytest.raises(ExpectationFailed) as info:
        expect_cases(lambda x: x, cases)
    result = info.value.result
    assert [c.passed for c in result.cases] == [True, False, False]
    assert "predicate raised TypeError: 'int' object is not subscriptable" in str(info.value)
    with pytest.raises(ExpectationFailed) as info:
        expect_cases(lambda x: x, [(1, 1), (2, 3)], compare=lambda got, want: abs(got - want["v"]) < 1)
    assert len(info.value.result.failures) == 2 and "compare raised TypeError" in str(info.value)


def test_checks_of_nothing_fail(tmp_path: Path) -> None:
    with pytest.raises(ExpectationFailed, match=r"expect_cases\(<lambda>\): no cases to check: cases is empty"):
        expect_cases(lambda x: x, [])
    with pytest.raises(ExpectationFailed, match="no cases to check: inputs is empty"):
        expect_invariant(lambda x: x, [], lambda x: x)
    with pytest.raises(ExpectationFailed, match="no cases to check: inputs is empty"):
        expect_directional(lambda x: x, [], lambda x: x)
    empty = tmp_path / "g.jsonl"
    empty.write_text("")
    with pytest.raises(ExpectationFailed, match=f"golden file {re.escape(str(empty))} has no lines") as info:
        expect_golden(lambda x: x, empty)
    assert not info.value.result.passed
    expect_golden(lambda x: x, empty, update=True, inputs=[1])
    with pytest.raises(ExpectationFailed, match="inputs is empty"):
        expect_golden(lambda x: x, empty, inputs=[])
