"""Deterministic sticky keys, shared by shadow sampling and canary routing (DESIGN §3).

``key`` names a tag of ``pw.context(...)`` when one is set, else a field of the validated
input (an attribute, or a mapping's item); or it is a function of the validated input. The
key's value is hashed (BLAKE2b of its ``str()``, with an optional salt) to a point in
``[0, 1)``: the same value always lands on the same point, in every process and on every
host, so "the same customer always gets the same variant" and a ``sample=0.1`` keyed by
customer always shadows the same tenth of the customers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from prodwrap._context import TAGS
from prodwrap.errors import ConfigurationError

Key = str | Callable[[Any], Any]
MISSING: Any = type("NoKey", (), {"__repr__": lambda self: "<no key>"})()  # the call has no key value
_SCALE = float(1 << 64)


def check_key(key: object, owner: str) -> None:
    """Refuse a ``key=`` that is neither a non-empty string nor a callable."""
    if key is None or callable(key):
        return
    if not isinstance(key, str) or not key:
        raise ConfigurationError(
            f"{owner}.key names a pw.context tag or an input field (a non-empty string), got {key!r}"
        )


def key_value(key: Key, value: Any) -> Any:
    """The key's value for a call whose validated input is ``value``: the ``pw.context`` tag
    named ``key`` if set, else the input's field of that name; ``MISSING`` when neither has it.
    A callable ``key`` is called with the input (what it raises propagates)."""
    if not isinstance(key, str):
        return key(value)
    tags = TAGS.get()
    if key in tags:
        return tags[key]
    if isinstance(value, Mapping):
        return value.get(key, MISSING)
    return getattr(value, key, MISSING)


def point(keyed: Any, salt: str = "") -> float:
    """Where a key's value lands in ``[0, 1)``: the same value, the same point, everywhere."""
    data = f"{salt}\x00{keyed}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big") / _SCALE
