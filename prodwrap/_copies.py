"""Serving one value to many callers (a ``pw.Constant``, a cache entry): the value itself when
nothing can change it, else a fresh deep copy each time, so a caller mutating what it was
served never changes what the next one gets."""

from __future__ import annotations

import copy
import functools
import itertools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pydantic

_IMMUTABLE = (type(None), bool, int, float, complex, str, bytes, Decimal, frozenset)


def immutable(value: Any) -> bool:
    """Whether ``value`` may be handed out as it is: an immutable scalar, or a frozen pydantic model."""
    if isinstance(value, _IMMUTABLE):
        return True
    return isinstance(value, pydantic.BaseModel) and bool(value.model_config.get("frozen"))


def server(value: Any) -> Callable[[], Any]:
    """What serves ``value``: itself if immutable, else a fresh deep copy on each call."""
    if immutable(value):
        return itertools.repeat(value).__next__
    return functools.partial(copy.deepcopy, value)
