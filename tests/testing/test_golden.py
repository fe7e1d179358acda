"""``expect_golden``: JSON-lines golden files and their update switch (issue 14, item 4)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pydantic
import pytest

import prodwrap as pw
from prodwrap.testing import ExpectationFailed, expect_golden
from prodwrap.testing._golden import ENV, input_key


class Applicant(pydantic.BaseModel):
    age: int
    income: float


class Score(pydantic.BaseModel):
    probability: float


def risk(a: Applicant) -> Score:
    return Score(probability=round(1 - a.income / 100_000, 6))


MODEL = pw.ProductionModel(risk, input=Applicant, output=Score, name="credit-risk")
INPUTS = [{"age": 30, "income": 90_000}, {"age": 50, "income": 20_000}]


@pytest.fixture(autouse=True)
def _no_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr("prodwrap.testing._golden.UPDATE", [False])


def test_a_missing_file_fails_saying_how_to_create_it(tmp_path: Path) -> None:
    path = tmp_path / "golden.jsonl"
    with pytest.raises(ExpectationFailed) as info:
        expect_golden(MODEL, path, inputs=INPUTS)
    message = str(info.value)
    assert str(path) in message and "does not exist" in message
    assert "update=True" in message and "--prodwrap-update-golden" in message and f"{ENV}=1" in message
    assert not path.exists()


def test_a_missing_file_checked_without_inputs_says_inputs_are_needed_to_create_it(tmp_path: Path) -> None:
    path = tmp_path / "golden.jsonl"
    with pytest.raises(ExpectationFailed) as info:
        expect_golden(MODEL, path)
    message = str(info.value)
    assert "does not exist; create it with inputs= (the inputs to record) and update=True" in message
    with pytest.raises(pw.ConfigurationError, match="pass inputs= to record it"):
        expect_golden(MODEL, path, update=True)  # update=True alone is not enough
    assert expect_golden(MODEL, path, inputs=INPUTS, update=True).passed  # what the message asks for
    assert expect_golden(MODEL, path).passed


def test_update_records_then_the_file_is_checked_from_its_own_inputs(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "golden.jsonl"
    result = expect_golden(MODEL, path, update=True, inputs=INPUTS)
    assert result.passed and "updated" in result.notes[0]
    header, *lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [line["output"] for line in lines] == [{"probability": 0.1}, {"probability": 0.8}]
    assert lines[0]["input"] == {"age": 30, "income": 90_000}
    salt = bytes.fromhex(header["salt"])
    assert lines[0]["key"] == input_key(MODEL, Applicant(age=30, income=90_000.0), salt)  # dict or instance: one key
    assert expect_golden(MODEL, path).passed  # the inputs the file holds
    assert expect_golden(MODEL, path, inputs=[Applicant(age=50, income=20_000)]).passed


def test_a_changed_output_fails_with_golden_and_got_and_tol_allows_small_moves(tmp_path: Path) -> None:
    path = tmp_path / "golden.jsonl"
    expect_golden(MODEL, path, update=True, inputs=INPUTS)
    drifted = pw.ProductionModel(
        lambda a: Score(probability=risk(a).probability + 0.01), input=Applicant, output=Score, name="credit-risk"
    )
    with pytest.raises(ExpectationFailed) as info:
        expect_golden(drifted, path)
    message = str(info.value)
    assert message.splitlines()[0] == "expect_golden(credit-risk): 2 of 2 cases failed"
    assert "golden" in message.splitlines()[1] and "{'probability': 0.1}" in message and "0.11" in message
    expect_golden(drifted, path, tol=0.02)


def test_an_input_the_file_does_not_have_fails_until_updated(tmp_path: Path) -> None:
    path = tmp_path / "golden.jsonl"
    expect_golden(MODEL, path, update=True, inputs=INPUTS[:1])
    with pytest.raises(ExpectationFailed, match="no golden line"):
        expect_golden(MODEL, path, inputs=INPUTS)
    result = expect_golden(MODEL, path, inputs=INPUTS[:1] + INPUTS[:1])
    assert result.passed
    result = expect_golden(MODEL, path, inputs=INPUTS[1:], update=True)
    assert expect_golden(MODEL, path).passed and len(path.read_text().splitlines()) == 2


def test_unchecked_lines_are_noted_not_failed(tmp_path: Path) -> None:
    path = tmp_path / "golden.jsonl"
    expect_golden(MODEL, path, update=True, inputs=INPUTS)
    result = expect_golden(MODEL, path, inputs=INPUTS[:1])
    assert result.passed and result.notes == ("1 golden line(s) not checked by these inputs",)


def test_errors_are_golden_too(tmp_path: Path) -> None:
    path = tmp_path / "golden.jsonl"
    bad = [{"age": "forty", "income": 1}]
    expect_golden(MODEL, path, update=True, inputs=bad)
    assert json.loads(path.read_text().splitlines()[1])["error"] == "InputValidationError"
    expect_golden(MODEL, path)
    lenient = pw.ProductionModel(lambda a: Score(probability=0.0), name="credit-risk")
    with pytest.raises(ExpectationFailed, match="raises InputValidationError"):
        expect_golden(lenient, path)


@pytest.mark.parametrize("how", ["env", "option"])
def test_the_switch_updates_without_update_true(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    path = tmp_path / "golden.jsonl"
    if how == "env":
        monkeypatch.setenv(ENV, "1")
    else:
        monkeypatch.setattr("prodwrap.testing._golden.UPDATE", [True])
    assert "updated" in expect_golden(MODEL, path, inputs=INPUTS).notes[0]
    assert path.exists()
    other = pw.ProductionModel(lambda a: Score(probability=0.5), input=Applicant, name="credit-risk")
    expect_golden(other, path)  # rewritten again, not compared
    assert json.loads(path.read_text().splitlines()[1])["output"] == {"probability": 0.5}
    with pytest.raises(ExpectationFailed):
        expect_golden(MODEL, path, update=False)  # False wins over the switch


@pytest.mark.parametrize("how", ["update", "env"])
def test_an_update_with_nothing_to_record_fails_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    path = tmp_path / "sub" / "g.jsonl"
    update = True if how == "update" else None
    if how == "env":
        monkeypatch.setenv(ENV, "1")
    with pytest.raises(ExpectationFailed, match=r"no cases to check: inputs is empty \(nothing recorded"):
        expect_golden(MODEL, path, inputs=[], update=update)
    assert not path.exists() and not path.parent.exists()
    expect_golden(MODEL, path, inputs=INPUTS, update=True)
    recorded = path.read_text(encoding="utf-8")
    with pytest.raises(ExpectationFailed, match="inputs is empty"):
        expect_golden(MODEL, path, inputs=iter(()), update=update)
    path.write_text(recorded.splitlines()[0] + "\n", encoding="utf-8")  # the header alone
    with pytest.raises(ExpectationFailed, match=r"has no lines \(nothing recorded"):
        expect_golden(MODEL, path, update=update)
    assert path.read_text(encoding="utf-8") == recorded.splitlines()[0] + "\n"


def test_plain_callables_and_numbers(tmp_path: Path) -> None:
    path = tmp_path / "golden.jsonl"

    def square(xs: Any) -> list[float]:
        return [x * x for x in xs]

    expect_golden(square, path, update=True, inputs=[(1.0, 2.0), [3.0]])
    expect_golden(square, path)  # a tuple input reads back as a list: the same key
    with pytest.raises(ExpectationFailed):
        expect_golden(lambda xs: [x * x + 1e-3 for x in xs], path)
    expect_golden(lambda xs: [x * x + 1e-3 for x in xs], path, tol=1e-2)


@pytest.mark.parametrize(
    ("recorded", "returned"),
    [
        (1, True),
        (1, 1.0),
        (True, 1),
        (0.0, 0),
        (0, False),
        ([1, 2], [True, 2]),
        ({"n": 1}, {"n": 1.0}),
        ({"n": [1.0]}, {"n": [1]}),
        (None, 0),
        ("1", 1),
    ],
)
def test_a_changed_type_is_a_changed_output(tmp_path: Path, recorded: Any, returned: Any) -> None:
    path = tmp_path / "golden.jsonl"
    expect_golden(lambda x: recorded, path, update=True, inputs=["x"])
    expect_golden(lambda x: recorded, path)
    with pytest.raises(ExpectationFailed, match="1 of 1 cases failed"):
        expect_golden(lambda x: returned, path)
    with pytest.raises(ExpectationFailed):
        expect_golden(lambda x: returned, path, tol=1.0)  # a tolerance does not bridge types


def test_tol_applies_between_numbers_of_one_type(tmp_path: Path) -> None:
    path = tmp_path / "golden.jsonl"
    expect_golden(lambda x: {"p": 0.5, "n": 3}, path, update=True, inputs=["x"])
    expect_golden(lambda x: {"p": 0.51, "n": 4}, path, tol=1.0)
    with pytest.raises(ExpectationFailed):
        expect_golden(lambda x: {"p": 0.51, "n": 3}, path)


def test_a_corrupt_file_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "golden.jsonl"
    path.write_text("{not json\n")
    with pytest.raises(pw.ConfigurationError, match="line 1"):
        expect_golden(MODEL, path)


def test_golden_keys_are_salted_so_a_secret_input_cannot_be_guessed_from_the_file(tmp_path: Path) -> None:
    from prodwrap.policies._canonical import canonical_key
    from prodwrap.testing._golden import jsonable

    class In(pydantic.BaseModel):
        user: str
        pin: pydantic.SecretStr

    model = pw.ProductionModel(lambda i: len(i.user), input=In, name="g")
    path = tmp_path / "g.jsonl"
    x = In(user="ann", pin=pydantic.SecretStr("4711"))
    expect_golden(model, path, update=True, inputs=[x])
    header, line = [json.loads(text) for text in path.read_text().splitlines()]
    assert line["key"] != canonical_key(jsonable(x))  # the unsalted key of old files
    assert line["input"]["pin"] != jsonable(x)["pin"]  # the secret's hash is salted too
    assert expect_golden(model, path, inputs=[x]).passed
    expect_golden(model, path, update=True, inputs=[x])  # an update keeps the salt: same file
    assert json.loads(path.read_text().splitlines()[0]) == header


def test_an_old_golden_file_without_a_header_is_read_with_its_plain_keys(tmp_path: Path) -> None:
    from prodwrap.policies._canonical import canonical_key

    path = tmp_path / "old.jsonl"
    x = {"age": 30, "income": 90_000.0}
    line = {"key": canonical_key(x), "input": x, "output": {"probability": 0.1}}
    path.write_text(json.dumps(line) + "\n")
    assert expect_golden(MODEL, path).passed
