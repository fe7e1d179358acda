"""Multiple-testing corrections across features (p-value detectors only).

Each function takes the p-values of one check and the family-wise level ``alpha`` and
returns, per p-value, the level it was compared with and whether it is rejected (drift).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Correction = Literal["bonferroni", "holm", "fdr"] | None
CORRECTIONS = ("bonferroni", "holm", "fdr", None)


def correct(p_values: Sequence[float], alpha: float | Sequence[float], method: Correction) -> list[tuple[float, bool]]:
    """Per-test ``(level, rejected)`` under ``method``.

    ``alpha`` is one family-wise level, or one per test (each detector's own threshold):
    ``None`` and ``"bonferroni"`` take each test's own; ``"holm"`` and ``"fdr"`` rank the
    tests against one level, so they need the same one for all.

    * ``None``: each test at ``alpha``.
    * ``"bonferroni"``: each at ``alpha / m``.
    * ``"holm"``: step-down; the i-th smallest p-value (0-based) is compared with
      ``alpha / (m - i)`` and rejection stops at the first that fails.
    * ``"fdr"``: Benjamini-Hochberg; with k the largest rank whose p-value is at most
      ``k / m * alpha``, the k smallest p-values are rejected.
    """
    m = len(p_values)
    if m == 0:
        return []
    alphas = [float(alpha)] * m if isinstance(alpha, int | float) else [float(a) for a in alpha]
    if len(alphas) != m:
        raise ValueError(f"correct: {len(alphas)} levels for {m} p-values")
    if method is None:
        return [(a, p < a) for p, a in zip(p_values, alphas, strict=True)]
    if method == "bonferroni":
        return [(a / m, p < a / m) for p, a in zip(p_values, alphas, strict=True)]
    if len(set(alphas)) > 1:
        raise ValueError(f"correct: {method} needs one level for every test, got {sorted(set(alphas))}")
    alpha = alphas[0]
    order = sorted(range(m), key=lambda i: p_values[i])
    out: list[tuple[float, bool]] = [(alpha, False)] * m
    if method == "holm":
        rejecting = True
        for rank, i in enumerate(order):
            level = alpha / (m - rank)
            rejecting = rejecting and p_values[i] < level
            out[i] = (level, rejecting)
        return out
    if method == "fdr":
        largest = -1
        for rank, i in enumerate(order):
            if p_values[i] <= (rank + 1) / m * alpha:
                largest = rank
        for rank, i in enumerate(order):
            out[i] = ((rank + 1) / m * alpha, rank <= largest)
        return out
    raise ValueError(f"unknown correction {method!r}")
