"""Sticky split keys: where a call's key is read from, and the stable bucket it hashes to.

A key names a ``pw.context(...)`` tag when one of that name is set, else a field of the
validated input (an attribute of a pydantic model, dataclass or object; a key of a mapping).
The bucket is a number in [0, 1) from a BLAKE2b digest of the key's canonical form
(``prodwrap.policies._canonical``, the cache's), never Python's ``hash()``, which is salted per
process for strings: the same customer lands in the same bucket in every process, on every
host and after every restart, so a call goes to the candidate when its bucket is below the
candidate's fraction, and a larger fraction keeps every key a smaller one had.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from hashlib import blake2b
from typing import Any

from prodwrap._context import TAGS
from prodwrap.policies._canonical import canonical_form

NO_KEY: Any = type("NoKey", (), {"__repr__": lambda self: "<no key>"})()  # the call carries no key

_SCALE = 2.0**-64


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
