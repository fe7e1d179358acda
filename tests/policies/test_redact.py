"""Sensitive values never leave a validation error: not in its message, its ``.errors``, nor
anywhere in its ``__cause__``/``__context__`` chain (DESIGN §3, sensitive fields)."""

from __future__ import annotations

import dataclasses
import json
import traceback
import uuid
from typing import Annotated, Optional

import pydantic
import pydantic.dataclasses
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field, SecretBytes, SecretStr
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict  # pydantic needs it before Python 3.12

import prodwrap as pw


def _everything(exc: BaseException) -> str:
    """All an error shows or holds: its traceback text, args, ``.errors``, and the same for
    every exception in its ``__cause__``/``__context__`` chain (pydantic's own included)."""
    parts = ["".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        parts += [repr(item), repr(item.args), repr(vars(item)) if hasattr(item, "__dict__") else ""]
        if isinstance(item, pydantic.ValidationError):
            parts.append(repr(item.errors()))
        stack += [item.__cause__, item.__context__]
    return "\n".join(parts)


def _leak(model: pw.ProductionModel, value: object, *secrets: str) -> pw.InputValidationError:
    with pytest.raises(pw.InputValidationError) as info:
        model(value)
    shown, held = str(info.value) + repr(info.value.errors), _everything(info.value)
    assert [s for s in secrets if s in shown] == [], "in the message or .errors"
    assert [s for s in secrets if s in held] == [], "in the exception chain"
    return info.value


class Login(BaseModel):
    user: str
    password: SecretStr
    api_key: SecretStr
    backup: SecretBytes | None = None


def test_every_secret_field_is_hidden_not_only_the_first() -> None:
    error = _leak(
        pw.ProductionModel(lambda x: x, input=Login),
        {"user": "u", "password": 11111111, "api_key": 22222222, "backup": 33333333},
        "11111111",
        "22222222",
        "33333333",
    )
    assert [e["loc"][0] for e in error.errors] == ["password", "api_key", "backup"]


class Aliased(BaseModel):
    model_config = pydantic.ConfigDict(alias_generator=str.upper)

    pin: str = Field(pattern=r"^\d{4}$", json_schema_extra={"sensitive": True})
    key: SecretStr = Field(validation_alias="apiKey")
    deep: int = Field(0, validation_alias=pydantic.AliasPath("meta", "deep"), json_schema_extra={"sensitive": True})
    either: int = Field(0, validation_alias=pydantic.AliasChoices("e1", "e2"), json_schema_extra={"sensitive": True})


def test_sensitive_fields_are_hidden_under_their_alias() -> None:
    model = pw.ProductionModel(lambda x: x, input=Aliased)
    value = {"PIN": "12345678", "apiKey": 44444444, "meta": {"deep": "x5555555"}, "e2": "x6666666"}
    error = _leak(model, value, "12345678", "44444444", "x5555555", "x6666666")
    assert [e["loc"] for e in error.errors] == [("PIN",), ("apiKey",), ("meta", "deep"), ("e2",)]
    _leak(model, json.dumps(value), "12345678", "44444444", "x5555555", "x6666666")  # JSON text too


@dataclasses.dataclass
class Card:
    holder: str
    cvv: SecretStr
    number: Annotated[str, Field(json_schema_extra={"sensitive": True}, pattern=r"^\d{16}$")]


@pydantic.dataclasses.dataclass
class Wallet:
    card: Card
    pin: SecretStr


def test_secrets_in_dataclass_specs_are_hidden() -> None:
    value = {"holder": "h", "cvv": 77777777, "number": "88888888"}
    _leak(pw.ProductionModel(lambda x: x, input=Card), value, "77777777", "88888888")
    _leak(pw.ProductionModel(lambda x: x, input=Wallet), {"card": value, "pin": 99999999}, "77777777", "99999999")

    class Holder(BaseModel):
        cards: list[Card]
        by_name: dict[str, Wallet] = {}

    wallet = {"card": value, "pin": 99999999}
    _leak(
        pw.ProductionModel(lambda x: x, input=Holder),
        {"cards": [value], "by_name": {"a": wallet}},
        "77777777",
        "99999999",
    )


class Keys(TypedDict):
    public: str
    private: SecretStr


SHORT_SECRET = Annotated[str, Field(json_schema_extra={"sensitive": True}, max_length=2)]


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        (SecretStr, 12121212),
        (list[SecretStr], [12121212]),
        (Annotated[str, Field(json_schema_extra={"sensitive": True}, max_length=2)], "12121212"),
        (
            dict[str, list[Annotated[str, Field(json_schema_extra={"sensitive": True}, max_length=2)]]],
            {"k": ["12121212"]},
        ),
        (Optional[Login], {"user": "u", "password": 12121212, "api_key": "k"}),  # noqa: UP045 (what users write)
        (tuple[Login, ...], [{"user": "u", "password": "p", "api_key": 12121212}]),
        (Keys, {"public": "p", "private": 12121212}),
    ],
)
def test_secrets_inside_any_type_adapter_spec_are_hidden(spec: object, value: object) -> None:
    _leak(pw.ProductionModel(lambda x: x, input=spec), value, "12121212")


def test_validation_error_chain_keeps_no_raw_value() -> None:
    # pydantic's own ValidationError holds every raw input: it must not be the context
    error = _leak(pw.ProductionModel(lambda x: x, input=Login), {"password": 31313131}, "31313131")
    assert error.__context__ is None and error.__cause__ is None
    nested = _leak(pw.ProductionModel(lambda x: x, input=list[Login]), [{"password": 31313131}], "31313131")
    assert nested.__context__ is None
    fallback = pw.ProductionModel(lambda x: x, input=Login, on_invalid="fallback", fallback=pw.Constant(0))
    p = fallback.predict_detailed({"password": 31313131})
    assert p.outcome == "fallback" and "31313131" not in _everything(p.errors[0])


def test_output_validation_error_chain_keeps_no_raw_value() -> None:
    model = pw.ProductionModel(lambda x: {"user": "u", "password": x, "api_key": "k"}, output=Login)
    secret = 41414141
    with pytest.raises(pw.OutputValidationError) as info:
        model(secret)
    assert str(secret) not in _everything(info.value) and info.value.__context__ is None


def test_messages_that_repeat_a_sensitive_value_are_withheld() -> None:
    class Person(BaseModel):
        ssn: str = Field(json_schema_extra={"sensitive": True})
        id: uuid.UUID = Field(default_factory=uuid.uuid4, json_schema_extra={"sensitive": True})
        name: str = ""

        @pydantic.field_validator("ssn")
        @classmethod
        def _ssn(cls, value: str) -> str:
            raise ValueError(f"{value} is not an ssn")

        @pydantic.field_validator("name")
        @classmethod
        def _name(cls, value: str, info: pydantic.ValidationInfo) -> str:
            raise PydanticCustomError("name_mismatch", "name {name} does not match {ssn}", {"name": value, "ssn": "x"})

        @pydantic.model_validator(mode="before")
        @classmethod
        def _whole(cls, data: object) -> object:
            if isinstance(data, dict) and data.get("name") == "whole":
                raise ValueError(f"record with ssn {data['ssn']} refused")
            return data

    model = pw.ProductionModel(lambda x: x, input=Person)
    error = _leak(model, {"ssn": "51515151", "id": "z51515151"}, "51515151", "z5")
    assert [e["type"] for e in error.errors] == ["value_error", "uuid_parsing"]
    _leak(model, {"ssn": "52525252", "name": "whole"}, "52525252")  # a model-level message naming the value


@given(
    # the prefix keeps the secret from being a word a traceback holds anyway ("pydantic")
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=4, max_size=30).map("s3cr3t".__add__),
    layout=st.sampled_from(["plain", "list", "dict", "nested", "json"]),
)
def test_fuzzed_secrets_never_leak(secret: str, layout: str) -> None:
    class Inner(BaseModel):
        code: Annotated[str, Field(json_schema_extra={"sensitive": True}, max_length=4)]
        key: SecretStr = SecretStr("")
        other: int = 0

    class Outer(BaseModel):
        inner: Inner | None = None
        items: list[Inner] = []
        table: dict[str, Inner] = {}

    bad = {"code": secret, "key": [secret], "other": secret}
    value: object = {
        "plain": {"inner": bad},
        "list": {"items": [bad, bad]},
        "dict": {"table": {"a": bad}},
        "nested": {"inner": bad, "items": [bad], "table": {"b": bad}},
        "json": json.dumps({"items": [bad]}),
    }[layout]
    _leak(pw.ProductionModel(lambda x: x, input=Outer), value, secret)


class Account(BaseModel):
    owner: str
    pin: SecretStr
    note: Annotated[str, Field(json_schema_extra={"sensitive": True})] = ""


def test_a_check_on_a_sensitive_output_neither_quotes_nor_chains_its_exception() -> None:
    def check(account: Account) -> bool:
        return int(account.note) > 0  # ValueError: invalid literal for int() with base 10: '<note>'

    secret = "x61616161"
    model = pw.ProductionModel(lambda note: {"owner": "o", "pin": "p", "note": note}, output=Account, check=check)
    with pytest.raises(pw.OutputValidationError) as info:
        model(secret)
    assert secret not in _everything(info.value)
    assert "raised ValueError" in str(info.value) and info.value.__cause__ is None and info.value.__context__ is None
    secret_text = Annotated[str, Field(json_schema_extra={"sensitive": True})]
    with pytest.raises(pw.OutputValidationError) as info:
        pw.ProductionModel(lambda x: x, output=secret_text, check=str.isdigit)(secret)  # a falsy check
    assert secret not in _everything(info.value) and "input" not in info.value.errors[0]


def test_a_check_on_a_plain_output_quotes_and_chains_its_exception() -> None:
    def check(value: object) -> bool:
        raise ValueError("long story " + "y" * 10_000)

    with pytest.raises(pw.OutputValidationError) as info:
        pw.ProductionModel(lambda x: x, check=check)(1)
    assert isinstance(info.value.__cause__, ValueError) and "raised ValueError: long story yyy" in str(info.value)
    assert len(str(info.value)) < 500  # the exception's text is cut short


def test_json_nested_past_the_parsers_limit_is_a_clean_input_error() -> None:
    from pydantic import BaseModel

    import prodwrap as pw

    class Rec(BaseModel):
        x: float
        password: SecretStr

    model = pw.ProductionModel(lambda r: r.x, input=Rec)
    text = '{"password": "hunter2-secret", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    with pytest.raises(pw.InputValidationError) as info:
        model(text)
    error = info.value
    assert error.__context__ is None and error.__cause__ is None
    assert "hunter2" not in str(error) and "hunter2" not in repr(error.errors)
