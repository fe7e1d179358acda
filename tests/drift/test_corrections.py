from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prodwrap.drift._corrections import correct


def _rejected(p: list[float], method: str | None, alpha: float = 0.05) -> list[bool]:
    return [r for _, r in correct(p, alpha, method)]  # type: ignore[arg-type]


def test_worked_example() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    assert _rejected(p, None) == [True, True, True, True]
    assert _rejected(p, "bonferroni") == [True, False, False, True]  # alpha/4 = 0.0125
    # holm: sorted 0.005<0.0125, 0.01<0.01667, 0.03>=0.025 stops
    assert _rejected(p, "holm") == [True, False, False, True]
    # BH: sorted 0.005<=0.0125, 0.01<=0.025, 0.03<=0.0375, 0.04<=0.05: all
    assert _rejected(p, "fdr") == [True, True, True, True]
    levels = [level for level, _ in correct(p, 0.05, "holm")]
    assert levels == pytest.approx([0.05 / 3, 0.05 / 1, 0.05 / 2, 0.05 / 4])


def test_empty_and_unknown() -> None:
    assert correct([], 0.05, "holm") == []
    with pytest.raises(ValueError):
        correct([0.1], 0.05, "nope")  # type: ignore[arg-type]


@given(st.lists(st.floats(0, 1), min_size=1, max_size=30), st.floats(0.001, 0.2))
def test_bonferroni_within_holm_within_fdr(p: list[float], alpha: float) -> None:
    bonf, holm, fdr = (_rejected(p, m, alpha) for m in ("bonferroni", "holm", "fdr"))
    for b, h, f in zip(bonf, holm, fdr, strict=True):
        assert (not b or h) and (not h or f)
