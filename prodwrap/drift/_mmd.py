"""Maximum Mean Discrepancy: a multivariate two-sample test with an RBF kernel, numpy only.

The statistic is the unbiased estimate of MMD² (Gretton et al. 2012, eq. 3) between the reference
``X`` (n rows) and the current sample ``Y`` (m rows), with the Gaussian kernel
``k(a, b) = exp(-||a - b||² / (2 sigma²))``::

    MMD²_u = Σ_{i≠j} k(x_i, x_j) / (n(n-1)) + Σ_{i≠j} k(y_i, y_j) / (m(m-1)) - 2 Σ_{i,j} k(x_i, y_j) / (nm)

It can be negative (it is unbiased, not a squared norm). The p-value is a permutation test:
the pooled sample is split into groups of sizes n and m at random P times, and
``p = (k + 1) / (P + 1)`` where k counts the splits whose MMD²_u is at least the observed one
(so it is never 0).

Kernel width, fixed at ``fit``: the median heuristic in alibi-detect's convention
(``sigma_median``), ``sigma = sqrt(med / 2)``, where ``med`` is the lower median of the squared
Euclidean distances over the n(n-1)/2 distinct pairs of reference rows; the kernel is then
``exp(-d² / med)``. If more than half the pairs coincide (med = 0) the median of the non-zero
squared distances is used, and sigma = 1 if every reference row is the same.

Speed: the reference block of the kernel matrix is computed once, at ``fit``. ``test`` computes the
rest with one matrix product (the squared norms are folded in as two extra columns), then every
permutation at once: with ``W`` the (P+1) x (n+m) 0/1 matrix marking each split's reference group
(row 0 the observed split), ``q = rowsum((W @ K) * W)`` and ``r = W @ K1`` give all the statistics
in closed form (``_mmd2_from_groups``, which takes ``W @ K`` by blocks and uses K's symmetry). No
Python loop runs over permutations (only over blocks of 512, to bound memory when P is large).

Magnitude: the reference is divided by a power of two (``binary_exponent``: exact) so its values
lie in (-2, 2), and a current sample by the same one, so a reference near ``±1e308`` gives the same
statistic and p-value as the same data near 1. Current values more than 2**50 kernel widths from
the reference's centre are clipped to that distance first: their kernel with every reference row
is 0 either way, but two such values far apart from each other count as close.

Memory and precision: the kernel is held in float32 by default (2k vs 2k: a 16 MB reference block
plus a 32 MB current block). The statistic is invariant to adding a constant to every
off-diagonal kernel entry, so the kernel is shifted by its mean reference value before the
products, which keeps float32's rounding error on MMD² near 1e-9, against a permutation spread near
1e-4 at 2k vs 2k (tests hold it within 1e-6 of a float64 loop on small data). ``dtype="float64"``
doubles memory and takes about 1.5x the time; the statistic then matches a plain loop to 1e-9 (tested).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from prodwrap.drift._base import BatchDetector, FloatArray, binary_exponent, ldexp_or_inf, register, require_finite
from prodwrap.errors import ConfigurationError

# Permutations per matrix product: bounds the (rows x (n+m)) weight matrices for large P.
_PERMUTATION_BLOCK = 512
# Current values are clipped to this many kernel widths from the reference's centre (and, before
# scaling, to 2**_FAR_EXPONENT times the reference's magnitude): squares stay finite in float32.
_FAR = 2.0**50
_FAR_EXPONENT = 60


def _as_matrix(values: Any, *, what: str, n_features: int | None = None) -> FloatArray:
    """A 2-D float64 array (rows x features) of finite values, or a ValueError saying what is wrong."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"mmd: {what} must be numbers: {exc}") from None
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(f"mmd: {what} must be a 2-D array (rows x features) or 1-D, got shape {arr.shape}")
    if arr.shape[0] < 2:
        raise ValueError(f"mmd: {what} needs at least 2 rows, got {arr.shape[0]}")
    if arr.shape[1] == 0:
        raise ValueError(f"mmd: {what} has no features")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"mmd: {what} has {arr.shape[1]} features, the reference has {n_features}")
    return require_finite(arr, detector="mmd", what=what)


def _subsample(arr: FloatArray, cap: int, rng: np.random.Generator) -> FloatArray:
    """At most ``cap`` rows of ``arr``, drawn without replacement when there are more."""
    if arr.shape[0] <= cap:
        return arr
    return arr[np.sort(rng.choice(arr.shape[0], size=cap, replace=False))]


def _augment(u: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Left and right factors with ``left @ right.T == -(squared distances)``.

    ``-||a - b||² = 2 a·b - |a|² - |b|² = [2a, -|a|², -1] · [b, 1, |b|²]``, so one matrix
    product gives every negated squared distance, with no broadcast additions after it.
    """
    norms = np.einsum("ij,ij->i", u, u)[:, None]
    ones = np.ones_like(norms)
    return np.hstack([2 * u, -norms, -ones]), np.hstack([u, ones, norms])


def _median_sq_distance(neg_sq: FloatArray, tol: float, same: float = 2.0) -> float:
    """The lower median of squared distances over distinct pairs of rows (alibi-detect's convention).

    Args:
        neg_sq: the (n, n) matrix of negated squared distances between the reference rows.
        tol: distances at most this are rounding noise of coincident rows, taken as 0.
        same: the answer when every row is the same (2.0: sigma = 1).
    """
    pairs = -neg_sq[np.tri(neg_sq.shape[0], k=-1, dtype=bool)]
    med = _lower_median(pairs)
    if med <= tol:  # most pairs coincide: the median of the others; any width if every row is the same
        apart = pairs[pairs > tol]
        med = _lower_median(apart) if apart.size else same
    return med


def _lower_median(values: FloatArray) -> float:
    middle = (values.size - 1) // 2
    return float(np.partition(values, middle)[middle])


def _permutation_groups(rng: np.random.Generator, n_permutations: int, n: int, m: int) -> npt.NDArray[np.intp]:
    """For each permutation, the indices of the pooled rows (reference first) that form the reference group.

    Returns:
        An (n_permutations, n) array of indices into the pooled sample of n + m rows.
    """
    shuffled = rng.permuted(np.tile(np.arange(n + m, dtype=np.intp), (n_permutations, 1)), axis=1)
    return shuffled[:, :n]


def _mmd2_from_groups(kxx: npt.NDArray[Any], kcur: npt.NDArray[Any], weights: npt.NDArray[Any]) -> FloatArray:
    """Unbiased MMD² of every split marked in ``weights``, from the kernel matrix in two blocks.

    Args:
        kxx: the (n, n) reference block, zero diagonal.
        kcur: the (m, n + m) current rows of the kernel matrix ``[K_yx, K_yy]``, ``K_yy`` with zero diagonal.
        weights: an (R, n + m) 0/1 matrix, each row with n ones marking one split's reference group.

    Returns:
        R statistics, float64. With x the 0/1 row and y = 1 - x, the three kernel sums of MMD²_u
        are ``xᵀKx = q``, ``yᵀKy = T - 2r + q`` and ``xᵀKy = r - q``, where ``r = xᵀK1`` and ``T = 1ᵀK1``.
    """
    n = kxx.shape[0]
    m = kcur.shape[0]
    kyx, kyy = kcur[:, :n], kcur[:, n:]
    wx, wy = weights[:, :n], weights[:, n:]
    # q = xᵀKx by blocks, K symmetric: x_xᵀK_xx x_x + 2 x_yᵀK_yx x_x + x_yᵀK_yy x_y (3/4 of (W @ K)'s work).
    q = (
        np.einsum("ij,ij->i", wx @ kxx, wx, dtype=np.float64)
        + 2 * np.einsum("ij,ij->i", wy @ kyx, wx, dtype=np.float64)
        + np.einsum("ij,ij->i", wy @ kyy, wy, dtype=np.float64)
    )
    # Row sums in the kernel's dtype: their rounding reaches MMD² divided by n·m.
    row_sums = np.concatenate([kxx.sum(axis=1) + kyx.sum(axis=0), kcur.sum(axis=1)]).astype(np.float64)
    r = weights.astype(np.float64) @ row_sums
    total = float(row_sums.sum())
    within_x = q / (n * (n - 1))
    within_y = (total - 2 * r + q) / (m * (m - 1))
    between = (r - q) / (n * m)
    result: FloatArray = within_x + within_y - 2 * between
    return result


@register("mmd")
class MMD(BatchDetector):
    """Multivariate two-sample Maximum Mean Discrepancy test with an RBF kernel and a permutation p-value.

    Drift when ``p_value < threshold`` (default 0.05). The statistic is the unbiased MMD² (it can be
    slightly negative when nothing changed); ``details`` carries ``sigma`` (the kernel width, in the
    data's units), ``n_permutations`` and ``exceedances`` (k in ``(k + 1) / (P + 1)``).
    ``n_reference`` and ``n_current`` in the result are the row counts after the caps.

    Args:
        threshold: significance level in (0, 1).
        n_permutations: permutations P of the pooled sample for the p-value (>= 1); the smallest
            p-value possible is 1 / (P + 1).
        max_reference: reference rows kept at ``fit`` (a seeded sample without replacement above it).
        max_current: current rows kept at ``test``, likewise. Time and memory grow as (n + m)².
        sigma: kernel width in the data's units; None (the default) for the median heuristic.
        dtype: ``"float32"`` (default) or ``"float64"`` for the kernel matrix and its products.
        seed: seed of the generator (``np.random.default_rng``) behind subsampling and permutations,
            created once, so successive tests draw fresh permutations.

    Raises:
        ConfigurationError: for a parameter out of range.

    Example::

        det = MMD(seed=0)
        det.fit(reference)  # an (n, d) array; 1-D is taken as (n, 1)
        det.test(current).drifted
    """

    name: ClassVar[str] = "mmd"
    uses_p_value: ClassVar[bool] = True
    default_threshold: ClassVar[float] = 0.05

    def __init__(
        self,
        threshold: float | None = None,
        *,
        n_permutations: int = 100,
        max_reference: int = 2000,
        max_current: int = 2000,
        sigma: float | None = None,
        dtype: Literal["float32", "float64"] = "float32",
        seed: int | None = None,
    ) -> None:
        super().__init__(threshold)
        for label, value, least in (
            ("n_permutations", n_permutations, 1),
            ("max_reference", max_reference, 2),
            ("max_current", max_current, 2),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigurationError(f"mmd: {label} must be an integer >= {least}, got {value!r}")
        if sigma is not None and (
            isinstance(sigma, bool) or not isinstance(sigma, int | float) or not np.isfinite(sigma) or sigma <= 0
        ):
            raise ConfigurationError(f"mmd: sigma must be a positive finite number or None, got {sigma!r}")
        if dtype not in ("float32", "float64"):
            raise ConfigurationError(f"mmd: dtype must be 'float32' or 'float64', got {dtype!r}")
        self.n_permutations = n_permutations
        self.max_reference = max_reference
        self.max_current = max_current
        self._fixed_sigma = None if sigma is None else float(sigma)
        self.sigma: float | None = self._fixed_sigma
        self.dtype = dtype
        self._rng = np.random.default_rng(seed)
        self._exponent = 0  # the reference is divided by 2**_exponent at fit, the current sample at test
        self._center: FloatArray = np.zeros(0)
        self._scale = 1.0
        self._shift = 0.0
        self._kxx: npt.NDArray[Any] = np.zeros((0, 0))
        self._right_ref: npt.NDArray[Any] = np.zeros((0, 0))

    def _fit(self, reference: Any) -> int:
        ref = _subsample(_as_matrix(reference, what="reference"), self.max_reference, self._rng)
        self._exponent = binary_exponent(ref)
        ref = np.ldexp(ref, -self._exponent)
        self._center = ref.mean(axis=0)
        centred = ref - self._center  # distances don't move; float32 products lose less
        left, right = _augment(centred)
        kxx = left @ right.T  # -(squared distances), float64 at fit whatever the dtype
        np.minimum(kxx, 0.0, out=kxx)
        if self._fixed_sigma is None:
            # A product's rounding leaves coincident rows ~1e-16 x |row|² apart: far below this.
            # every row the same: sigma = 1 in the data's units, 2**-exponent in the scaled ones
            same = min(ldexp_or_inf(2.0, -2 * self._exponent), 1e300)
            med = _median_sq_distance(kxx, tol=1e-10 * float(np.max(-left[:, -2])), same=same)
        else:
            med = 2.0 * math.ldexp(self._fixed_sigma, -self._exponent) ** 2
            if not 0.0 < med < math.inf:
                raise ValueError(f"mmd: sigma={self._fixed_sigma} is out of all proportion to the reference's values")
        self.sigma = ldexp_or_inf(float(np.sqrt(med / 2.0)), self._exponent)
        self._scale = 1.0 / float(np.sqrt(med))  # scaled rows: k(a, b) = exp(-||a - b||²)
        kxx *= 1.0 / med
        np.exp(kxx, out=kxx)
        np.fill_diagonal(kxx, 0.0)
        n = int(ref.shape[0])
        # MMD²_u is unchanged by a constant added off the diagonal: centre the entries near 0.
        self._shift = float(kxx.sum() / (n * (n - 1)))
        kxx -= self._shift
        np.fill_diagonal(kxx, 0.0)
        self._kxx = kxx.astype(self.dtype)
        self._right_ref = _augment(centred * self._scale)[1].astype(self.dtype)
        return n

    def _test(self, current: Any) -> tuple[float, float | None, int, dict[str, Any]]:
        stats, n_current = self._statistics(current)
        exceedances = int(np.count_nonzero(stats[1:] >= stats[0]))
        p_value = (exceedances + 1) / (self.n_permutations + 1)
        details = {"sigma": self.sigma, "n_permutations": self.n_permutations, "exceedances": exceedances}
        return float(stats[0]), p_value, n_current, {"details": details}

    def _statistics(self, current: Any) -> tuple[FloatArray, int]:
        """MMD²_u of the observed split (element 0) and of every permutation (the others); rows used."""
        cur = _as_matrix(current, what="current", n_features=self._center.shape[0])
        cur = _subsample(cur, self.max_current, self._rng)
        n, m = self._kxx.shape[0], int(cur.shape[0])
        far = ldexp_or_inf(1.0, self._exponent + _FAR_EXPONENT)
        cur = np.ldexp(np.clip(cur, -far, far), -self._exponent)
        reach = _FAR / self._scale
        cur = np.clip(cur, self._center - reach, self._center + reach)
        left_cur, right_cur = _augment(((cur - self._center) * self._scale).astype(self.dtype))
        kcur = left_cur @ np.vstack([self._right_ref, right_cur]).T  # (m, n + m): [K_yx, K_yy]
        np.minimum(kcur, 0.0, out=kcur)
        np.exp(kcur, out=kcur)
        kcur -= kcur.dtype.type(self._shift)
        kcur.reshape(-1)[n :: n + m + 1] = 0.0  # the diagonal of the K_yy block
        # Row 0 is the observed split (the reference rows first), the others the permutations.
        groups = np.vstack([np.arange(n, dtype=np.intp), _permutation_groups(self._rng, self.n_permutations, n, m)])
        stats = np.empty(groups.shape[0])
        for start in range(0, groups.shape[0], _PERMUTATION_BLOCK):  # blocks of permutations bound memory
            block = groups[start : start + _PERMUTATION_BLOCK]
            weights = np.zeros((block.shape[0], n + m), dtype=self.dtype)
            np.put_along_axis(weights, block, 1.0, axis=1)
            stats[start : start + block.shape[0]] = _mmd2_from_groups(self._kxx, kcur, weights)
        return stats, m
