"""The canonical key of a value: a stable hash of what it is, not of where it sits in memory.

Used by the cache (``pw.Cache``: the validated input, the model's version and the pass-through
arguments) and meant for anything else that must recognise an input it has seen before (a
record/replay cassette). The same value gives the same key in every process and on every run
(no ``hash()``, which is salted per process for strings); equal values of different types
give different keys, so an answer computed for one input is never served for another.

What counts as equal (the rules a user can rely on):

- mappings: equal whatever the order of their keys (any ``Mapping``: a ``dict`` and an
  ``OrderedDict`` with the same items are equal); sets and frozensets: whatever the order;
- lists and tuples are different (``[1, 2]`` is not ``(1, 2)``); a named tuple is its class
  and its fields;
- ``bool``, ``int`` and ``float`` are different types (``1``, ``1.0`` and ``True`` differ);
  every NaN equals every NaN; ``-0.0`` and ``0.0`` differ (they can give different results);
- numpy arrays and scalars: dtype (byte order included), shape and bytes, every NaN made the
  same first, so an array holding NaN equals an equal copy; object arrays item by item,
  structured ones field by field, ``longdouble`` by its 80 bits on x86 (padding is no value);
- pydantic models and dataclasses: their class (module and name) and their fields (a pydantic
  model's extra fields too), so a model is not equal to a dict of the same fields;
- ``str``, ``bytes``, ``bytearray``, ``Decimal`` (as written: ``1.0`` and ``1.00`` differ),
  ``Fraction``, ``complex``, ``datetime``/``date``/``time``/``timedelta`` (by ISO form: the same
  instant in two time zones differs), ``UUID``, paths, enum members (class and name), None.

Anything else (a plain object, a callable, a file) has no canonical key: :func:`canonical_key`
raises :class:`prodwrap.errors.UnkeyableError`, naming where in the value it is.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import sys
from collections.abc import Callable, Mapping, Set
from decimal import Decimal
from functools import partial
from math import isnan
from operator import attrgetter
from typing import Any

from prodwrap.errors import UnkeyableError
from prodwrap.policies._digest import digest

__all__ = ["canonical_key"]

_DEPTH = 128  # deeper than this (or a value containing itself) has no key
_INLINE_BYTES = 256  # longer byte strings go in as their own digest


def canonical_key(value: Any, *parts: Any) -> str:
    """A stable key of ``value`` and ``parts`` (hex, 32 characters: a 128-bit BLAKE2b digest).

    ``canonical_key(x, "1.4.0", args, kwargs)`` is the key of the input ``x`` under version
    1.4.0 with those pass-through arguments; each part counts as much as the value.

    Raises:
        UnkeyableError: something in the value or the parts has no canonical form (the message
            says where, e.g. ``input['tags'][2]``, and what it is).
    """
    return digest(canonical_form(value, *parts).encode("utf-8", "surrogatepass"))


def canonical_form(value: Any, *parts: Any) -> str:
    """The text :func:`canonical_key` hashes: equal exactly when the keys are (in-process use;
    it may be as long as the value, with arrays and long byte strings as digests)."""
    out: list[str] = []
    i = 0
    try:
        _encode(value, out, 0)
        for part in parts:
            i += 1
            _encode(part, out, 0)
    except _NoKey as exc:
        problem = exc
    else:
        return "".join(out)
    where = f"part {i}" if i else "input"
    raise UnkeyableError(f"{where}{''.join(reversed(problem.path))}: {problem.reason}")


Encoder = Callable[[Any, list[str], int], None]


class _NoKey(Exception):
    """Raised inside the encoder; each container on the way out adds where it was."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.path: list[str] = []


def _too_deep() -> _NoKey:
    return _NoKey(f"nested deeper than {_DEPTH} levels (or it contains itself)")


def _encode(v: Any, out: list[str], depth: int) -> None:
    """Append ``v``'s canonical form to ``out``: a tag, then a self-delimiting body."""
    encoder = _BY_TYPE.get(type(v))
    if encoder is None:
        encoder = _resolve(type(v))
    encoder(v, out, depth)


def _str(v: str, out: list[str], depth: int) -> None:
    out.append(f"s{len(v)}:")
    out.append(v)


def _int(v: int, out: list[str], depth: int) -> None:
    out.append(f"i{v:x};")  # hexadecimal: no digit limit, unlike str() of a huge int


def _float(v: float, out: list[str], depth: int) -> None:
    out.append("fnan;" if isnan(v) else f"f{v.hex()};")  # exact; every NaN alike


def _bool(v: bool, out: list[str], depth: int) -> None:
    out.append("T" if v else "F")


def _none(v: None, out: list[str], depth: int) -> None:
    out.append("N")


def _bytes(v: bytes | bytearray | memoryview, out: list[str], depth: int) -> None:
    tag = "y" if isinstance(v, bytearray) else "b"
    raw = bytes(v)
    if len(raw) <= _INLINE_BYTES:
        out.append(f"{tag}{len(raw)}:{raw.hex()}")
    else:
        out.append(f"{tag}#{digest(raw)}")


def _items(tag: str, v: Any, out: list[str], depth: int) -> None:
    if not v:
        out.append(tag + "0:")
        return
    if depth >= _DEPTH:
        raise _too_deep()
    out.append(f"{tag}{len(v)}:")
    for i, item in enumerate(v):
        try:
            _encode(item, out, depth + 1)
        except _NoKey as exc:
            exc.path.append(f"[{i}]")
            raise


_list: Encoder = partial(_items, "l")
_tuple: Encoder = partial(_items, "t")


def _mapping(v: Mapping[Any, Any], out: list[str], depth: int) -> None:
    if not v:
        out.append("m0:")
        return
    if depth >= _DEPTH:
        raise _too_deep()
    pairs = []
    for k, item in v.items():
        key: list[str] = []
        try:
            _encode(k, key, depth + 1)
        except _NoKey as exc:
            exc.path.append(f" (a key, {k!r})")
            raise
        pairs.append(("".join(key), k, item))
    pairs.sort(key=_first)  # order-free: by the keys' canonical forms
    out.append(f"m{len(pairs)}:")
    for form, k, item in pairs:
        out.append(form)
        try:
            _encode(item, out, depth + 1)
        except _NoKey as exc:
            exc.path.append(f"[{k!r}]")
            raise


def _first(pair: tuple[str, Any, Any]) -> str:
    return pair[0]


def _set(v: Set[Any], out: list[str], depth: int) -> None:
    if depth >= _DEPTH:
        raise _too_deep()
    forms = []
    for item in v:
        form: list[str] = []
        try:
            _encode(item, form, depth + 1)
        except _NoKey as exc:
            exc.path.append(f" (an item, {item!r})")
            raise
        forms.append("".join(form))
    forms.sort()  # order-free
    out.append(f"e{len(forms)}:")
    out.extend(forms)


def _record(tag: str, cls: type, names: tuple[str, ...], values: Callable[[Any], Any]) -> Encoder:
    """The encoder of a class with fixed fields: its name once, then each field's value."""
    qualified = f"{cls.__module__}.{cls.__qualname__}"
    head = f"{tag}{len(qualified)}:{qualified}{len(names)}:"
    pydantic = tag == "P"

    def encode(v: Any, out: list[str], depth: int) -> None:
        if depth >= _DEPTH:
            raise _too_deep()
        out.append(head)
        for i, item in enumerate(values(v)):
            try:
                _encode(item, out, depth + 1)
            except _NoKey as exc:
                exc.path.append(f".{names[i]}")
                raise
        if pydantic:  # the extra fields a model allows
            extra = v.__pydantic_extra__
            if extra:
                try:
                    _mapping(extra, out, depth + 1)
                except _NoKey as exc:
                    exc.path.append(" (extra fields)")
                    raise
            else:
                out.append("m0:")

    return encode


def _array(v: Any, out: list[str], depth: int) -> None:
    np = sys.modules["numpy"]
    scalar = isinstance(v, np.generic)
    cls = type(v)
    if isinstance(v, np.ma.MaskedArray):  # the mask is part of the value; what it hides is not
        mask = np.ma.getmaskarray(v)
        out.append(f"M{digest(np.ascontiguousarray(mask).view(np.uint8))}")
        v = np.where(mask, np.zeros((), dtype=v.dtype), np.ma.getdata(v))
    elif not scalar and cls is not np.ndarray:  # a subclass (np.matrix, ...) is not a plain array
        out.append(f"C{len(cls.__qualname__)}:{cls.__module__}.{cls.__qualname__}")
    a = np.asarray(v)
    dtype, shape = a.dtype, a.shape
    head = f"{'S' if scalar else 'A'}{dtype.str}{dtype.descr if dtype.names else ''}{shape}"
    if dtype.names:  # a structured array: field by field (the padding between them is no value)
        if depth >= _DEPTH:
            raise _too_deep()
        out.append(f"R{head}")
        for name in dtype.names:
            _array(a[name], out, depth + 1)
        return
    if dtype.hasobject:  # pointers, not values: item by item
        out.append(f"O{head}")
        _items("l", a.ravel().tolist(), out, depth + 1)
        return
    a = np.ascontiguousarray(a).reshape(-1)
    raw = a.view(np.uint8)
    if dtype.kind in "fc":  # every NaN alike (a copy only when there is one)
        base = a.real.dtype if dtype.kind == "c" else dtype
        flat = a.view(base)
        nan = np.isnan(flat)
        if nan.any():
            flat = flat.copy()
            flat[nan] = np.nan
            raw = flat.view(np.uint8)
        if base.itemsize > 10 and np.finfo(base).nmant == 63:  # x87's 80 bits, stored with padding
            big = base.byteorder == ">" or (base.byteorder == "=" and sys.byteorder == "big")
            each = raw.reshape(-1, base.itemsize)
            raw = np.ascontiguousarray(each[:, -10:] if big else each[:, :10])  # the value's bytes alone
    out.append(f"{head}{digest(raw)}")


def _enum(v: enum.Enum, out: list[str], depth: int) -> None:
    cls = type(v)
    name = f"{cls.__module__}.{cls.__qualname__}.{v.name}"
    out.append(f"E{len(name)}:{name}")


def _decimal(v: Decimal, out: list[str], depth: int) -> None:
    out.append(f"d{v};")


def _complex(v: complex, out: list[str], depth: int) -> None:
    out.append("j")
    _float(v.real, out, depth)
    _float(v.imag, out, depth)


def _when(v: _dt.date | _dt.time | _dt.timedelta, out: list[str], depth: int) -> None:
    if isinstance(v, _dt.timedelta):
        form = f"timedelta{v.days},{v.seconds},{v.microseconds}"
    else:
        kind = "datetime" if isinstance(v, _dt.datetime) else "date" if isinstance(v, _dt.date) else "time"
        form = kind + v.isoformat()
    out.append(f"w{len(form)}:{form}")


def _uuid(v: Any, out: list[str], depth: int) -> None:
    out.append(f"u{v.hex};")


def _fraction(v: Any, out: list[str], depth: int) -> None:
    out.append(f"q{v.numerator:x}/{v.denominator:x};")


def _path(v: Any, out: list[str], depth: int) -> None:
    form = str(v)
    out.append(f"p{type(v).__name__}{len(form)}:{form}")


def _unkeyable(v: Any, out: list[str], depth: int) -> None:
    cls = type(v)
    raise _NoKey(f"a {cls.__module__}.{cls.__qualname__} has no canonical key")


def _resolve(cls: type) -> Encoder:
    """The encoder of a class not seen before, remembered for the next value of it."""
    encoder = _encoder_of(cls)
    if encoder is not _unkeyable and len(_BY_TYPE) < _REMEMBERED:
        _BY_TYPE[cls] = encoder
    return encoder


def fields_getter(names: tuple[str, ...]) -> Callable[[Any], Any]:
    """The fields' values of an instance, as a tuple (one C call)."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        get = attrgetter(names[0])
        return lambda v: (get(v),)
    return lambda v: ()


def _encoder_of(cls: type) -> Encoder:
    np = sys.modules.get("numpy")  # not loaded: no value can be an array
    pydantic = sys.modules.get("pydantic")
    if np is not None and issubclass(cls, np.ndarray | np.generic):
        return _array
    if pydantic is not None and issubclass(cls, pydantic.BaseModel):
        names = tuple(cls.model_fields)  # type: ignore[attr-defined]
        return _record("P", cls, names, fields_getter(names))
    if issubclass(cls, enum.Enum):
        return _enum
    if dataclasses.is_dataclass(cls):
        names = tuple(f.name for f in dataclasses.fields(cls))
        return _record("D", cls, names, fields_getter(names))
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):  # a named tuple
        return _record("R", cls, tuple(cls._fields), lambda v: v)
    for base, encoder in _BASES:
        if issubclass(cls, base):
            return encoder
    for module, name, encoder in _LOADED:
        loaded = sys.modules.get(module)  # not loaded: no value can be one
        if loaded is not None and issubclass(cls, getattr(loaded, name)):
            return encoder
    return _unkeyable


_BY_TYPE: dict[type, Encoder] = {
    bool: _bool,
    str: _str,
    int: _int,
    float: _float,
    type(None): _none,
    bytes: _bytes,
    bytearray: _bytes,
    list: _list,
    tuple: _tuple,
    dict: _mapping,
    set: _set,
    frozenset: _set,
}
_REMEMBERED = 4096  # classes whose encoder is remembered (classes made per call are not all kept)

# Subclasses are keyed as their base (the first that matches).
_BASES: tuple[tuple[type, Encoder], ...] = (
    (str, _str),
    (int, _int),
    (float, _float),
    (bytes, _bytes),
    (bytearray, _bytes),
    (list, _list),
    (tuple, _tuple),
    (Mapping, _mapping),
    (Set, _set),
    (Decimal, _decimal),
    (complex, _complex),
    (_dt.date, _when),
    (_dt.time, _when),
    (_dt.timedelta, _when),
    (memoryview, _bytes),
)
_LOADED: tuple[tuple[str, str, Encoder], ...] = (
    ("uuid", "UUID", _uuid),
    ("fractions", "Fraction", _fraction),
    ("pathlib", "PurePath", _path),
)
