"""Hypothesis strategies from a model's input schema: valid inputs, and deliberately invalid ones.

``valid_inputs(model)`` draws inputs the model's validation accepts, in the form callers send
them (dicts for records, lists or arrays for ``pw.ArraySpec``); ``invalid_inputs(model)``
draws inputs it must refuse: wrong types, missing required fields, NaN and infinities where
they are not allowed, unseen ``Literal``/``Enum`` values, wrong shapes and dtypes, and huge
payloads. Both take a ``ProductionModel`` (its ``input=``) or a spec itself (a pydantic model,
any type, a ``pw.ArraySpec``). Every draw is checked against the model's own validator, so
what ``valid_inputs`` gives is accepted and what ``invalid_inputs`` gives is not (or makes the
validator raise something else: exactly what ``fuzz`` looks for).

This module imports hypothesis (a test dependency); ``import prodwrap.testing`` does not.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal, Union, get_args, get_origin

import pydantic

try:
    from hypothesis import strategies as st
except ModuleNotFoundError as exc:  # (not a dependency of prodwrap: say how to get it)
    if exc.name != "hypothesis":  # (one of hypothesis's own dependencies: its own message)
        raise
    from prodwrap.testing._fuzz import NEEDS_HYPOTHESIS

    raise ModuleNotFoundError(NEEDS_HYPOTHESIS, name=exc.name) from exc

from prodwrap.errors import ConfigurationError, InputValidationError
from prodwrap.policies.validation import ArraySpec, compile_spec

__all__ = ["invalid_inputs", "valid_inputs"]

_MAX_ITEMS = 5  # items in a generated list or dict
_MAX_DEPTH = 6  # containers and records nested in a generated value (a recursive model ends)
HUGE = 1 << 20  # characters (or items) of a huge payload
_ODD: tuple[Any, ...] = (None, 0, -1, 3.5, True, "", "not json", "{", "[1, 2", [], [1, "a"], {}, b"\xff\xfe", 1j)


def _spec(model: Any) -> Any:
    from prodwrap._model import ProductionModel

    if isinstance(model, ProductionModel):
        if model._settings.input is None:
            raise ConfigurationError(f"{model.name} has no input= schema to draw inputs from")
        return model._settings.input
    return model


def _validator(model: Any) -> Callable[[Any], Any]:
    """The spec's own validator (compiled as a model compiles it)."""
    return compile_spec(_spec(model), InputValidationError, "strategies")


def accepts(validate: Callable[[Any], Any], value: Any) -> bool:
    """Whether the validator returns for ``value`` (an error of any kind is a refusal)."""
    try:
        validate(value)
    except Exception:
        return False
    return True


# -- valid ----------------------------------------------------------------------------------


def _bounds(metadata: Sequence[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    expanded: list[Any] = []
    for m in metadata:  # ``Annotated[int, Field(ge=0)]``: the constraints are the field's metadata
        expanded.extend([m, *m.metadata] if isinstance(m, pydantic.fields.FieldInfo) else [m])
    for m in expanded:
        for name in ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern", "allow_inf_nan"):
            value = getattr(m, name, None)
            if value is not None:
                out[name] = value
    return out


def _number(kind: type, b: dict[str, Any]) -> st.SearchStrategy[Any]:
    low = b.get("ge", b.get("gt"))
    high = b.get("le", b.get("lt"))
    if kind is int:
        lo = None if low is None else math.ceil(low) + (1 if "gt" in b and low == math.ceil(low) else 0)
        hi = None if high is None else math.floor(high) - (1 if "lt" in b and high == math.floor(high) else 0)
        return st.integers(min_value=lo, max_value=hi)
    strategy = st.floats(
        min_value=None if low is None else float(low),
        max_value=None if high is None else float(high),
        exclude_min="gt" in b,
        exclude_max="lt" in b,
        allow_nan=False,
        allow_infinity=False,
    )
    return strategy if kind is float else strategy.map(lambda f: Decimal(repr(f)))


def _text(b: dict[str, Any]) -> st.SearchStrategy[str]:
    if "pattern" in b:
        return st.from_regex(str(b["pattern"]), fullmatch=True)
    return st.text(min_size=b.get("min_length", 0), max_size=b.get("max_length", 20))


def _fields(tp: Any) -> tuple[dict[str, Any], set[str]] | None:
    """A record type's fields (key as sent -> annotation with its constraints) and which are
    required; None when ``tp`` is not a record."""
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        fields, required = {}, set()
        for name, info in tp.model_fields.items():
            alias = info.validation_alias if isinstance(info.validation_alias, str) else info.alias
            key = alias or name
            fields[key] = typing.Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
            if info.is_required():
                required.add(key)
        return fields, required
    if isinstance(tp, type) and typing.is_typeddict(tp):
        hints = typing.get_type_hints(tp, include_extras=True)
        return hints, set(getattr(tp, "__required_keys__", hints))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp, include_extras=True)
        required = {
            f.name
            for f in dataclasses.fields(tp)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(tp) if f.init}, required
    return None


def for_type(tp: Any, metadata: Sequence[Any] = (), depth: int = 0) -> st.SearchStrategy[Any]:
    """Values a field of type ``tp`` accepts, in the form a caller sends them.

    Nesting is bounded: ``_MAX_DEPTH`` containers and records deep, lists, sets and dicts are
    drawn empty (and records not at all), so a self-referencing model (a tree) gets finite
    values instead of an endless strategy.
    """
    origin, args = get_origin(tp), get_args(tp)
    if origin is typing.Annotated:
        return for_type(args[0], [*metadata, *tp.__metadata__], depth)
    deeper = depth + 1
    b = _bounds(metadata)
    if tp in (int, float, Decimal):
        return _number(tp, b)
    if tp is bool:
        return st.booleans()
    if tp is str:
        return _text(b)
    if tp is bytes:
        return st.binary(min_size=b.get("min_length", 0), max_size=b.get("max_length", 20))
    if tp in (Any, object):
        return st.one_of(st.none(), st.integers(), st.text(max_size=10))
    if tp is None or tp is type(None):
        return st.none()
    if origin is Literal:
        return st.sampled_from(args)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from([member.value for member in tp])
    if origin is Union or origin is types.UnionType:
        return st.one_of(*(for_type(a, (), depth) for a in args))
    deep = depth >= _MAX_DEPTH  # past it: empty containers, no records
    size = {"min_size": b.get("min_length", 0), "max_size": 0 if deep else b.get("max_length", _MAX_ITEMS)}
    if deep and size["min_size"] > 0:
        return st.nothing()
    if origin in (list, set, frozenset, Sequence) or tp in (list, set, frozenset):
        return st.just([]) if deep else st.lists(for_type(args[0] if args else Any, (), deeper), **size)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return st.just(()) if deep else st.lists(for_type(args[0], (), deeper), **size).map(tuple)
        return st.nothing() if deep else st.tuples(*(for_type(a, (), deeper) for a in args))
    if origin in (dict, Mapping) or tp is dict:
        key, value = args if args else (str, Any)
        return st.just({}) if deep else st.dictionaries(for_type(key, (), deeper), for_type(value, (), deeper), **size)
    record = _fields(tp)
    if record is not None:
        if depth > _MAX_DEPTH:
            return st.nothing()
        fields, required = record
        return st.fixed_dictionaries(
            {k: for_type(v, (), deeper) for k, v in fields.items() if k in required},
            optional={k: for_type(v, (), deeper) for k, v in fields.items() if k not in required},
        )
    return st.from_type(tp)


def _arrays(spec: ArraySpec, nan: bool) -> st.SearchStrategy[Any]:
    import numpy as np
    from hypothesis.extra import numpy as hnp

    dtype = np.dtype(spec.dtype or "float64")
    shape: st.SearchStrategy[Any] = hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=4)
    if spec.shape is not None:
        shape = st.tuples(*(st.just(d) if d is not None else st.integers(0, 4) for d in spec.shape))
    elements = None
    if dtype.kind == "f":
        width: Literal[16, 32, 64] = 16 if dtype.itemsize == 2 else 32 if dtype.itemsize == 4 else 64
        elements = st.floats(allow_nan=nan, allow_infinity=nan, width=width)
    return hnp.arrays(dtype, shape, elements=elements)


def valid_inputs(model: Any) -> st.SearchStrategy[Any]:
    """Inputs the model (or spec) accepts: records as dicts, arrays as numpy arrays.

    Numbers are finite and within the fields' bounds, text within its lengths (or matching
    its pattern); a draw the validator still refuses (a custom validator) is filtered out.
    """
    spec, validate = _spec(model), _validator(model)
    strategy = _arrays(spec, spec.allow_nan) if isinstance(spec, ArraySpec) else for_type(spec)
    return strategy.filter(lambda x: accepts(validate, x))


# -- invalid --------------------------------------------------------------------------------


def _bare(tp: Any) -> Any:
    """A field's type without its ``Annotated`` constraints."""
    return get_args(tp)[0] if get_origin(tp) is typing.Annotated else tp


def _unseen(tp: Any) -> list[Any]:
    """Values a ``Literal``/``Enum`` field has not seen."""
    tp = _bare(tp)
    if get_origin(tp) is Literal or (isinstance(tp, type) and issubclass(tp, enum.Enum)):
        return ["__unseen__", 987_654_321, None]
    return []


# Any JSON-like value (most are wrong for a given field or spec; the validator keeps those).
_ANY = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
_WRONG = st.one_of(
    _ANY,
    st.sampled_from(["forty", "lots", "", "NaN?", "1e999x", "[]"]),
    st.sampled_from([[1, 2], {"a": 1}, None, 1.5, -0.5, b"\xff", object()]),
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.just("x" * HUGE),
)


def _record_invalid(fields: dict[str, Any], required: set[str], valid: st.SearchStrategy[Any]) -> list[Any]:
    out: list[st.SearchStrategy[Any]] = []
    keys = sorted(fields)
    if required:
        need = sorted(required)
        out.append(st.tuples(valid, st.sampled_from(need)).map(lambda p: {k: v for k, v in p[0].items() if k != p[1]}))
    if keys:
        replaced = st.tuples(valid, st.sampled_from(keys), _WRONG)
        out.append(replaced.map(lambda p: {**p[0], p[1]: p[2]}))
        numbers = [k for k in keys if _bare(fields[k]) is float]  # (NaN and infinities, drawn as often as the rest)
        if numbers:
            nonfinite = st.tuples(valid, st.sampled_from(numbers), st.sampled_from([math.nan, math.inf, -math.inf]))
            out.append(nonfinite.map(lambda p: {**p[0], p[1]: p[2]}))
        unseen = [(k, v) for k in keys for v in _unseen(fields[k])]
        if unseen:
            out.append(st.tuples(valid, st.sampled_from(unseen)).map(lambda p: {**p[0], p[1][0]: p[1][1]}))
    return out


def _array_invalid(spec: ArraySpec) -> list[Any]:
    import numpy as np

    out: list[Any] = [
        st.just([[1.0, 2.0], [3.0]]),  # ragged
        st.just(np.array(["a", "b"])),  # not numeric
        st.just(np.zeros((2, 2, 2, 2))),  # too many dimensions (unless any shape is fine)
        st.just(np.zeros(HUGE // 8)),  # huge
    ]
    if spec.shape is not None:
        wrong = tuple((d or 1) + 1 for d in spec.shape)
        out += [st.just(np.zeros(wrong)), st.just(np.zeros((*wrong, 1)))]
    if not spec.allow_nan:
        out.append(_arrays(spec, nan=False).map(_with_nan))
    return out


def _with_nan(arr: Any) -> Any:
    import numpy as np

    if arr.size == 0:
        return np.array([math.nan])
    out = arr.astype("float64")
    out.flat[0] = math.nan
    return out


def invalid_inputs(model: Any) -> st.SearchStrategy[Any]:
    """Inputs the model (or spec) must refuse: odd values (None, text that is not JSON, bytes,
    a complex number), wrong types in a field, missing required fields, NaN and infinities
    where not allowed, unseen ``Literal``/``Enum`` values, wrong shapes and dtypes, ragged
    lists and huge payloads (a megabyte of text, a megabyte-long array). Draws the validator
    accepts are filtered out."""
    spec, validate = _spec(model), _validator(model)
    options: list[st.SearchStrategy[Any]] = [
        st.sampled_from(_ODD),
        _ANY,
        st.text(min_size=1, max_size=30),  # mostly not JSON
        st.just("x" * HUGE),
        st.just([0] * HUGE),
    ]
    if isinstance(spec, ArraySpec):
        options += _array_invalid(spec)
    else:
        record = _fields(spec)
        valid = for_type(spec)
        if record is not None:
            options += _record_invalid(*record, valid)
        else:
            options.append(_WRONG)
            options += [st.just(v) for v in _unseen(spec)]
            if get_origin(spec) in (list, set, frozenset, tuple):
                options.append(st.lists(_WRONG, min_size=1, max_size=3))
    return st.one_of(*options).filter(lambda x: not accepts(validate, x))
