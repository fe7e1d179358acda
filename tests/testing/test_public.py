"""``prodwrap.testing``'s public names: a sorted, complete ``__all__``."""

from __future__ import annotations

import types

import prodwrap.testing as pt


def test_all_is_sorted_and_complete() -> None:
    assert list(pt.__all__) == sorted(pt.__all__, key=lambda n: (not n[0].isupper(), n))
    public = {
        n
        for n in dir(pt)
        if not n.startswith("_") and n != "annotations" and not isinstance(getattr(pt, n), types.ModuleType)
    }
    assert set(pt.__all__) == public
