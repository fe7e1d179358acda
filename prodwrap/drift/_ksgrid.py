"""The exact two-sample KS statistic from bucket counts, sorting only where the answer can be.

``KS`` uses this for large samples instead of sorting both of them. Values go into the
buckets of a uniform grid over the reference's range (one subtraction, one multiplication
and a truncation per value; any monotone map would do), and both samples are counted per
bucket. At a bucket edge the two empirical CDFs are known exactly from the counts below it,
so the largest gap over the edges is a lower bound on ``D``. Inside bucket ``k``,
``F_ref - F_cur`` moves by at most the bucket's reference count up and its current count
down, so a bucket can hold a larger gap only if it holds values of both samples and those
moves can carry it past the bound. Only those candidate buckets are sorted, and the gap is
read off at their values with the counts below them as offsets. The result is the same
integer ``n1 * n2 * D`` the sort-both method gives.

On 100k vs 100k values the candidates hold a few dozen values, so a test costs a handful
of linear passes over the data instead of two sorts. Data the grid cannot spread (a few
huge outliers, most values in one bucket) only makes the candidates larger: never wrong, and
when they hold more than a quarter of the reference ``KS`` gives the grid up and keeps the
reference sorted instead.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from prodwrap.drift._base import FloatArray, IntArray

BucketArray = npt.NDArray[np.int32]

MIN_SIZE = 5000  # smaller references are sorted: a few linear passes cost about as much
_MAX_BUCKETS = 12_288  # per-bucket arrays under 128 KiB: malloc reuses them instead of mapping fresh pages


class Grid:
    """A fitted reference as bucket indices and counts on a uniform grid over its range."""

    __slots__ = ("_high", "_low", "_scale", "counts", "edges_below", "n_buckets", "ref_buckets", "reference")

    def __init__(self, reference: FloatArray, low: float, high: float, inner: int) -> None:
        self._low, self._high, self._scale = low, high, inner / (high - low)
        self.n_buckets = inner + 2  # bucket 0 for values below the reference, inner+1 at its maximum and above
        self.reference = reference
        self.ref_buckets = self.locate(reference)
        self.counts = np.bincount(self.ref_buckets, minlength=self.n_buckets)
        self.edges_below = _exclusive_cumsum(self.counts)  # reference values below each bucket, and n

    @classmethod
    def build(cls, reference: FloatArray) -> Grid | None:
        """A grid for ``reference`` (finite, 1-D), or None when it is too small or constant."""
        if reference.size < MIN_SIZE:
            return None
        low, high = float(reference.min()), float(reference.max())
        inner = min(_MAX_BUCKETS, reference.size // 8)
        with np.errstate(over="ignore"):
            spread = high - low
        if not 0.0 < spread < float("inf") or not 0.0 < inner / spread < float("inf"):
            return None  # constant, or a range a double cannot hold or divide
        return cls(reference, low, high, inner)

    def locate(self, values: FloatArray) -> BucketArray:
        """Bucket of each value: non-decreasing in the value, so equal values share a bucket."""
        with np.errstate(over="ignore"):  # far outside the range: inf, clipped below
            spot = values - self._low
            spot *= self._scale
        spot += 1.0
        if float(values.min()) < self._low or float(values.max()) > self._high:
            np.clip(spot, 0.0, float(self.n_buckets - 1), out=spot)
        return spot.astype(np.int32)  # int32: converting a double to int64 is ten times slower

    def numerator(self, sample: FloatArray) -> int | None:
        """``n1 * n2 * D`` for ``sample`` (finite, 1-D) against the reference, exactly.

        None when the candidate buckets hold more than a quarter of the reference (data the
        grid cannot spread, such as heavy tails): sorting the whole reference once is then
        cheaper than sorting most of it at every test.
        """
        n1, n2 = self.reference.size, sample.size
        buckets = self.locate(sample)
        counts = np.bincount(buckets, minlength=self.n_buckets)
        below = _exclusive_cumsum(counts)
        # n1*n2 * (F_ref - F_cur) at every bucket edge, and what a bucket can reach inside
        edge_gap = self.edges_below * n2
        edge_gap -= below * n1
        bound = max(int(edge_gap.max()), -int(edge_gap.min()))
        start = edge_gap[:-1]
        candidate = (self.counts > 0) & (counts > 0)
        candidate &= (start + self.counts * n2 > bound) | (counts * n1 - start > bound)
        if not candidate.any():
            return bound
        ref_mask = candidate[self.ref_buckets]
        if np.count_nonzero(ref_mask) * 4 > n1:
            return None
        cur_mask = candidate[buckets]
        first = np.sort(self.reference[ref_mask])
        second = np.sort(sample[cur_mask])
        second_buckets = np.sort(buckets[cur_mask])  # sorting the values sorts their buckets
        # values below each candidate bucket that are not among the sorted ones
        first_base = self.edges_below[:-1] - _exclusive_cumsum(np.where(candidate, self.counts, 0))[:-1]
        second_base = below[:-1] - _exclusive_cumsum(np.where(candidate, counts, 0))[:-1]
        inside = gap_numerator(first, second, n1, n2, first_base[second_buckets], second_base[second_buckets])
        return max(bound, inside)


def gap_numerator(
    first: FloatArray,
    second: FloatArray,
    n1: int,
    n2: int,
    first_base: IntArray | None = None,
    second_base: IntArray | None = None,
) -> int:
    """``n1 * n2 * max |F1 - F2|`` over the values of ``second``, ties counted on both sides.

    ``first`` and ``second`` are sorted, non-empty, and may be parts of samples of sizes ``n1`` and
    ``n2``: ``first_base`` and ``second_base`` (one per value of ``second``) count the
    values of each sample below it that are not in the parts. Every value of the first
    sample equal to a value of ``second`` must be in ``first``.

    ``sup(F2 - F1)`` is reached at a value of the second sample, ``sup(F1 - F2)`` just
    below one; both are read off ``#{first <= v}`` and ``#{first < v}`` for every value
    ``v`` of ``second``.
    """
    at_or_below = np.searchsorted(first, second, side="right")
    before = np.arange(0, n1 * second.size, n1, dtype=np.int64)  # n1 * #{second before index k}
    if second_base is not None:
        before += second_base * n1
    # gap[k] = n1*n2 * (F1 - F2) at second[k], counting second[k] itself as not yet seen.
    # Within a run of equal values the first index gives the largest F1 - F2 just below
    # the run and the last the largest F2 - F1 at it, so maxima over all indices are right.
    gap = at_or_below.astype(np.int64) * n2
    if first_base is not None:
        gap += first_base * n2
    gap -= before
    second_above = n1 - int(gap.min())
    # #{first < v} differs from #{first <= v} only where v also occurs in `first`; index -1
    # (nothing at or below v) reads first[-1] > v, which never matches.
    shared = first[at_or_below - 1] == second
    if shared.any():
        below = at_or_below.copy()
        below[shared] = np.searchsorted(first, second[shared], side="left")
        gap = below.astype(np.int64) * n2
        if first_base is not None:
            gap += first_base * n2
        gap -= before
    first_above = int(gap.max())
    return max(second_above, first_above, 0)


def _exclusive_cumsum(counts: IntArray) -> IntArray:
    """``[0, c0, c0 + c1, ...]``: one longer than ``counts``, as int64."""
    out = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out
