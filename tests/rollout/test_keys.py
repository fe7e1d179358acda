"""The sticky keys shared by shadow sampling and canary routing."""

from __future__ import annotations

import subprocess
import sys

import pydantic
import pytest

import prodwrap as pw
from prodwrap.rollout._keys import MISSING, check_key, key_value, point


class Ask(pydantic.BaseModel):
    customer: str


def test_a_key_is_a_tag_first_then_a_field_or_item_or_a_function() -> None:
    assert key_value("customer", Ask(customer="a")) == "a"
    assert key_value("customer", {"customer": "b"}) == "b"
    assert key_value("customer", {"other": 1}) is MISSING
    assert key_value("customer", 3) is MISSING
    with pw.context(customer="tagged"):
        assert key_value("customer", Ask(customer="a")) == "tagged"
    assert key_value(lambda x: x["id"], {"id": 7}) == 7


def test_points_are_uniform_stable_and_the_same_in_another_process() -> None:
    points = [point(f"c{i}") for i in range(20_000)]
    assert all(0 <= p < 1 for p in points)
    assert abs(sum(p < 0.1 for p in points) - 2000) < 4 * (20_000 * 0.09) ** 0.5
    assert point("c1") == point("c1") != point("c1", salt="other")
    code = "from prodwrap.rollout._keys import point; print(repr(point('c1')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout) == point("c1")  # not Python's salted hash()


def test_check_key() -> None:
    check_key(None, "X")
    check_key("customer", "X")
    check_key(len, "X")
    for bad in ("", 3):
        with pytest.raises(pw.ConfigurationError, match=r"X\.key"):
            check_key(bad, "X")
