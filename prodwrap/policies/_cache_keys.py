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
_FIELDS: dict[type, Any] = {}  # pydantic model class -> [getter, usual field types] (None: not a model)
_REMEMBERED = 1024


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
    known = _FIELDS.get(cls, _FIELDS)
    if known is _FIELDS:
        known = _learn(cls)
    if known is None or value.__pydantic_extra__:
        return None
    values = known[0](value)
    kinds = known[1]
    if kinds is None:  # the first instance seen fixes the usual field types
        kinds = tuple([v.__class__ for v in values])
        if not _FLAT.issuperset(kinds):
            return _unusual(cls, values)
        known[1] = kinds
    for v, usual in zip(values, kinds):  # noqa: B905 (as long as each other: one class's fields)
        kind = v.__class__
        if kind is not usual:
            return _unusual(cls, values)
        if kind is float and (not v or v != v):  # noqa: PLR0124 (NaN is the only float unequal to itself)
            return None
    return (cls, values)  # the usual field types: implied by the class


def _unusual(cls: type, values: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """Fields of other types than the class's first instance had: the types go in the key (a
    3-tuple, never equal to a 2-tuple key), or no flat key when one is not a scalar."""
    kinds = tuple([v.__class__ for v in values])
    if not _FLAT.issuperset(kinds):
        return None
    for v in values:
        if v.__class__ is float and (not v or isnan(v)):
            return None
    return (cls, values, kinds)


def _learn(cls: type) -> Any:
    pydantic = sys.modules.get("pydantic")
    known = None
    if pydantic is not None and issubclass(cls, pydantic.BaseModel):  # [its fields' getter, their usual types]
        known = [fields_getter(tuple(cls.model_fields)), None]  # type: ignore[attr-defined]
    if len(_FIELDS) < _REMEMBERED:
        _FIELDS[cls] = known
    return known
