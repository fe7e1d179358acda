"""What an audit line holds: every value JSON-able by the documented fallbacks, every
sensitive value hashed at any depth and under its aliases, charges written when the cost
accounting gives them."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import uuid
from decimal import Decimal
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np
import pydantic

from prodwrap._audit_lines import MAX_ITEMS, MAX_PAYLOAD, MAX_TEXT, Redactor, iso_utc

SALT = b"test-salt"


def plain(**names: Any) -> Redactor:
    return Redactor(frozenset(names.get("names", ())), SALT)


def test_json_fallbacks_for_values_json_has_not() -> None:
    class Colour(enum.Enum):
        RED = "red"

    class Opaque:
        secret = "never shown"

    r = plain()
    when = datetime.datetime(2026, 5, 9, 7, 35, tzinfo=datetime.UTC)
    ident = uuid.UUID(int=1)
    value = {
        "price": Decimal("0.0001"),
        "bad": [float("nan"), float("inf"), -float("inf"), 1.5],
        "when": when,
        "id": ident,
        "colour": Colour.RED,
        "set": {3},
        "tuple": (1, 2),
        "text": b"caf\xc3\xa9",
        "binary": b"\xff\x00",
        "opaque": Opaque(),
        3: "int key",
    }
    out = r.jsonable(value)
    assert out == {
        "price": "0.0001",
        "bad": ["NaN", "Infinity", "-Infinity", 1.5],
        "when": "2026-05-09T07:35:00Z",
        "id": str(ident),
        "colour": "red",
        "set": [3],
        "tuple": [1, 2],
        "text": "café",
        "binary": "base64:/wA=",
        "opaque": "<test_json_fallbacks_for_values_json_has_not.<locals>.Opaque>",
        "3": "int key",
    }
    json.dumps(out, allow_nan=False)  # strict JSON


def test_numpy_values_are_lists_when_small_and_a_summary_when_large() -> None:
    r = plain()
    assert r.jsonable(np.arange(4).reshape(2, 2)) == [[0, 1], [2, 3]]
    assert r.jsonable(np.float32(0.5)) == 0.5 and r.jsonable(np.int64(7)) == 7
    assert r.jsonable(np.array(3.0)) == 3.0
    assert r.jsonable(np.array([np.nan])) == ["NaN"]
    big = np.zeros((MAX_ITEMS + 1,), dtype="float32")
    summary = r.jsonable(big)
    assert summary == {
        "summary": "ndarray",
        "shape": [MAX_ITEMS + 1],
        "dtype": "float32",
        "hash": r.hash_of(big.tobytes()),
    }
    assert r.jsonable(big + 1)["hash"] != summary["hash"]


def test_long_bytes_are_summarised() -> None:
    r = plain()
    data = b"x" * 70_000
    assert r.jsonable(data) == {"summary": "bytes", "length": 70_000, "hash": r.hash_of(data)}


def test_long_strings_are_summarised_as_long_bytes_are_when_asked_and_sensitive_ones_hashed_first() -> None:
    r = Redactor(frozenset({"ssn"}), SALT, max_text=MAX_TEXT)
    text, edge = "é" * (MAX_TEXT + 1), "x" * MAX_TEXT
    summary = {"summary": "str", "length": MAX_TEXT + 1, "hash": r.hash_of(text)}
    assert r.bounded(r.jsonable(text)) == summary and r.bounded(r.jsonable(edge)) == edge  # (length in characters)
    assert r.bounded(r.jsonable({"note": [text], "ssn": text})) == {"note": [summary], "ssn": r.hash_of(text)}
    assert r.hash_of(text) == plain().hash_of(text) != r.hash_of(summary)  # hashed whole, not as its summary
    assert plain().jsonable(text) == text  # without max_text (golden files, cassettes): whole


def test_a_bounded_side_summarises_huge_keys_as_huge_strings_and_leaves_a_small_one_as_it_is() -> None:
    r = Redactor(frozenset({"ssn"}), SALT, max_text=MAX_TEXT)
    key, text = "Z" * (MAX_TEXT + 1), "é" * (MAX_TEXT + 1)
    summary = {"summary": "str", "length": MAX_TEXT + 1, "hash": r.hash_of(text)}
    short = {"a": [1, 2.5, None, True, "b"], "c": {"d": "x" * MAX_TEXT}}
    assert r.bounded(short) == short and r.bounded(None) is None and r.bounded(7) == 7
    assert r.bounded(r.jsonable({key: 1, "ok": 2})) == {f"summary:str:{MAX_TEXT + 1}:{r.hash_of(key)}": 1, "ok": 2}
    # the sides keep strings whole (taken on the prediction's thread); bounding summarises them after
    p = FakePrediction(value={"note": text})
    taken = r.sides(p, {"ssn": text, "doc": [text]}, True)  # type: ignore[arg-type]
    assert taken == ({"ssn": r.hash_of(text), "doc": [text]}, {"note": text})  # (redaction first, whole)
    assert [r.bounded(side) for side in taken] == [{"ssn": r.hash_of(text), "doc": [summary]}, {"note": summary}]
    assert plain().bounded({key: text}) == {key: text}  # without max_text (golden files, cassettes): whole


def test_a_side_whose_json_text_is_over_max_payload_is_written_as_one_summary() -> None:
    r = Redactor(frozenset(), SALT, max_text=MAX_TEXT)
    many = ["x" * MAX_TEXT] * 15 + [""]  # strings each within max_text, together too many
    many[-1] = "é" * (MAX_PAYLOAD - len(json.dumps(many, separators=(",", ":"))))
    assert len(json.dumps(many, separators=(",", ":"), ensure_ascii=False)) == MAX_PAYLOAD
    assert r.bounded(many) == many  # at the limit: as it is
    over = [*many[:-1], many[-1] + "é"]
    assert r.bounded(over) == {"summary": "json", "length": MAX_PAYLOAD + 1, "hash": r.hash_of(over)}
    assert r.bounded({"rows": over})["summary"] == "json"
    escaped = ["\x01" * (MAX_TEXT // 2)] * 8  # (within MAX_PAYLOAD characters, not once escaped)
    assert r.bounded(escaped)["length"] == len(json.dumps(escaped, separators=(",", ":"))) > MAX_PAYLOAD


def test_sensitive_names_are_hashed_in_models_dataclasses_named_tuples_and_mappings_under_aliases() -> None:
    class Card(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="allow")
        number: str = pydantic.Field(alias="cardNumber")
        brand: str

    @dataclasses.dataclass
    class Holder:
        ssn: str
        cards: list[Card]

    class Pair(NamedTuple):
        ssn: str
        n: int

    r = Redactor(frozenset({"cardNumber", "ssn", "pin"}), SALT)  # "cardNumber": the alias only
    card = Card.model_validate({"cardNumber": "4111", "brand": "visa", "pin": "0000"})
    out = r.jsonable({"holder": Holder("123-45-6789", [card]), "pair": Pair("987", 1)})
    assert out == {
        "holder": {
            "ssn": r.hash_of("123-45-6789"),
            "cards": [{"number": r.hash_of("4111"), "brand": "visa", "pin": r.hash_of("0000")}],
        },
        "pair": {"ssn": r.hash_of("987"), "n": 1},
    }


def test_a_sensitive_subtree_is_hashed_whole_from_its_canonical_text() -> None:
    r = Redactor(frozenset({"address"}), SALT)
    one = r.jsonable({"address": {"street": "1 Main St", "city": "Springfield"}})
    other = r.jsonable({"address": {"city": "Springfield", "street": "1 Main St"}})
    assert one == other == {"address": r.hash_of({"city": "Springfield", "street": "1 Main St"})}
    assert "Main" not in json.dumps(one)


def test_secrets_are_hashed_anywhere_as_their_revealed_value() -> None:
    r = plain()
    out = r.jsonable({"k": pydantic.SecretStr("s3cret"), "b": [pydantic.SecretBytes(b"raw")]})
    assert out == {"k": r.hash_of("s3cret"), "b": [r.hash_of(b"raw")]}
    assert r.hash_of(pydantic.SecretStr("s3cret")) == r.hash_of("s3cret")
    assert r.hash_of("s3cret") != Redactor(frozenset(), b"other").hash_of("s3cret")
    assert r.hash_of("s3cret").startswith("redacted:") and len(r.hash_of("x")) == len("redacted:") + 32


def test_nesting_is_cut_short_rather_than_recursing_forever() -> None:
    loop: list[Any] = []
    loop.append(loop)
    out = plain().jsonable(loop)
    depth = 0
    while isinstance(out, list):
        out, depth = out[0], depth + 1
    assert out == "<too deep>" and depth == 33


class Charge(NamedTuple):
    """The shape of the cost accounting's ``pw.Charge`` (DESIGN §2)."""

    model: str
    version: str | None
    served_by: str
    attempt: int
    amount: Decimal
    tokens: dict[str, int] | None


@dataclasses.dataclass
class FakePrediction:
    """A prediction as the cost accounting will fill it: ``cost``, ``charges``, ``unpriced``."""

    id: str = "p-1"
    value: Any = 0.5
    outcome: str = "fallback"
    served_by: str = "cheap"
    model: str = "m"
    version: str | None = "2"
    attempts: int = 2
    latency: float = 0.25
    cost: Decimal = Decimal("0.0025")
    errors: tuple[BaseException, ...] = (TimeoutError(), TimeoutError())
    trace_id: str | None = "ab" * 16
    tags: Any = dataclasses.field(default_factory=lambda: MappingProxyType({"customer": "acme"}))
    drift: tuple[Any, ...] = ()
    escalated: bool = False
    charges: tuple[Charge, ...] = (
        Charge("m", "2", "primary", 1, Decimal("0.001"), {"input": 10, "output": 0}),
        Charge("m", "2", "primary", 2, Decimal("0.001"), None),
        Charge("cheap", None, "cheap", 1, Decimal("0.0005"), None),
    )
    unpriced: bool = False


def test_a_line_writes_cost_as_a_decimal_string_and_each_charge() -> None:
    line = plain().line(FakePrediction(), {"x": 1}, True, ["timeout", "timeout"], 0.0)  # type: ignore[arg-type]
    assert line["time"] == "1970-01-01T00:00:00.000000Z"
    assert line["cost"] == "0.0025" and line["unpriced"] is False
    assert line["charges"][0] == {
        "model": "m",
        "version": "2",
        "served_by": "primary",
        "attempt": 1,
        "amount": "0.001",
        "tokens": {"input": 10, "output": 0},
    }
    assert [c["amount"] for c in line["charges"]] == ["0.001", "0.001", "0.0005"]
    assert line["errors"] == ["TimeoutError", "TimeoutError"] and line["reasons"] == ["timeout", "timeout"]
    assert line["trace_id"] == "ab" * 16 and line["tags"] == {"customer": "acme"}
    json.dumps(line, allow_nan=False)


def test_iso_utc_keeps_microseconds_and_rounds_into_the_next_second() -> None:
    assert iso_utc(1_700_000_000.123456) == "2023-11-14T22:13:20.123456Z"
    assert iso_utc(1_700_000_000.9999996) == "2023-11-14T22:13:21.000000Z"
    assert iso_utc(1_700_000_000.5) == "2023-11-14T22:13:20.500000Z"  # the cached second, again
    assert iso_utc(0.0) == "1970-01-01T00:00:00.000000Z"
    assert iso_utc(-0.5) == "1969-12-31T23:59:59.500000Z"


def test_a_line_names_the_features_of_its_drift_alerts() -> None:
    @dataclasses.dataclass
    class Alert:
        feature: str

    prediction = FakePrediction(drift=(Alert("age"), Alert("income")), escalated=True)
    line = plain().line(prediction, 1, True, None, 0.0)  # type: ignore[arg-type]
    assert line["drift"] == ["age", "income"] and line["escalated"] is True
