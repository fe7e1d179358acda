"""The cache's in-memory key of a flat input, computed without building its canonical form.

A cache belongs to one model in one process, so its keys need not be stable across processes
(the canonical form, ``prodwrap.policies._canonical``, is): for a scalar input, or a pydantic
model whose fields are all scalars, a tuple of the class, the values and their types is as
equal as their canonical forms are, at a fraction of the cost.
"""

from __future__ import annotations

import sys
from math import isnan
from operator import attrgetter
from typing import Any

_SCALARS = frozenset((int, str, bool, type(None)))
_FLAT = frozenset((int, str, bool, type(None), float))
_FIELDS: dict[type, Any] = {}  # pydantic model class -> its fields' getter (None: not one)
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
    getter = _FIELDS.get(cls, _FIELDS)
    if getter is _FIELDS:
        getter = _learn(cls)
    if getter is None or value.__pydantic_extra__:
        return None
    values = getter(value)
    kinds = tuple(map(type, values))
    if not _FLAT.issuperset(kinds):
        return None
    if float in kinds:
        for v in values:
            if v.__class__ is float and (not v or isnan(v)):
                return None
    return (cls, values, kinds)


def _learn(cls: type) -> Any:
    pydantic = sys.modules.get("pydantic")
    getter: Any = None
    if pydantic is not None and issubclass(cls, pydantic.BaseModel):
        names = tuple(cls.model_fields)  # type: ignore[attr-defined]
        if len(names) > 1:
            getter = attrgetter(*names)
        elif names:
            get = attrgetter(names[0])
            getter = lambda v: (get(v),)  # noqa: E731
        else:
            getter = lambda v: ()  # noqa: E731
    if len(_FIELDS) < _REMEMBERED:
        _FIELDS[cls] = getter
    return getter
