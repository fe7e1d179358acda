"""``pw.Sensitive``: ``Annotated[T, pw.Sensitive]`` marks a field as ``json_schema_extra=
{"sensitive": True}`` does, wherever it is declared, and changes nothing else."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import pydantic
import pytest

import prodwrap as pw
from prodwrap.policies._redact import find_sensitive


class Card(pydantic.BaseModel):
    number: str


class Plain(pydantic.BaseModel):
    card: Card


class Payment(pydantic.BaseModel):
    ssn: Annotated[str, pw.Sensitive] = pydantic.Field(alias="SSN")
    card: Annotated[Card, pw.Sensitive]
    other: Card
    pins: list[Annotated[int, pw.Sensitive()]] = []
    note: str = ""


def test_marked_fields_are_found_with_their_aliases() -> None:
    found = find_sensitive(Payment.__pydantic_core_schema__)
    assert found.names == {"ssn", "SSN", "card", "pins"}
    assert not found.everywhere


def test_a_marked_model_field_leaves_the_model_itself_unmarked() -> None:
    assert Payment  # built: marking its card field must not have marked Card
    assert not find_sensitive(Card.__pydantic_core_schema__)
    assert not find_sensitive(Plain.__pydantic_core_schema__)


def test_a_marked_type_is_sensitive_everywhere_and_in_dataclasses() -> None:
    assert find_sensitive(pydantic.TypeAdapter(Annotated[str, pw.Sensitive]).core_schema).everywhere

    @dataclasses.dataclass
    class Row:
        token: Annotated[str, pw.Sensitive]
        n: int

    assert find_sensitive(pydantic.TypeAdapter(Row).core_schema).names == {"token"}


def test_the_marker_changes_no_validation_and_says_so_in_the_json_schema() -> None:
    p = Payment.model_validate({"SSN": "123-45-6789", "card": {"number": "4111"}, "other": {"number": "1"}})
    assert p.ssn == "123-45-6789" and p.card.number == "4111"
    schema = Payment.model_json_schema(by_alias=True)
    assert schema["properties"]["SSN"]["sensitive"] is True
    assert schema["properties"]["card"]["sensitive"] is True
    assert "sensitive" not in schema["properties"]["other"]
    assert repr(pw.Sensitive()) == "pw.Sensitive"


def test_validation_errors_hide_a_marked_field_value() -> None:
    model = pw.ProductionModel(lambda p: 1, input=Payment)
    with pytest.raises(pw.InputValidationError) as info:
        model({"SSN": ["secret-ssn-value"], "card": {"number": 4111}, "other": {"number": "1"}})
    shown = str(info.value) + repr(info.value.errors)
    assert "secret-ssn-value" not in shown
    assert {e["loc"][0] for e in info.value.errors} == {"SSN", "card"}
    assert all("input" not in e for e in info.value.errors)
