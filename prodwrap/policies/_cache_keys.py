"""The cache's in-memory key of a flat input, computed without building its canonical form.

A cache belongs to one model in one process, so its keys need not be stable across processes
(the canonical form, ``prodwrap.policies._canonical``, is): for a scalar input, or a pydantic
model whose fields are all scalars, a tuple of the class, the values and their types is as
equal as their canonical forms are, at a fraction of the cost. A pydantic model class's key
is compiled from its first instance with scalar fields only: one frame, no loop, the usual
field types implied by the class (:func:`_compiled`).

:func:`call_key` is a call's whole key: this, or the canonical form, with the model's version
and the arguments passed through.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Hashable
from math import isnan
from typing import Any

from prodwrap.errors import UnkeyableError
from prodwrap.policies._canonical import canonical_form, fields_getter
from prodwrap.policies._digest import digest

_FLAT = frozenset((int, str, bool, type(None), float))
_REMEMBERED = 1024
# Held while a class's key is learnt or compiled; re-entrant: a finaliser or signal handler
# run meanwhile on the same thread may key an input too (it learns again, never waits).
_LEARNING = threading.RLock()
_SHORT = 256  # canonical forms longer than this are keyed by their digest

Keyer = Callable[[Any], "tuple[Any, ...] | None"]


def flat_key(value: Any) -> tuple[Any, ...] | None:
    """The key of a flat input, or None when it is not that simple.

    ``1``, ``1.0`` and ``True`` differ (their types are part of the key). A float that is zero
    (``-0.0`` and ``0.0`` differ) or NaN (every NaN alike) has no flat key: it takes the
    canonical form, as does anything nested or a model with extra fields.
    """
    keyer = KEYERS.get(type(value))
    if keyer is None:
        keyer = _learn(type(value))
    return keyer(value)


def _scalar(value: Any) -> tuple[Any, ...]:
    return (value.__class__, value)


def _float(value: float) -> tuple[Any, ...] | None:
    return (float, value) if value and not isnan(value) else None


def _none(value: Any) -> None:
    return None


# The key of an instance, by its class: a scalar's, a pydantic model's (learnt on its first
# instance), None for any other class.
KEYERS: dict[type, Keyer] = {int: _scalar, str: _scalar, bool: _scalar, type(None): _scalar, float: _float}
# The field types a pydantic model class's remembered key was compiled for (its usual ones:
# an instance of these types is keyed ``(cls, *values)``), by class.
USUAL: dict[type, tuple[type, ...]] = {}


def _learn(cls: type) -> Keyer:
    pydantic = sys.modules.get("pydantic")
    with _LEARNING:  # (a class learnt once: a second learner would forget what the first compiled)
        known = KEYERS.get(cls)
        if known is not None:
            return known
        keyer: Keyer = _none
        if pydantic is not None and issubclass(cls, pydantic.BaseModel):
            keyer = _first(cls, tuple(cls.model_fields))  # type: ignore[attr-defined]
        _remember(cls, keyer)
        return keyer


def _remember(cls: type, keyer: Keyer) -> None:
    if cls in KEYERS or len(KEYERS) < _REMEMBERED:
        KEYERS[cls] = keyer


def _first(cls: type, names: tuple[str, ...]) -> Keyer:
    """A model class's key until an instance with scalar fields only comes: that instance's
    field types become the class's usual ones, and its key is compiled for them."""
    get = fields_getter(names)

    def key(value: Any) -> tuple[Any, ...] | None:
        # (extra fields: any instance may have them, ``model_validate(..., extra="allow")``
        # whatever the class says)
        if value.__pydantic_extra__:
            return None
        values = get(value)
        kinds = tuple(map(type, values))
        if not _FLAT.issuperset(kinds):
            return None
        current = KEYERS.get(cls)
        if current is key:  # the first such instance: its types are the usual ones
            with _LEARNING:  # (one key for the class: a key made by another's would equal 1 and 1.0)
                compiled = _compiled(cls, names, kinds)
                if KEYERS.get(cls) is key:  # (no other thread, nor this one re-entered, compiled one meanwhile)
                    _remember(cls, compiled)
                    if KEYERS.get(cls) is compiled:
                        USUAL[cls] = kinds
                current = KEYERS.get(cls)
        if current is not None and current is not key:
            return current(value)
        return _unusual(cls, values)  # (the class is not remembered: the types go in every key)

    return key


def _compiled(cls: type, names: tuple[str, ...], kinds: tuple[type, ...]) -> Keyer:
    """The key of ``cls``'s instances whose fields have the usual types ``kinds``: the class
    and the values (the types are implied), in one frame with no loop. Other types: the
    types go in the key too (``_unusual``). The fields are read from the instance's
    ``__dict__`` (where pydantic keeps them): one attribute read in all, each of which costs
    a pydantic model its ``__getattr__`` hook."""
    values = [f"v{i}" for i in range(len(kinds))]
    ns: dict[str, Any] = {"cls": cls, "unusual": _unusual}
    lines = ["def key(value):", "    if value.__pydantic_extra__:", "        return None"]
    if values:
        lines += ["    fields = value.__dict__", "    try:"]
        lines += [f"        {v} = fields[{name!r}]" for v, name in zip(values, names, strict=True)]
        # (a field not set, as model_construct may leave one: the canonical form says which)
        lines += ["    except KeyError:", "        return None"]
        for i, kind in enumerate(kinds):
            ns[f"k{i}"] = kind
        lines.append(f"    if {' and '.join(f'{v}.__class__ is k{i}' for i, v in enumerate(values))}:")
        floats = [v for v, kind in zip(values, kinds, strict=True) if kind is float]
        if floats:  # zero (-0.0 and 0.0 differ) or NaN (every NaN alike): the canonical form decides
            lines.append(f"        if not ({' and '.join(f'{v} and {v} == {v}' for v in floats)}):")
            lines.append("            return None")
        # (one flat tuple: never equal to an unusual key, whose second item is a tuple)
        lines.append(f"        return (cls, {', '.join(values)})")
        lines.append(f"    return unusual(cls, ({', '.join(values)},))")
    else:
        lines.append("    return (cls,)")
    exec(compile("\n".join(lines) + "\n", f"<prodwrap cache key of {cls.__qualname__}>", "exec"), ns)
    keyer: Keyer = ns["key"]
    return keyer


def _unusual(cls: type, values: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """Fields of other types than the class's usual ones: the types go in the key (a 3-tuple,
    never equal to a 2-tuple key), or no flat key when one is not a scalar."""
    kinds = tuple(map(type, values))
    if not _FLAT.issuperset(kinds):
        return None
    for v in values:
        if v.__class__ is float and (not v or isnan(v)):
            return None
    return (cls, values, kinds)


def call_key(
    value: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    user_key: Callable[[Any], Any] | None,
    version: Any,
    plain: str,
) -> Hashable:
    """A call's key: the input's flat key or canonical form (or ``key=``'s), the model's
    version, the arguments passed through (``plain``: the version's tail without arguments).

    Raises:
        UnkeyableError: no key (``key=`` raising or returning something unhashable included).
    """
    if not args and not kwargs:
        if user_key is None:
            flat = flat_key(value)
            if flat is not None:
                return flat
        tail = plain
    else:
        tail = canonical_form(version, args, kwargs)
    if user_key is not None:
        try:
            own = user_key(value)
            hash(own)
        except Exception as exc:
            raise UnkeyableError(f"key= failed on the input: {type(exc).__name__}: {exc}") from None
        return (own, tail)
    form = canonical_form(value) + tail
    if len(form) <= _SHORT:
        return form
    return "#" + digest(form.encode("utf-8", "surrogatepass"))
