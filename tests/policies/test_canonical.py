from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import enum
import os
import subprocess
import sys
import uuid
from collections import OrderedDict, namedtuple
from decimal import Decimal
from fractions import Fraction
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import prodwrap as pw
from prodwrap.policies import canonical_key
from prodwrap.policies._canonical import canonical_form

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary()
json_like = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
)


def reordered(value: Any) -> Any:
    """The same value with every dict's keys in reverse order."""
    if isinstance(value, dict):
        return {k: reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reordered(v) for v in value]
    return value


@given(json_like)
def test_equal_values_in_any_dict_order_have_one_key(value: Any) -> None:
    assert canonical_key(reordered(value)) == canonical_key(copy.deepcopy(value)) == canonical_key(value)


@given(json_like, json_like)
def test_values_with_one_key_are_equal(a: Any, b: Any) -> None:
    if canonical_key(a) == canonical_key(b):
        assert a == b and type(a) is type(b)


@given(json_like, st.text(), st.text())
def test_the_parts_count_as_much_as_the_value(value: Any, v1: str, v2: str) -> None:
    assert (canonical_key(value, v1) == canonical_key(value, v2)) == (v1 == v2)
    assert canonical_key(value, v1, (), {}) != canonical_key(value, v1, (1,), {})
    assert canonical_key(value, v1, (), {"t": 0.5}) != canonical_key(value, v1, (), {"t": 0.7})
    assert canonical_key(value, v1, (), {"a": 1, "b": 2}) == canonical_key(value, v1, (), {"b": 2, "a": 1})


arrays = hnp.arrays(
    dtype=st.sampled_from([np.float64, np.float32, np.complex128]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
    elements={"allow_nan": True},
)


@given(arrays)
def test_an_array_holding_nan_has_the_key_of_an_equal_copy(a: np.ndarray) -> None:
    other = a.copy()
    assert canonical_key(a) == canonical_key(other)
    if a.dtype.kind == "f" and a.size:
        other = other.reshape(-1)
        other[0] = -np.float64("nan")  # another NaN (sign bit set)
        a = a.reshape(-1).copy()
        a[0] = np.nan
        assert canonical_key(a) == canonical_key(other)


@given(hnp.arrays(np.float64, hnp.array_shapes(max_dims=2), elements=st.floats(-1e30, 1e30)))
def test_arrays_differ_by_values_dtype_and_shape(a: np.ndarray) -> None:
    assert canonical_key(a) == canonical_key(np.asfortranarray(a))  # memory layout is no part of it
    assert canonical_key(a) != canonical_key(a.astype(np.float32))
    assert canonical_key(a) != canonical_key(a.reshape(1, *a.shape))
    changed = a.copy().reshape(-1)
    changed[0] = 1.5 if changed[0] == 0.5 else 0.5
    assert canonical_key(a) != canonical_key(changed.reshape(a.shape))


def test_numpy_scalars_and_object_arrays() -> None:
    assert canonical_key(np.float64(1.5)) == canonical_key(np.float64(1.5))
    assert canonical_key(np.float64(1.5)) != canonical_key(1.5)  # a numpy scalar is its dtype
    assert canonical_key(np.float64(1.5)) != canonical_key(np.array(1.5))
    assert canonical_key(np.array(1.5)) != canonical_key(np.array([1.5]))
    assert canonical_key(np.int64(3)) != canonical_key(np.int32(3))
    objects = np.array([{"a": 1}, "x"], dtype=object)
    assert canonical_key(objects) == canonical_key(np.array([{"a": 1}, "x"], dtype=object))
    assert canonical_key(objects) != canonical_key(np.array([{"a": 2}, "x"], dtype=object))


class Applicant(pydantic.BaseModel):
    age: int
    income: float
    tags: list[str] = []


class Other(pydantic.BaseModel):
    age: int
    income: float
    tags: list[str] = []


class Loose(pydantic.BaseModel, extra="allow"):
    age: int


@given(st.integers(), st.floats(allow_nan=True), st.lists(st.text(max_size=3), max_size=3))
def test_pydantic_models_by_class_and_fields(age: int, income: float, tags: list[str]) -> None:
    a = Applicant(age=age, income=income, tags=tags)
    assert canonical_key(a) == canonical_key(Applicant(age=age, income=income, tags=list(tags)))
    assert canonical_key(a) != canonical_key(Other(age=age, income=income, tags=tags))
    assert canonical_key(a) != canonical_key(a.model_dump())  # a model is not the dict of its fields
    assert canonical_key(a) != canonical_key(Applicant(age=age + 1, income=income, tags=tags))


def test_extra_fields_of_a_pydantic_model_count() -> None:
    assert canonical_key(Loose(age=1, x=1)) != canonical_key(Loose(age=1, x=2))
    assert canonical_key(Loose(age=1, x=1, y=2)) == canonical_key(Loose(age=1, y=2, x=1))
    assert canonical_key(Loose(age=1)) != canonical_key(Loose(age=1, x=None))


@dataclasses.dataclass
class Point:
    x: float
    y: float


Pair = namedtuple("Pair", "a b")


class Colour(enum.Enum):
    RED = 1
    BLUE = 2


def test_the_documented_equalities() -> None:
    k = canonical_key
    assert k({1, 2, 3}) == k({3, 2, 1}) == k(frozenset({2, 1, 3}))
    assert k([1, 2]) != k((1, 2))
    assert k(1) != k(1.0) and k(1) != k(True) and k(0) != k(False)
    assert k(float("nan")) == k(-float("nan")) and k(0.0) != k(-0.0)
    assert k(OrderedDict(a=1, b=2)) == k({"b": 2, "a": 1})
    assert k(Point(1.0, 2.0)) == k(Point(1.0, 2.0)) != k(Point(2.0, 1.0))
    assert k(Pair(1, 2)) != k((1, 2)) and k(Pair(1, 2)) == k(Pair(1, 2))
    assert k(Colour.RED) != k(Colour.BLUE) and k(Colour.RED) != k(1)
    assert k(Decimal("1.0")) != k(Decimal("1.00")) and k(Decimal("2.5")) == k(Decimal("2.5"))
    assert k(b"ab") != k("ab") and k(b"ab") != k(bytearray(b"ab")) and k(b"x" * 1000) == k(b"x" * 1000)
    assert k(b"x" * 1000) != k(b"x" * 999 + b"y")
    assert k(2**5000) != k(2**5000 + 1)  # no digit limit
    assert k(complex(1, float("nan"))) == k(complex(1, float("nan")))
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert k(when) == k(dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)) != k(when.replace(tzinfo=None))
    assert k(when.date()) != k(when) and k(dt.timedelta(seconds=1)) != k(dt.timedelta(seconds=2))
    u = uuid.UUID(int=7)
    assert k(u) == k(uuid.UUID(int=7)) != k(str(u))
    assert k(Fraction(1, 3)) != k(Fraction(2, 3)) and k(PurePosixPath("/a")) != k("/a")
    assert k(None) != k("") and k("") != k([])
    assert k(["ab", "c"]) != k(["a", "bc"])  # self-delimiting: no two values run together


def test_what_has_no_key_is_a_clear_error_naming_where() -> None:
    with pytest.raises(pw.UnkeyableError, match=r"input\['rows'\]\[1\]: a builtins.object has no canonical key"):
        canonical_key({"rows": [1, object()]})
    with pytest.raises(pw.UnkeyableError, match=r"part 2\['callback'\]: a builtins.function"):
        canonical_key(1, "v1", {"callback": lambda: None})
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(pw.UnkeyableError, match="nested deeper"):
        canonical_key(cyclic)
    assert isinstance(pw.UnkeyableError("x"), TypeError)


def test_keys_are_the_same_in_another_process() -> None:
    value = {"b": [1, 2.5, None], "a": "text", "s": {"x", "y"}}
    code = (
        "from prodwrap.policies import canonical_key; "
        "print(canonical_key({'a': 'text', 's': {'y', 'x'}, 'b': [1, 2.5, None]}, '1.0'))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == canonical_key(value, "1.0")


def test_the_form_is_what_the_key_hashes() -> None:
    assert canonical_form({"a": 1}) == canonical_form({"a": 1}) != canonical_form({"a": 2})
    assert len(canonical_key({"a": 1})) == 32


def test_a_masked_array_is_keyed_with_its_mask_and_not_what_it_hides() -> None:
    ma = np.ma.masked_array
    one = canonical_key(ma([1.0, 2.0], mask=[False, True]))
    assert one != canonical_key(ma([1.0, 2.0], mask=[False, False]))
    assert one == canonical_key(ma([1.0, 99.0], mask=[False, True]))  # the hidden value does not count
    assert one != canonical_key(np.array([1.0, 2.0]))
    with pytest.warns(PendingDeprecationWarning):  # numpy's own word on np.matrix
        matrix = np.matrix([[1.0]])
    assert canonical_key(matrix) != canonical_key(np.array([[1.0]]))  # a subclass is not a plain array


def _x87_extended() -> bool:
    """Whether numpy's longdouble is the x87 80-bit format, stored with padding bytes."""
    info = np.finfo(np.longdouble)
    return bool(info.nmant == 63 and np.dtype(np.longdouble).itemsize > 10)


@pytest.mark.skipif(not _x87_extended(), reason="longdouble has no padding bytes on this platform")
@pytest.mark.parametrize("dtype", [np.longdouble, np.clongdouble])
def test_longdouble_arrays_are_keyed_by_their_values_not_their_padding(dtype: Any) -> None:
    a = np.array([1.5, -2.25, 3.0], dtype=dtype)
    b = a.copy()
    per = np.dtype(np.longdouble).itemsize
    raw = b.view(np.uint8).reshape(-1, per)
    raw[:, 10:] = 0xAB  # the same values, other bytes in the padding
    assert (a == b).all()
    assert canonical_key(a) == canonical_key(b)
    assert canonical_key(a[0]) == canonical_key(b[0])  # a numpy scalar too
    assert canonical_key(a) != canonical_key(np.array([1.5, -2.25, 3.5], dtype=dtype))


def test_structured_arrays_are_keyed_by_their_fields_not_their_padding() -> None:
    rec = np.dtype([("n", "u1"), ("x", "f8"), ("tag", "S3")], align=True)
    assert rec.itemsize > 1 + 8 + 3  # padding between the fields
    a = np.zeros(2, dtype=rec)
    a["n"], a["x"], a["tag"] = [1, 2], [0.5, float("nan")], [b"ab", b"cd"]
    b = np.zeros(2, dtype=rec)
    b.view(np.uint8)[:] = 0xCD  # garbage in the padding
    b["n"], b["x"], b["tag"] = [1, 2], [0.5, float("nan")], [b"ab", b"cd"]
    b["x"][1] = -np.float64("nan")  # another NaN
    assert canonical_key(a) == canonical_key(b)
    assert canonical_key(a[0]) == canonical_key(b[0])  # one record (a numpy.void scalar)
    c = a.copy()
    c["x"][0] = 0.75
    assert canonical_key(c) != canonical_key(a)
    nested = np.dtype([("inner", rec), ("k", "i4")], align=True)
    d, e = np.zeros(1, dtype=nested), np.zeros(1, dtype=nested)
    e.view(np.uint8)[:] = 0xEE
    for arr in (d, e):
        arr["inner"]["n"], arr["inner"]["x"], arr["inner"]["tag"], arr["k"] = 7, 1.25, b"z", -3
    assert canonical_key(d) == canonical_key(e)
    assert canonical_key(a) != canonical_key(a.astype(np.dtype([("n", "u1"), ("x", "f8"), ("tag", "S3")])))
