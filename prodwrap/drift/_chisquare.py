"""Pearson's chi-square test of homogeneity for categorical features, numpy only.

The reference and current label counts form a 2 x K contingency table: one column per
reference category, plus one "unseen" column for every label the reference never had. The
statistic and p-value are those of ``scipy.stats.chi2_contingency(table, correction=False)``;
the p-value comes from ``regularized_gamma_q`` below (the chi-square survival function is
``Q(dof / 2, statistic / 2)``), not from scipy.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from prodwrap.drift._base import BatchDetector, FloatArray, register

__all__ = ["MISSING", "ChiSquare", "chi2_sf", "regularized_gamma_q"]

MISSING = "<missing>"
"""The category that ``None`` and NaN labels are counted under."""

_EPS = 1e-16  # relative size of the last series term / continued-fraction step
_TINY = 1e-300  # keeps Lentz's method away from division by zero
_LOG_2PI = math.log(2.0 * math.pi)
_UNSEEN_EXAMPLES = 5


def _stirling_remainder(a: float) -> float:
    """``lgamma(a) - ((a - 0.5) ln a - a + 0.5 ln 2 pi)`` for a >= 10, by its series."""
    inv = 1.0 / a
    inv2 = inv * inv
    terms = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360, 1 / 156)
    total = 0.0
    for coefficient in reversed(terms):
        total = total * inv2 + coefficient
    return total * inv


def _log_prefactor(a: float, x: float) -> float:
    """``ln(x**a * exp(-x) / Gamma(a))``, without cancelling large terms when a is large."""
    if a < 10.0:
        return a * math.log(x) - x - math.lgamma(a)
    d = (x - a) / a
    return a * (math.log1p(d) - d) + 0.5 * (math.log(a) - _LOG_2PI) - _stirling_remainder(a)


def _lower_series(a: float, x: float, limit: int) -> float:
    """``P(a, x)`` by its power series (fast for x < a + 1)."""
    term = total = 1.0 / a
    denominator = a
    for _ in range(limit):
        denominator += 1.0
        term *= x / denominator
        total += term
        if abs(term) < abs(total) * _EPS:
            return total * math.exp(_log_prefactor(a, x))
    raise ArithmeticError(f"regularized_gamma_q: series did not converge for a={a}, x={x}")


def _upper_fraction(a: float, x: float, limit: int) -> float:
    """``Q(a, x)`` by its continued fraction, modified Lentz method (fast for x >= a + 1)."""
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, limit + 1):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        step = d * c
        h *= step
        if abs(step - 1.0) < _EPS:
            return h * math.exp(_log_prefactor(a, x))
    raise ArithmeticError(f"regularized_gamma_q: continued fraction did not converge for a={a}, x={x}")


def regularized_gamma_q(a: float, x: float) -> float:
    """The regularised upper incomplete gamma function ``Q(a, x) = Gamma(a, x) / Gamma(a)``.

    The same function as ``scipy.special.gammaincc``: the power series of ``P = 1 - Q`` for
    ``x < a + 1``, else the continued fraction of ``Q`` (Numerical Recipes, 6.2). For large
    ``a`` the prefactor ``x**a e**-x / Gamma(a)`` uses Stirling's series, so it keeps its
    precision; the iteration limit grows with ``sqrt(a)``, which both expansions need.

    Args:
        a: the shape, finite and > 0.
        x: the lower limit of integration, >= 0 (``inf`` gives 0).

    Returns:
        ``Q(a, x)`` in [0, 1].

    Raises:
        ValueError: ``a`` not finite and positive, or ``x`` negative or NaN.
        ArithmeticError: an expansion failed to converge (not seen for a <= 1e8).
    """
    if not (math.isfinite(a) and a > 0.0):
        raise ValueError(f"regularized_gamma_q: a must be finite and > 0, got {a}")
    if math.isnan(x) or x < 0.0:
        raise ValueError(f"regularized_gamma_q: x must be >= 0, got {x}")
    if x == 0.0:
        return 1.0
    if math.isinf(x):
        return 0.0
    limit = 200 + int(40.0 * math.sqrt(a))
    if x < a + 1.0:
        return min(1.0, max(0.0, 1.0 - _lower_series(a, x, limit)))
    return min(1.0, max(0.0, _upper_fraction(a, x, limit)))


def chi2_sf(statistic: float, dof: int) -> float:
    """The chi-square survival function ``P(X >= statistic)`` for ``dof`` degrees of freedom.

    Raises:
        ValueError: ``dof`` < 1, or a negative or NaN statistic.
    """
    if dof < 1:
        raise ValueError(f"chi2_sf: dof must be >= 1, got {dof}")
    return regularized_gamma_q(dof / 2.0, statistic / 2.0)


def _is_missing(label: object) -> bool:
    return label is None or (isinstance(label, float | np.floating) and math.isnan(label))


def _count_numeric(labels: npt.NDArray[Any]) -> dict[Hashable, int]:
    """Counts of a non-empty numeric or boolean array: bincount for compact ints, else np.unique."""
    if labels.dtype.kind == "b":
        true = int(np.count_nonzero(labels))
        return {label: n for label, n in ((False, labels.size - true), (True, true)) if n}
    if labels.dtype.kind in "iu":
        low, high = int(labels.min()), int(labels.max())
        if high - low <= 4 * labels.size + 1024:  # codes, not ids: a dense count is cheap
            # Offsets from the minimum, computed without overflow: int8 -128..127 spans 255,
            # and uint64 beyond 2**63 has no int64. Wrap-around leaves small offsets exact.
            offsets = labels - labels.dtype.type(low) if labels.dtype.kind == "u" else labels.astype(np.int64) - low
            frequencies = np.bincount(offsets.astype(np.intp))
            present = np.flatnonzero(frequencies)
            return {int(code) + low: n for code, n in zip(present.tolist(), frequencies[present].tolist(), strict=True)}
    values, frequencies = np.unique(labels, return_counts=True)
    return dict(zip(values.tolist(), frequencies.tolist(), strict=True))


def count_labels(labels: Any, *, detector: str, what: str) -> dict[Hashable, int]:
    """Count labels (any hashable); ``None`` and NaN are counted under ``MISSING``.

    Numeric and boolean numpy arrays are counted vectorised (``np.bincount`` for compact
    integer codes, else ``np.unique``); anything else (lists, object or string arrays, pandas
    Series, iterables) with ``collections.Counter``.

    Returns:
        label -> count, every count >= 1, numpy scalars turned into Python ones.

    Raises:
        ValueError: a single string, a non-iterable, a multi-column array, unhashable labels,
            or no labels at all.
    """
    if isinstance(labels, str | bytes):
        raise ValueError(f"{detector}: {what} must be a sequence of labels, not a single string")
    if not isinstance(labels, np.ndarray) and hasattr(labels, "dtype") and hasattr(labels, "__array__"):
        labels = np.asarray(labels)  # pandas Series and the like
    counts: dict[Hashable, int]
    if isinstance(labels, np.ndarray):
        if labels.ndim == 2 and 1 in labels.shape:
            labels = labels.reshape(-1)
        if labels.ndim != 1:
            raise ValueError(f"{detector}: {what} must be one-dimensional, got shape {labels.shape}")
        if labels.dtype.kind in "biuf" and labels.size:
            counts = _count_numeric(labels)
        else:
            labels = labels.tolist()
    if not isinstance(labels, np.ndarray):
        try:
            counts = dict(Counter(labels))
        except TypeError as exc:
            raise ValueError(f"{detector}: {what} must be an iterable of hashable labels: {exc}") from None
    missing = [label for label in counts if _is_missing(label)]
    if missing:
        # Distinct NaN objects are distinct keys (nan != nan): fold them, and None, together.
        counts[MISSING] = counts.get(MISSING, 0) + sum(counts.pop(label) for label in missing)
    if not counts:
        raise ValueError(f"{detector}: {what} is empty")
    return counts


@register("chisquare")
class ChiSquare(BatchDetector):
    """Chi-square test that the current labels follow the reference's category shares.

    Labels may be strings, ints, bools or any hashable (Python equality decides what is one
    category, so ``1``, ``1.0`` and ``True`` are the same). ``None`` and NaN are a category of
    their own, ``MISSING`` (``"<missing>"``), tested like any other: a surge of missing
    values is drift. Labels the reference never had are pooled into one "unseen" column,
    so new categories count against the reference without changing the degrees of freedom
    per new label. Categories with no count in either sample are left out of the table.

    The statistic and p-value equal ``scipy.stats.chi2_contingency(table,
    correction=False)`` on the 2 x K table (reference row, current row). ``details`` holds
    ``dof``, ``categories`` (in the reference), ``unseen`` (count of current labels the
    reference never had) and ``unseen_examples`` (up to 5 ``(label, count)`` pairs, most
    frequent first). With a single category in the table (dof 0) the statistic is 0 and the
    p-value 1.

    Decision: ``p_value < threshold`` (default 0.05).

    Raises:
        ValueError: from ``fit``/``test``, for labels that are empty, a single string, not
            one-dimensional or unhashable.
        RuntimeError: ``test`` before ``fit``.
    """

    name: ClassVar[str] = "chisquare"
    uses_p_value: ClassVar[bool] = True
    default_threshold: ClassVar[float] = 0.05

    def __init__(self, threshold: float | None = None) -> None:
        """Configure the detector.

        Args:
            threshold: the significance level, in (0, 1) (default 0.05).

        Raises:
            ConfigurationError: a threshold outside (0, 1).
        """
        super().__init__(threshold)
        self._index: dict[Hashable, int] = {}
        self._reference_counts: FloatArray = np.empty(0)

    @property
    def categories(self) -> list[Hashable]:
        """The reference's categories, in first-counted order. Empty before ``fit``."""
        return list(self._index)

    def _fit(self, reference: Any) -> int:
        counts = count_labels(reference, detector=self.name, what="reference")
        self._index = {label: i for i, label in enumerate(counts)}
        self._reference_counts = np.array(list(counts.values()), dtype=np.float64)
        return sum(counts.values())

    def _test(self, current: Any) -> tuple[float, float | None, int, dict[str, Any]]:
        counts = count_labels(current, detector=self.name, what="current")
        known = np.zeros(len(self._index) + 1)  # the last column is the unseen bucket
        unseen: list[tuple[Hashable, int]] = []
        for label, count in counts.items():
            column = self._index.get(label)
            if column is None:
                unseen.append((label, count))
            else:
                known[column] = count
        n_unseen = sum(count for _, count in unseen)
        known[-1] = n_unseen
        reference = np.append(self._reference_counts, 0.0)
        keep = (reference > 0) | (known > 0)
        table = np.stack((reference[keep], known[keep]))
        statistic, dof = _pearson(table)
        p_value = 1.0 if dof == 0 else chi2_sf(statistic, dof)
        unseen.sort(key=lambda pair: pair[1], reverse=True)
        details = {
            "dof": dof,
            "categories": len(self._index),
            "unseen": n_unseen,
            "unseen_examples": tuple(unseen[:_UNSEEN_EXAMPLES]),
        }
        return statistic, p_value, sum(counts.values()), {"details": details}


def _pearson(table: FloatArray) -> tuple[float, int]:
    """Pearson's statistic and degrees of freedom of a 2 x K table with no empty column."""
    dof = table.shape[1] - 1
    if dof == 0:
        return 0.0, 0  # as scipy: a single column carries no evidence
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    return float(np.sum((table - expected) ** 2 / expected)), dof
