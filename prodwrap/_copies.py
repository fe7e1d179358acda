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

_SCALARS = frozenset({type(None), bool, int, float, complex, str, bytes, Decimal})  # exactly these types
_DEPTH = 32  # deeper than this is taken as mutable: it is copied


def immutable(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` may be handed out as it is: nothing in it can change. An immutable
    scalar (of exactly its built-in type: a subclass may carry attributes), or a tuple, a
    frozenset or a frozen pydantic model (without private attributes) whose every value is
    immutable in turn; a frozen model holding a list is not."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if depth >= _DEPTH:
        return False
    if kind is tuple or kind is frozenset:
        return all(immutable(item, depth + 1) for item in value)
    if not isinstance(value, pydantic.BaseModel) or not value.model_config.get("frozen"):
        return False
    if getattr(value, "__pydantic_private__", None):  # (private attributes may be set on a frozen model)
        return False
    extra = getattr(value, "__pydantic_extra__", None) or {}
    return all(immutable(item, depth + 1) for item in (*value.__dict__.values(), *extra.values()))


def server(value: Any) -> Callable[[], Any]:
    """What serves ``value``: itself if immutable, else a fresh deep copy on each call."""
    if immutable(value):
        return itertools.repeat(value).__next__
    return functools.partial(copy.deepcopy, value)


def snapshot(value: Any) -> Any:
    """``value`` as it is now, for a reader that gets it later on another thread: itself if
    immutable, else a deep copy (itself when it cannot be copied: what was there is all there is)."""
    if immutable(value):
        return value
    try:
        return copy.deepcopy(value)
    except Exception:
        return value
