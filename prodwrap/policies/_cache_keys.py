"""The cache's in-memory key of a flat input, computed without building its canonical form.

A cache belongs to one model in one process, so its keys need not be stable across processes
(the canonical form, ``prodwrap.policies._canonical``, is): for a scalar input, or a pydantic
model whose fields are all scalars, a tuple of the class, the values and their types is as
equal as their canonical forms are, at a fraction of the cost.
"""

from __future__ import annotations

import sys
from math import isnan
from typing import Any

from prodwrap.policies._canonical import fields_getter

_SCALARS = frozenset((int, str, bool, type(None)))
_FLAT = frozenset((int, str, bool, type(None), float))
_REMEMBERED = 1024


class _Fields:
    """A pydantic model class's fields: their getter (one C call), and the field types its
    first instance had (``usual``, None until then) with where its floats are."""

    __slots__ = ("floats", "get", "usual")

    def __init__(self, get: Any) -> None:
        self.get = get
        self.usual: tuple[type, ...] | None = None
        self.floats: tuple[int, ...] = ()


_FIELDS: dict[type, _Fields | None] = {}  # pydantic model class -> its fields (None: not a model)


def flat_key(value: Any) -> tuple[Any, ...] | None:
    """The key of a flat input, or None when it is not that simple.

    ``1``, ``1.0`` and ``True`` differ (their types are part of the key). A float that is zero
    (``-0.0`` and ``0.0`` differ) or NaN (every NaN alike) has no flat key: it takes the
    canonical form, as does anything nested or a model with extra fields.
    """
    cls = value.__class__
    if cls in _SCALARS:
        return (cls, value)
    if cls is float:
        return (cls, value) if value and not isnan(value) else None
    known: Any = _FIELDS.get(cls, _FIELDS)
    if known is _FIELDS:
        known = _learn(cls)
    # (extra fields: any instance may have them, ``model_validate(..., extra="allow")`` whatever
    # the class says)
    if known is None or value.__pydantic_extra__:
        return None
    values: tuple[Any, ...] = known.get(value)
    kinds = tuple(map(type, values))
    if kinds != known.usual:
        if known.usual is None and _FLAT.issuperset(kinds):  # the first instance fixes the usual types
            # (floats first: a thread that sees the usual types sees where their floats are)
            known.floats = tuple(i for i, kind in enumerate(kinds) if kind is float)
            known.usual = kinds
        else:
            return _unusual(cls, values, kinds)
    for i in known.floats:
        v = values[i]
        if not v or v != v:  # noqa: PLR0124 (NaN is the only float unequal to itself)
            return None
    return (cls, values)  # the usual field types: implied by the class


def _unusual(cls: type, values: tuple[Any, ...], kinds: tuple[type, ...]) -> tuple[Any, ...] | None:
    """Fields of other types than the class's first instance had: the types go in the key (a
    3-tuple, never equal to a 2-tuple key), or no flat key when one is not a scalar."""
    if not _FLAT.issuperset(kinds):
        return None
    for v in values:
        if v.__class__ is float and (not v or isnan(v)):
            return None
    return (cls, values, kinds)


def _learn(cls: type) -> _Fields | None:
    pydantic = sys.modules.get("pydantic")
    known = None
    if pydantic is not None and issubclass(cls, pydantic.BaseModel):
        known = _Fields(fields_getter(tuple(cls.model_fields)))  # type: ignore[attr-defined]
    if len(_FIELDS) < _REMEMBERED:
        _FIELDS[cls] = known
    return known
