"""What a validation error may show: sensitive fields found in a spec, error dicts cleaned.

Sensitive fields are found in the pydantic core schema a spec compiles to, the schema pydantic
itself validates with, so every way of declaring them is seen the same: pydantic models,
stdlib and pydantic dataclasses, TypedDicts, containers, unions, ``Annotated`` and
``TypeAdapter`` specs, at any depth, under their field names and their aliases.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, get_args

import pydantic
from pydantic_core.core_schema import ErrorType

_MAX_SHOWN = 80  # characters of a rejected value kept in an error
_MASK = "**********"  # what pydantic shows for a SecretStr, here for any masked value
_MIN_MASKED = 4  # shorter values are not searched for in messages: they match ordinary words
_MAX_SCANNED = 10_000  # nodes of a rejected input read to find the sensitive values it holds
_MAX_JSON = 1_000_000  # characters of rejected JSON text read again for the same purpose
_RAW_TEXT_ERRORS = frozenset({"json_invalid", "json_type"})  # their input is the raw payload
_FIELD_LISTS = frozenset({"model-fields", "typed-dict"})  # fields as {name: field}
_SKIPPED = frozenset({"default", "metadata", "serialization"})  # hold values or hooks, no schema
_PYDANTIC_ERRORS = frozenset(get_args(ErrorType))  # error types whose message pydantic writes


@dataclass(frozen=True, slots=True)
class Sensitive:
    """Where a spec's errors must not show values.

    Attributes:
        names: field names and aliases of sensitive fields; an error whose ``loc`` holds one
            of them (at any depth) keeps no ``input`` and no ``ctx``.
        everywhere: the spec itself is secret (``SecretStr``, ``list[SecretStr]``, ...): no
            error keeps a value.
    """

    names: frozenset[str] = frozenset()
    everywhere: bool = False

    def __bool__(self) -> bool:
        return self.everywhere or bool(self.names)


def _secret_types() -> tuple[type, ...]:
    # looked up at compile time, not import time: they load much of pydantic
    return tuple(t for t in (pydantic.SecretStr, pydantic.SecretBytes, getattr(pydantic, "Secret", None)) if t)


def _marked(metadata: Any) -> bool:
    extra = metadata.get("pydantic_js_extra") if isinstance(metadata, Mapping) else None
    return isinstance(extra, Mapping) and bool(extra.get("sensitive"))


def _marked_field(owner: Any, name: str) -> bool:
    """``json_schema_extra={"sensitive": True}`` on a model's or pydantic dataclass's field."""
    field = getattr(owner, "__pydantic_fields__", {}).get(name)
    extra = getattr(field, "json_schema_extra", None)
    return isinstance(extra, Mapping) and bool(extra.get("sensitive"))


def _alias_names(alias: Any) -> Iterator[str]:
    """The ``loc`` entries an error uses for a field validated under ``alias``: the alias, or
    the last key of an ``AliasPath``, for each of ``AliasChoices``."""
    if isinstance(alias, str):
        yield alias
    elif isinstance(alias, list) and alias:
        paths = alias if isinstance(alias[0], list) else [alias]
        for path in paths:
            keys = [key for key in path if isinstance(key, str)]
            if keys:
                yield keys[-1]


def find_sensitive(schema: Any) -> Sensitive:
    """The sensitive fields of a pydantic core schema (``Model.__pydantic_core_schema__`` or
    ``TypeAdapter(...).core_schema``): a ``SecretStr``/``SecretBytes``/``Secret`` type, or
    ``json_schema_extra={"sensitive": True}``, anywhere below the field."""
    secret_types = _secret_types()
    refs: dict[str, Any] = {}
    names: set[str] = set()
    done: dict[int, bool] = {}  # id(node) -> secret below it; a node in progress counts False

    def collect_refs(node: Any) -> None:
        stack = [node]
        while stack:
            item = stack.pop()
            if isinstance(item, Mapping):
                if isinstance(item.get("ref"), str):
                    refs[item["ref"]] = item
                stack.extend(v for k, v in item.items() if k not in _SKIPPED)
            elif isinstance(item, list | tuple):
                stack.extend(item)

    def field(name: str, node: Mapping[str, Any], owner: Any) -> None:
        secret = secret_below(node.get("schema"), None)  # walked first: nested fields are collected
        if secret or _marked(node.get("metadata")) or _marked_field(owner, name):
            names.add(name)
            names.update(_alias_names(node.get("validation_alias")))

    def secret_below(node: Any, owner: Any) -> bool:
        """Whether ``node`` holds a secret type or marker outside any field of its own (a
        field's secret marks the field, not what holds it); collects fields on the way."""
        if isinstance(node, type):
            return issubclass(node, secret_types)
        if isinstance(node, list | tuple):
            found = False
            for item in node:  # every item, no short cut: each may hold fields to collect
                found = secret_below(item, owner) or found
            return found
        if not isinstance(node, Mapping):
            return False
        if id(node) in done:
            return done[id(node)]
        done[id(node)] = False
        kind = node.get("type")
        if kind in ("model", "dataclass"):
            owner = node.get("cls")
        if kind == "definition-ref":  # marked here (``Annotated[Model, pw.Sensitive]``) or below
            found = secret_below(refs.get(node.get("schema_ref", "")), owner) or _marked(node.get("metadata"))
        elif kind in _FIELD_LISTS:
            for name, item in node.get("fields", {}).items():
                field(name, item, owner)
            found = _marked(node.get("metadata"))
        elif kind == "dataclass-args":
            for item in node.get("fields", ()):
                field(item["name"], item, owner)
            found = _marked(node.get("metadata"))
        else:
            below = [secret_below(v, owner) for k, v in node.items() if k not in _SKIPPED]
            found = _marked(node.get("metadata")) or any(below)
        done[id(node)] = found
        return found

    collect_refs(schema)
    everywhere = secret_below(schema, None)
    return Sensitive(frozenset(names), everywhere)


def shown(value: Any) -> Any:
    """A short, safe stand-in for a rejected value."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str | bytes):
        if len(value) <= _MAX_SHOWN:
            return value
        return f"<{type(value).__name__} of {len(value)} chars: {value[:_MAX_SHOWN]!r}...>"
    return f"<{type(value).__name__}>"


def _values_under(value: Any, names: frozenset[str]) -> set[str]:
    """Text of every scalar held under a sensitive key of ``value`` (dicts, lists, objects
    with attributes, JSON text), to be masked wherever a message repeats it."""
    if isinstance(value, str | bytes | bytearray) and len(value) <= _MAX_JSON:
        import json  # (loaded with the first text to scan, not with prodwrap)

        try:
            value = json.loads(value)
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's limit
            return set()
    found: set[str] = set()
    stack: list[tuple[Any, bool]] = [(value, False)]
    budget = _MAX_SCANNED
    while stack and budget:
        budget -= 1
        item, inside = stack.pop()
        if isinstance(item, str | int | float | bytes) and not isinstance(item, bool):
            text = item.decode(errors="replace") if isinstance(item, bytes) else str(item)
            if inside and len(text) >= _MIN_MASKED:
                found.add(text)
        elif isinstance(item, Mapping):
            stack.extend((v, inside or k in names) for k, v in item.items())
        elif isinstance(item, list | tuple):
            stack.extend((v, inside) for v in item)
        elif hasattr(item, "__dict__") and not isinstance(item, type):
            stack.extend((v, inside or k in names) for k, v in vars(item).items())
    return found


def _masked(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, _MASK)
    return text


def clean_errors(errors: Sequence[Any], sensitive: Sensitive = Sensitive(), raw: Any = None) -> list[dict[str, Any]]:
    """pydantic's error dicts without urls, whole records, raw payloads, long values, or any
    value of a field marked sensitive.

    An error at a sensitive field keeps no ``input`` and no ``ctx``, and its message is
    withheld when the message carries free text (a validator's own words, a parser's
    description of the value). When the spec has sensitive fields, the sensitive values found
    in ``raw`` (the rejected input) are masked in every message that repeats them.
    """
    secrets = sorted(_values_under(raw, sensitive.names), key=len, reverse=True) if sensitive else []
    out = []
    for err in errors:
        loc = tuple(err["loc"])
        kind = err["type"]
        at_secret = sensitive.everywhere or any(part in sensitive.names for part in loc if isinstance(part, str))
        msg = err["msg"]
        if at_secret and (kind not in _PYDANTIC_ERRORS or "error" in err.get("ctx", ())):
            msg = f"invalid value ({kind}; details withheld: the field is sensitive)"
        item: dict[str, Any] = {"type": kind, "loc": loc, "msg": _masked(msg, secrets)}
        if at_secret or kind in _RAW_TEXT_ERRORS:
            out.append(item)
            continue
        if "input" in err:
            item["input"] = _masked_value(shown(err["input"]), secrets)
        if "ctx" in err:
            item["ctx"] = {k: _masked_value(shown(v), secrets) for k, v in err["ctx"].items()}
        out.append(item)
    return out


def _masked_value(value: Any, secrets: Sequence[str]) -> Any:
    if not secrets:
        return value
    if isinstance(value, str):
        return _masked(value, secrets)
    if isinstance(value, int | float) and str(value) in secrets:
        return _MASK
    return value


def raise_alone(error: BaseException) -> NoReturn:
    """Raise ``error`` with no ``__context__``.

    Python sets the context of a raised exception to whatever exception is being handled at
    that moment, in this frame or any caller's: a caller that validates while handling
    pydantic's own ``ValidationError`` would chain every raw value to the error. Clearing the
    context after the raise keeps the chain clean whoever calls.
    """
    try:
        raise error
    finally:
        error.__context__ = None
        del error  # (its traceback holds this frame: one that kept it would be a cycle)
