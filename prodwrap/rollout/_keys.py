"""Sticky split keys, shared by canary routing and shadow sampling (DESIGN §3).

A key names a ``pw.context(...)`` tag when one of that name is set, else a field of the
validated input (an attribute of a pydantic model, dataclass or object; a key of a mapping);
a shadow's key may also be a function of the input. The bucket is a number in [0, 1) from a
BLAKE2b digest of the key's canonical form (``prodwrap.policies._canonical``, the cache's),
never Python's ``hash()``, which is salted per process for strings: the same customer lands
in the same bucket in every process, on every host and after every restart, so a call goes
to the candidate when its bucket is below the candidate's fraction, and a larger fraction
keeps every key a smaller one had.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from hashlib import blake2b
from typing import Any

from prodwrap._context import TAGS
from prodwrap.errors import ConfigurationError, UnkeyableError
from prodwrap.policies._canonical import canonical_form

Key = str | Callable[[Any], Any]
NO_KEY: Any = type("NoKey", (), {"__repr__": lambda self: "<no key>"})()  # the call carries no key
MISSING = NO_KEY

_SCALE = 2.0**-64


def check_key(key: object, owner: str) -> None:
    """Refuse a ``key=`` that is neither a non-empty string nor a callable."""
    if key is None or callable(key):
        return
    if not isinstance(key, str) or not key:
        raise ConfigurationError(
            f"{owner}.key names a pw.context tag or an input field (a non-empty string), got {key!r}"
        )


def key_reader(name: str) -> Callable[[Any], Any]:
    """``read(value) -> key``: the tag ``name`` if it is set, else the field ``name`` of the
    validated input, else :data:`NO_KEY`."""
    tags = TAGS.get

    def read(value: Any) -> Any:
        found = tags().get(name, NO_KEY)
        if found is not NO_KEY:
            return found
        if isinstance(value, Mapping):
            return value.get(name, NO_KEY)
        return getattr(value, name, NO_KEY)

    return read


def key_value(key: Key, value: Any) -> Any:
    """The key's value for a call whose validated input is ``value`` (a callable ``key`` is
    called with the input: what it raises propagates); :data:`MISSING` when there is none."""
    if not isinstance(key, str):
        return key(value)
    return key_reader(key)(value)


def bucket(salt: str, key: Any) -> float:
    """Where ``key`` falls in [0, 1), the same in every process (``salt``: what splits, so two
    models split their customers independently).

    Raises:
        prodwrap.errors.UnkeyableError: the key has no canonical form (a plain object).
    """
    kind = type(key)
    if kind is str:  # the commonest keys, written here as canonical_form writes them
        text = f"s{len(salt)}:{salt}s{len(key)}:{key}"
    elif kind is int:
        text = f"s{len(salt)}:{salt}i{key:x};"
    else:
        text = canonical_form(salt, key)
    return int.from_bytes(blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big") * _SCALE


def point(keyed: Any, salt: str = "") -> float:
    """:func:`bucket` for a shadow's sample; a key with no canonical form by its ``str()``."""
    try:
        return bucket(salt, keyed)
    except UnkeyableError:
        return bucket(salt, str(keyed))
