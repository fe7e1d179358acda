"""A recorded exception in a cassette: written with the input's secrets masked and the
attributes retries read, and raised again from what was written."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Sequence
from typing import Any

from prodwrap._audit_lines import Redactor

_STATUS = ("status_code", "status")  # what prodwrap.policies.retry reads, on the error and its .response
_ATTRS = (*_STATUS, "retry_after")
_MAX_SCANNED = 10_000


def sensitive_values(redactor: Redactor, value: Any, args: Any, kwargs: Any) -> list[str]:
    """The text of every sensitive value of a call (under a sensitive name, a secret type, or
    the whole input when the spec is sensitive), longest first, to be masked in messages."""
    from prodwrap.policies._redact import _values_under

    found = _values_under([value, args, kwargs], redactor.names)
    if redactor.secret_input:
        found |= _values_under({"input": value}, frozenset({"input"}))
    stack: list[Any] = [value, args, kwargs]
    budget = _MAX_SCANNED
    while stack and budget:
        budget -= 1
        item = stack.pop()
        if isinstance(item, redactor.secrets):
            secret: Any = item
            found |= _values_under({"secret": secret.get_secret_value()}, frozenset({"secret"}))
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        elif hasattr(item, "__dict__") and not isinstance(item, type):
            stack.extend(vars(item).values())
    return sorted(found, key=len, reverse=True)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def error_line(exc: BaseException, secrets: Sequence[str] = ()) -> dict[str, Any]:
    """The exception as a cassette writes it: its class, its message (the call's sensitive
    values masked) and the retry-relevant attributes (``status_code``, ``status``,
    ``retry_after``; a ``.response``'s status)."""
    from prodwrap.policies._redact import _masked

    cls = type(exc)
    line: dict[str, Any] = {"type": f"{cls.__module__}:{cls.__qualname__}", "message": _masked(str(exc), secrets)}
    attrs = {name: got for name in _ATTRS if _scalar(got := getattr(exc, name, None)) and got is not None}
    if attrs:
        line["attrs"] = attrs
    response = getattr(exc, "response", None)
    if response is not None:
        status = {name: got for name in _STATUS if _scalar(got := getattr(response, name, None)) and got is not None}
        if status:
            line["response"] = status
    return line


class Response:
    """A replayed error's ``.response``: only the status it was recorded with."""

    def __init__(self, attrs: dict[str, Any]) -> None:
        for name, value in attrs.items():
            setattr(self, name, value)

    def __repr__(self) -> str:
        return f"<replayed response {vars(self)}>"


def raised(error: dict[str, Any]) -> Exception:
    """The recorded exception again: its class called with its message (a ``RuntimeError``
    naming it when the class cannot be found or built), with the recorded attributes set."""
    module, _, name = str(error.get("type", "")).partition(":")
    message = str(error.get("message", ""))
    exc: Exception | None = None
    try:
        cls: Any = importlib.import_module(module)
        for part in name.split("."):
            cls = getattr(cls, part)
        if isinstance(cls, type) and issubclass(cls, Exception):
            exc = cls(message)
    except Exception:
        pass
    if exc is None:
        exc = RuntimeError(f"{name or 'error'}: {message} (replayed)")
    attrs = dict(error.get("attrs") or {})
    if isinstance(error.get("response"), dict):
        attrs["response"] = Response(error["response"])
    for attr, value in attrs.items():
        with contextlib.suppress(Exception):  # a read-only attribute: left as the class made it
            setattr(exc, attr, value)
    return exc
