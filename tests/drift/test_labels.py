"""Labels as a drift check compares them (prodwrap/drift/_labels.py): canonical forms for
sealing, and secrets compared by their value; a saved and a loaded sealed monitor agree."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

import prodwrap as pw
from prodwrap.drift._labels import Revealed, Unsealable, canonical

UTC = datetime.UTC
PLUS_TWO = datetime.timezone(datetime.timedelta(hours=2))


class Code:
    """A label whose equality is its own."""

    def __init__(self, code: int) -> None:
        self.code = code

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Code) and other.code == self.code

    def __hash__(self) -> int:
        return hash(self.code)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (1, True),
        (1, 1.0),
        (0.0, -0.0),
        (1.5, Fraction(3, 2)),
        (Decimal("0.5"), 0.5),
        (Decimal("0.1"), 0.1),  # unequal: 0.1 is no tenth
        (Decimal("0.1"), Fraction(1, 10)),
        (float("inf"), Decimal("Infinity")),
        (float("inf"), "Infinity"),
        (float("-inf"), float("inf")),
        (complex(1, 0), 1),
        (complex(1, 2), complex(1.0, 2.0)),
        (10**20, 1e20),
        (2**53 + 1, float(2**53 + 1)),  # unequal: the float rounds
        ("x", b"x"),
        ('"x"', b'"x"'),
        ("1", 1),
        ((1, "a"), (True, "a")),
        ((1, "a"), (1, "b")),
        (frozenset({1, 2}), frozenset({2.0, True})),
        (datetime.date(2026, 1, 1), datetime.datetime(2026, 1, 1)),  # unequal: a datetime is no date
        (datetime.datetime(2026, 1, 1, 12, tzinfo=UTC), datetime.datetime(2026, 1, 1, 14, tzinfo=PLUS_TWO)),
        (datetime.datetime(2026, 1, 1, 12, tzinfo=UTC), datetime.datetime(2026, 1, 1, 12)),
        (datetime.timedelta(days=1), datetime.timedelta(hours=24)),
        (datetime.time(12, 30), datetime.time(12, 30)),
        (uuid.UUID(int=7), uuid.UUID(int=7)),
        (uuid.UUID(int=7), str(uuid.UUID(int=7))),
        (np.int64(3), 3),
        (np.bool_(True), 1),
        (pydantic.SecretStr("a"), "a"),
        (Revealed("a"), pydantic.SecretStr("a")),
        (Revealed("a"), "b"),
    ],
)
def test_two_labels_have_one_canonical_form_exactly_when_they_are_equal(a: Any, b: Any) -> None:
    equal = Revealed(a.get_secret_value()) == b if isinstance(a, pydantic.SecretStr) else a == b
    assert (canonical(a) == canonical(b)) == equal


@given(
    st.lists(
        st.one_of(
            st.integers(-(2**70), 2**70),
            st.floats(allow_nan=False),
            st.fractions(max_denominator=10**6),
            st.decimals(allow_nan=False, places=4, min_value=-(10**9), max_value=10**9),
            st.booleans(),
            st.just(complex(2, 0)),
        ),
        min_size=2,
        max_size=2,
    )
)
def test_numbers_have_one_canonical_form_exactly_when_they_are_equal(pair: list[Any]) -> None:
    a, b = pair
    assert (canonical(a) == canonical(b)) == (a == b)


@pytest.mark.parametrize("label", [Code(1), object(), Decimal("NaN"), (1, float("nan"))])
def test_a_label_whose_equality_is_its_own_has_no_canonical_form(label: Any) -> None:
    with pytest.raises(Unsealable, match=r"^labels of type \w+ have no canonical form"):
        canonical(label)


def test_a_revealed_secret_equals_its_value_and_shows_none_of_it() -> None:
    secret = Revealed("123-45-6789")
    assert "123-45-6789" == secret  # noqa: SIM300 (a str compared with it: the reflected comparison)
    assert secret == "123-45-6789" and hash(secret) == hash("123-45-6789")
    assert {"123-45-6789": 1}.get(secret) == 1  # (a reference category a live secret meets)
    assert "123-45" not in f"{secret!r} {secret} {format(secret)} {[secret]}"


def _secret_rows(n: int, offset: int = 0) -> list[Any]:
    return [pydantic.SecretStr(f"{(i + offset) % 3:04d}") for i in range(n)]


CASES = {  # the reference's labels, the live window's, and whether the clear monitor finds drift
    "1, then True": (["x", 1, 2] * 50, ["x", True, 2] * 50, False),
    "True before 1": (["x", 1, 2] * 50, [True, 1, "x"] * 50, True),
    "1, then 1.0": (["x", 1, 2] * 50, ["x", 1.0, 2] * 50, False),
    "numbers of other types": (["x", 1, 0.5] * 50, ["x", Decimal(1), Fraction(1, 2)] * 50, False),
    "0.0, then -0.0": (["x", 0.0] * 75, ["x", -0.0] * 75, False),
    "'<missing>', then None": (["x", "<missing>"] * 75, ["x", None] * 75, False),
    "None, then NaN and '<missing>'": (
        ["x", None] * 75,
        ["x", float("nan"), "x", "<missing>"] * 37 + ["x", None],
        False,
    ),
    "'Infinity', then inf": (["x", "Infinity"] * 75, ["x", float("inf")] * 75, True),
    "bytes, then their text": (["x", b'"y"'] * 75, ["x", "y"] * 75, True),
    "Decimal('0.1'), then 0.1": (["x", Decimal("0.1")] * 75, ["x", 0.1] * 75, True),
    "objects of a class of their own, live": (["x", "y", "z"] * 50, [Code(0)] * 150, True),
    "SecretStr of the reference's values": ([f"{i % 3:04d}" for i in range(150)], _secret_rows(150), False),
    "SecretStr, its shares changed": ([f"{i % 3:04d}" for i in range(150)], [pydantic.SecretStr("0000")] * 150, True),
}


@pytest.mark.parametrize(("reference", "live", "drifted"), list(CASES.values()), ids=list(CASES))
def test_a_loaded_sealed_monitor_finds_what_the_saved_one_did(
    tmp_path: Path, reference: list[Any], live: list[Any], drifted: bool
) -> None:
    saved = pw.DriftMonitor([{"c": v} for v in reference], window=len(live), background=False, sensitive=["c"])
    saved.save(tmp_path / "ref.npz")
    loaded = pw.DriftMonitor.load(tmp_path / "ref.npz", background=False)
    assert loaded.fingerprint == saved.fingerprint
    for value in live:
        saved.observe({"c": value}, None)
        loaded.observe({"c": value}, None)
    [before], [after] = saved.check(), loaded.check()
    assert before.drifted is drifted
    assert (after.drifted, after.statistic, after.p_value) == (before.drifted, before.statistic, before.p_value)
    assert after.details["unseen"] == before.details["unseen"]


def test_a_sensitive_feature_of_labels_with_no_canonical_form_is_not_saved(tmp_path: Path) -> None:
    monitor = pw.DriftMonitor([{"c": Code(i % 3)} for i in range(30)], sensitive=["c"])
    with pytest.raises(ValueError, match=r"^cannot save sensitive feature 'c': labels of type Code have no canonical"):
        monitor.save(tmp_path / "ref.npz")
    assert not (tmp_path / "ref.npz").exists()


class Customer(pydantic.BaseModel):
    spend: float
    ssn: pydantic.SecretStr


def test_a_reference_of_secrets_is_sensitive_compared_by_value_and_sealed(tmp_path: Path) -> None:
    reference = [Customer(spend=float(i % 5), ssn=pydantic.SecretStr(f"{i % 3:04d}")) for i in range(300)]
    monitor = pw.DriftMonitor(reference, window=30, background=False)
    assert monitor.sensitive == frozenset({"ssn"})
    assert monitor.fingerprint != pw.DriftMonitor([{**r.model_dump(), "ssn": "0000"} for r in reference]).fingerprint
    monitor.save(tmp_path / "ref.npz")
    assert b"0001" not in (tmp_path / "ref.npz").read_bytes()
    loaded = pw.DriftMonitor.load(tmp_path / "ref.npz", background=False)
    for i in range(30):  # plain strings live, the reference's values: they meet its secrets
        monitor.observe({"spend": float(i % 5), "ssn": f"{i % 3:04d}"}, None)
        loaded.observe({"spend": float(i % 5), "ssn": f"{i % 3:04d}"}, None)
    before, after = monitor.report()["ssn"], loaded.report()["ssn"]
    assert not before.drifted and before.details["unseen"] == 0
    assert (after.drifted, after.statistic) == (before.drifted, before.statistic)
