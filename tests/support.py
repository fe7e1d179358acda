"""Tag values that break what hashes, compares or prints them, for the tests of every part keyed by a tag."""

from __future__ import annotations

from collections.abc import Callable


class Raising:
    """A tag value every special method of which raises (a proxy to a closed session, say)."""

    def __hash__(self) -> int:
        raise RuntimeError("hash")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq")

    def __repr__(self) -> str:
        raise RuntimeError("repr")

    def __str__(self) -> str:
        raise RuntimeError("str")


class Unprintable:
    """A tag value that hashes (by identity) but whose ``repr`` and ``str`` raise."""

    def __repr__(self) -> str:
        raise RuntimeError("repr")

    def __str__(self) -> str:
        raise RuntimeError("str")


class Uncomparable:
    """A tag value that hashes, all its instances alike, but whose ``==`` raises."""

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq")

    def __repr__(self) -> str:
        return "Uncomparable()"


BAD_TAGS: dict[str, tuple[Callable[[], object], str]] = {
    # how to make a fresh one, and the text its calls are counted under (docs/cost.md)
    "raising": (Raising, "<Raising>"),
    "unprintable": (Unprintable, "<Unprintable>"),
    "uncomparable": (Uncomparable, "Uncomparable()"),
    "tuple holding a list": (lambda: ("acme", ["eu-west"]), "('acme', ['eu-west'])"),  # hashable type, unhashable value
}
