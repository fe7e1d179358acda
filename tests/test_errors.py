from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

import prodwrap as pw
from prodwrap import errors


def test_hierarchy() -> None:
    assert issubclass(pw.InputValidationError, pw.ProdwrapError) and issubclass(pw.InputValidationError, ValueError)
    assert issubclass(pw.ConfigurationError, ValueError)
    assert issubclass(pw.PredictionTimeout, TimeoutError)
    for cls in (pw.OutputValidationError, pw.CircuitOpenError, pw.BulkheadFullError, pw.BudgetExceededError):
        assert issubclass(cls, pw.ProdwrapError)
    assert issubclass(pw.FallbackExhausted, ExceptionGroup) and issubclass(pw.FallbackExhausted, pw.ProdwrapError)


def test_docstring_draws_every_error() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        assert name in doc


def test_field_errors_message_lists_every_error() -> None:
    err = pw.InputValidationError(
        [
            {"type": "missing", "loc": ("a",), "msg": "Field required"},
            {"type": "int_parsing", "loc": ("b", 0), "msg": "bad", "input": "x"},
        ],
        model="m",
    )
    text = str(err)
    assert text.splitlines()[0] == "m: invalid input: 2 errors"
    assert "a: Field required" in text and "b.0: bad" in text and "input='x'" in text


def test_budget_error_attributes_in_message() -> None:
    at = datetime(2026, 1, 2, tzinfo=UTC)
    err = pw.BudgetExceededError(scope="customer=acme", limit=Decimal("25.00"), spent=Decimal("25.01"), resets_at=at)
    assert (err.scope, err.limit, err.spent, err.resets_at) == ("customer=acme", Decimal("25.00"), Decimal("25.01"), at)
    assert "customer=acme" in str(err) and "25.01" in str(err) and "2026-01-02" in str(err)


def test_fallback_exhausted_derive_keeps_type() -> None:
    group = pw.FallbackExhausted("all failed", [ValueError("a"), KeyError("b")])
    matched, rest = group.split(ValueError)
    assert isinstance(matched, pw.FallbackExhausted) and isinstance(rest, pw.FallbackExhausted)


def test_output_errors_read_as_output_errors() -> None:
    err = pw.OutputValidationError(
        [{"type": "float_parsing", "loc": (), "msg": "Input should be a valid number", "input": "high"}], model="m"
    )
    line = "  <output>: Output should be a valid number [type=float_parsing] value='high'"
    assert str(err).splitlines() == ["m: invalid output: 1 error", line]
    assert err.errors[0]["msg"] == "Input should be a valid number"  # .errors stays pydantic's own
    text = str(pw.InputValidationError([{"type": "float_parsing", "loc": (), "msg": "Input should be a valid number"}]))
    assert text.splitlines()[1] == "  <input>: Input should be a valid number [type=float_parsing]"


def test_output_validation_message_through_a_model() -> None:
    with pytest.raises(pw.OutputValidationError) as info:
        pw.ProductionModel(lambda x: x, name="scorer", output=float)("high")
    assert "input" not in str(info.value).lower()
    assert "<output>: Output should be a valid number" in str(info.value)
