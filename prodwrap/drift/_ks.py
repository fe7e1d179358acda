"""Two-sample Kolmogorov-Smirnov test: exact statistic, scipy-compatible p-value, numpy only.

The statistic ``D = sup |F_ref - F_cur|`` is exact, in integer arithmetic
(``D = D_num / (n1 * n2)``), so ties and constant samples need no special case. For a
reference of at least 5000 values, ``fit`` counts it on a grid, and a test of a current
sample of at least ``2000 + n1 / 48`` values sorts only the few grid buckets where ``D`` can
be (see ``_ksgrid``): a handful of linear passes instead of two sorts. Otherwise (and for
references the grid cannot spread) the reference is sorted once (at ``fit``, or at the
first such test) and each test sorts the current sample and reads ``D`` from one
``searchsorted`` pass.

The p-value is the one ``scipy.stats.ks_2samp(ref, cur)`` returns with its defaults
(``alternative="two-sided"``, ``method="auto"``):

* exact when ``max(n1, n2) <= 10000``: for equal sizes the reflection-principle sum
  ``2 * sum_k (-1)^(k-1) C(2n, n - k*h) / C(2n, n)``; otherwise the proportion of monotone
  lattice paths from ``(0, 0)`` to ``(n1, n2)`` leaving the band ``|x/n1 - y/n2| < D``
  (Hodges 1958), swept one anti-diagonal at a time as vector updates;
* otherwise (or if the exact computation fails) the one-sample distribution at the effective
  size, ``kstwo.sf(D, round(n1*n2 / (n1 + n2)))`` (see ``_kstwo``).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from prodwrap.drift._base import BatchDetector, FloatArray, as_sample, register
from prodwrap.drift._ksgrid import MIN_SIZE, Grid, gap_numerator
from prodwrap.drift._kstwo import kstwo_sf
from prodwrap.errors import ConfigurationError

# The grid costs a fixed ~0.15 ms plus a few linear passes over both samples; sorting the
# current sample and searching it in the sorted reference costs ~75 ns per current value.
# So the grid is used when n2 >= GRID_MIN_CURRENT + n1 / 48 (measured: 100k vs 12.5k, grid
# 0.35 ms against 1.0 ms; 2M vs 8192, sorted 1.1 ms against 3.3 ms).
GRID_MIN_CURRENT = 2000
EXACT_MAX_N = 10_000  # scipy's MAX_AUTO_N: exact p-values when both samples are at most this size
# Half-width of the window the exact sweep keeps on anti-diagonal s, in units of
# sqrt(min(s, n1 + n2 - s)): by Hoeffding's bound for sampling without replacement a
# uniformly random path strays further with probability below 2*exp(-2 * 6**2) ~ 1e-31.
_WINDOW_SIGMAS = 6.0


@register("ks")
class KS(BatchDetector):
    """Two-sample Kolmogorov-Smirnov test of a numeric feature against a fitted reference.

    Drifted when the p-value is below ``threshold`` (a significance level, default 0.05).
    ``statistic`` is ``D``, the largest gap between the two empirical CDFs (unitless, in
    ``[0, 1]``), equal to ``scipy.stats.ks_2samp``'s to rounding; ``p_value`` is within 1e-4
    of scipy's default (in practice within 1e-8). ``details["method"]`` says which p-value
    was used: ``"exact"`` or ``"asymp"``.

    Args:
        threshold: significance level in (0, 1); default 0.05.
        method: as ``scipy.stats.ks_2samp``'s: ``"auto"`` (exact when both samples have at
            most 10000 values, else asymptotic), ``"exact"`` or ``"asymp"`` (the one-sample
            KS distribution at the effective size: milliseconds at any size, where the exact
            computation for unequal sizes near 10000 takes tens of milliseconds).

    Raises:
        ConfigurationError: the threshold is not a number in (0, 1), or an unknown method.
    """

    name: ClassVar[str] = "ks"
    uses_p_value: ClassVar[bool] = True
    default_threshold: ClassVar[float] = 0.05

    def __init__(self, threshold: float | None = None, method: str = "auto") -> None:
        super().__init__(threshold)
        if method not in ("auto", "exact", "asymp"):
            raise ConfigurationError(f'ks: method must be "auto", "exact" or "asymp", got {method!r}')
        self.method = method
        self._reference: FloatArray = np.empty(0)
        self._sorted: FloatArray | None = None
        self._grid: Grid | None = None

    def _fit(self, reference: Any) -> int:
        """Validate the reference sample and count it on a grid (sorted instead when small).

        Raises:
            ValueError: the reference is empty, not one-dimensional, not numeric, or holds NaN/inf.
        """
        sample = as_sample(reference, detector=self.name, what="reference")
        # the grid keeps the reference as given: a copy, since the caller may change theirs
        self._grid = Grid.build(sample.copy()) if sample.size >= MIN_SIZE else None
        if self._grid is None:
            self._reference = self._sorted = np.sort(sample)
        else:
            self._reference = self._grid.reference
            self._sorted = None  # sorted at the first test that needs it
        return int(sample.size)

    def _test(self, current: Any) -> tuple[float, float | None, int, dict[str, Any]]:
        """``D`` and its p-value for ``current`` against the fitted reference.

        Raises:
            ValueError: the current sample is empty, not one-dimensional, not numeric, or holds NaN/inf.
        """
        sample = as_sample(current, detector=self.name, what="current sample")
        n1, n2 = self._reference.size, sample.size
        numerator = None
        if self._grid is not None and n2 >= GRID_MIN_CURRENT + n1 // 48:
            numerator = self._grid.numerator(sample)
            if numerator is None:
                self._grid = None  # the reference defeats the grid: sort it once and search it
        if numerator is None:
            if self._sorted is None:
                self._sorted = np.sort(self._reference)
            numerator = gap_numerator(self._sorted, np.sort(sample), n1, n2)
        p_value, method = ks_2samp_pvalue(n1, n2, numerator, self.method)
        return numerator / (n1 * n2), p_value, n2, {"details": {"method": method}}


def ks_2samp_pvalue(n1: int, n2: int, numerator: int, method: str = "auto") -> tuple[float, str]:
    """Two-sided p-value of ``D = numerator / (n1 * n2)``, as ``scipy.stats.ks_2samp`` computes it.

    Args:
        n1: size of the first sample (>= 1).
        n2: size of the second sample (>= 1).
        numerator: ``n1 * n2 * D``, an integer in ``[0, n1 * n2]``.
        method: ``"auto"``, ``"exact"`` (falls back to asymptotic if it cannot be computed)
            or ``"asymp"``.

    Returns:
        ``(p_value, method)`` with method ``"exact"`` or ``"asymp"``.
    """
    if method == "exact" or (method == "auto" and max(n1, n2) <= EXACT_MAX_N):
        p_value = _exact_pvalue(n1, n2, numerator // math.gcd(n1, n2))
        if math.isfinite(p_value) and 0.0 <= p_value <= 1.0:
            return p_value, "exact"
    large, small = max(n1, n2), min(n1, n2)
    effective = round(float(large) * float(small) / (float(large) + float(small)))
    return kstwo_sf(max(effective, 1), numerator / (n1 * n2)), "asymp"


def _exact_pvalue(n1: int, n2: int, h: int) -> float:
    """``P(D >= h / lcm(n1, n2))`` under the null hypothesis, exactly up to rounding."""
    if h <= 0:
        return 1.0
    if n1 == n2:
        return _equal_sizes_pvalue(n1, h)
    return _lattice_pvalue(n1, n2, h)


def _equal_sizes_pvalue(n: int, h: int) -> float:
    """``P(D_{n,n} >= h/n) = 2 * sum_{k>=1} (-1)^(k-1) C(2n, n - k*h) / C(2n, n)``."""
    steps = np.arange(n, dtype=np.float64)
    # log C(2n, n - t) / C(2n, n) = sum_{i<t} log((n - i) / (n + i + 1)), for t = 1..n
    log_ratio = np.cumsum(np.log1p(-(2.0 * steps + 1.0) / (n + steps + 1.0)))
    terms = np.exp(log_ratio[h - 1 :: h])  # t = h, 2h, ... <= n
    signs = np.where(np.arange(terms.size) % 2 == 0, 1.0, -1.0)
    return min(max(2.0 * float(signs @ terms), 0.0), 1.0)


def _lattice_pvalue(n1: int, n2: int, h: int) -> float:
    """Proportion of lattice paths from (0, 0) to (m, n) that leave ``|n*i - m*j| < h*g``.

    ``A(i, j)``, the share of paths from the origin to ``(i, j)`` that have left the band,
    is 1 outside it and ``(i * A(i-1, j) + j * A(i, j-1)) / (i + j)`` inside (Hodges 1958,
    in the 1 - p form of Viehmann 2021, which keeps small p-values accurate). A cell
    depends only on the previous anti-diagonal ``s = i + j``, so each diagonal is one
    vector update. Only ``+-6 sqrt(min(s, m + n - s))`` cells around the diagonal's centre
    are kept: a uniformly random path strays further with probability below 1e-31 per
    diagonal (Hoeffding), so treating those cells as outside moves the answer by less than
    1e-26 in all.
    """
    m, n = max(n1, n2), min(n1, n2)
    total = m + n
    g = math.gcd(m, n)
    mg, ng = m // g, n // g
    span = mg + ng
    steps = np.arange(1, total + 1, dtype=np.int64)
    # On diagonal s the band is the i with |span*i - mg*s| < h; clip to the grid and the window.
    band_lo = -((h - 1 - mg * steps) // span)  # ceil((mg*s - h + 1) / span)
    band_hi = (mg * steps + h - 1) // span
    spread = np.sqrt(np.minimum(steps, total - steps).astype(np.float64))
    reach = np.ceil(_WINDOW_SIGMAS * spread).astype(np.int64) + 1
    centre = (steps * m) // total
    lo = np.maximum.reduce([band_lo, steps - n, centre - reach, np.zeros_like(steps)])
    hi = np.minimum.reduce([band_hi, steps, centre + reach, np.full_like(steps, m)])
    if bool((hi < lo).any()):
        return 1.0  # the band closes somewhere: every path leaves it

    # Index i + 1 holds cell i, so index 0 stands for i = -1 (its weight i/s is 0 at i = 0;
    # likewise the weight of (i, j - 1) is 0 at j = 0, so the grid's edges need no care).
    # Outside the cells computed for a diagonal a buffer holds 1: "has left the band".
    cells = np.arange(-1, m + 1, dtype=np.float64)
    current = np.ones(m + 2)
    following = np.ones(m + 2)
    current[1] = 0.0  # diagonal 0: the path at (0, 0) is inside
    subtract, multiply, add = np.subtract, np.multiply, np.add
    prev_lo, prev_hi = 0, 0
    for s, (start, stop) in enumerate(zip(lo.tolist(), hi.tolist(), strict=True), start=1):
        new = following[start + 1 : stop + 2]
        same_i = current[start + 1 : stop + 2]  # cell (i, j - 1)
        # A(i, j) = A(i, j-1) + (i / s) * (A(i-1, j) - A(i, j-1))
        subtract(current[start : stop + 1], same_i, new)
        multiply(new, cells[start + 1 : stop + 2], new)
        multiply(new, 1.0 / s, new)
        add(new, same_i, new)
        current[prev_lo + 1 : prev_hi + 2] = 1.0
        current, following = following, current
        prev_lo, prev_hi = start, stop
    return min(max(float(current[m + 1]), 0.0), 1.0)
