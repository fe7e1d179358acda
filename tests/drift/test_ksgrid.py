"""The grid method of the KS statistic: the same integer as sorting both samples, on any data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from prodwrap.drift import KS
from prodwrap.drift._ksgrid import MIN_SIZE, Grid, gap_numerator


def sorted_numerator(reference: np.ndarray, current: np.ndarray) -> int:
    return gap_numerator(np.sort(reference), np.sort(current), reference.size, current.size)


def grid_numerator(reference: np.ndarray, current: np.ndarray) -> int:
    grid = Grid.build(reference.copy())
    assert grid is not None
    numerator = grid.numerator(current)
    return sorted_numerator(reference, current) if numerator is None else numerator


def make(kind: str, rng: np.random.Generator, n: int, shift: float) -> np.ndarray:
    values = rng.normal(shift, 1.0, n)
    if kind == "integers":  # heavy ties: a few dozen distinct values
        return np.floor(values * 4)
    if kind == "rounded":
        return np.round(values, 2)
    if kind == "outliers":  # most values in one bucket of a grid over the whole range
        values[rng.integers(0, n, 3)] = rng.choice([-1e9, 1e9, 5e12], 3)
        return values
    if kind == "lognormal":
        return np.exp(values * 2.0)
    return values


@settings(max_examples=60, deadline=None)
@given(
    n1=st.integers(MIN_SIZE, 30_000),
    n2=st.integers(1, 30_000),
    shift=st.sampled_from([0.0, 0.01, 0.05, 0.5, 3.0, 50.0, -50.0]),
    kind=st.sampled_from(["continuous", "integers", "rounded", "outliers", "lognormal"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_grid_gives_the_sorted_numerator(n1: int, n2: int, shift: float, kind: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = make(kind, rng, n1, 0.0)
    current = make(kind, rng, n2, shift)
    assert grid_numerator(reference, current) == sorted_numerator(reference, current)


@pytest.mark.parametrize(
    "current",
    [
        pytest.param(lambda ref: ref.copy(), id="the reference itself"),
        pytest.param(lambda ref: np.full(7000, ref.min()), id="all at the reference minimum"),
        pytest.param(lambda ref: np.full(7000, ref.max()), id="all at the reference maximum"),
        pytest.param(lambda ref: np.concatenate([ref[:3000], [ref.max()] * 40, [ref.min()] * 40]), id="ends tied"),
        pytest.param(lambda ref: np.linspace(-1e307, 1e307, 9000), id="far outside on both sides"),
        pytest.param(lambda ref: np.full(9000, -1e300), id="all below"),
        pytest.param(lambda ref: np.full(9000, 1e300), id="all above"),
        pytest.param(lambda ref: np.nextafter(ref, np.inf), id="one ulp above every value"),
    ],
)
def test_grid_edges(current: object) -> None:
    rng = np.random.default_rng(5)
    reference = np.round(rng.normal(0.0, 1.0, 8000), 3)
    cur = current(reference)  # type: ignore[operator]
    assert grid_numerator(reference, cur) == sorted_numerator(reference, cur)


def test_no_grid_for_small_constant_or_unrepresentable_references() -> None:
    assert Grid.build(np.arange(MIN_SIZE - 1, dtype=np.float64)) is None
    assert Grid.build(np.full(MIN_SIZE, 2.5)) is None
    assert Grid.build(np.concatenate([np.full(MIN_SIZE, -1e308), [1e308]])) is None  # range overflows
    # a range of one ulp still makes a grid (its two values fall in different buckets)
    tiny = np.concatenate([np.full(MIN_SIZE // 2, 1.0), np.full(MIN_SIZE // 2, np.nextafter(1.0, 2.0))])
    grid = Grid.build(tiny)
    assert grid is not None
    outside = np.array([0.0, 0.5, 0.5])
    assert grid.numerator(outside) == sorted_numerator(tiny, outside)
    current = np.array([0.0, 1.0, 1.0, 2.0])  # candidates hold half the reference: given up
    assert grid.numerator(current) is None


@pytest.mark.parametrize(
    ("n1", "n2"), [(100_000, 100_000), (100_000, 6_250), (100_000, 1_000), (20_000, 50_000), (400_000, 8192)]
)
def test_ks_matches_scipy_whichever_method_it_picks(n1: int, n2: int) -> None:
    rng = np.random.default_rng(n1 + n2)
    reference, current = rng.normal(0.0, 1.0, n1), rng.normal(0.02, 1.0, n2)
    detector = KS()
    detector.fit(reference)
    expected = scipy.stats.ks_2samp(reference, current)
    for _ in range(2):  # the second test of a sort-path detector reuses the reference it sorted
        result = detector.test(current)
        assert result.statistic == pytest.approx(expected.statistic, abs=1e-12)
        assert result.p_value == pytest.approx(expected.pvalue, abs=1e-4)


def test_grid_reference_is_a_copy() -> None:
    rng = np.random.default_rng(9)
    reference, current = rng.normal(0.0, 1.0, 20_000), rng.normal(0.1, 1.0, 20_000)
    detector = KS()
    detector.fit(reference)
    first = detector.test(current)
    reference[:] = 100.0
    assert detector.test(current) == first


def test_far_outside_values_raise_no_overflow_warning() -> None:
    reference = np.random.default_rng(0).uniform(-1.7e308, -1.6e308, 6000)
    grid = Grid.build(reference)
    assert grid is not None
    current = np.array([1.7e308, -1.65e308])
    assert grid.numerator(current) == sorted_numerator(reference, current)  # tests run with -W error


def test_a_reference_the_grid_cannot_spread_is_sorted_instead() -> None:
    rng = np.random.default_rng(4)
    reference = np.concatenate([rng.normal(0.0, 1.0, 20_000), [1e12]])  # everything in one bucket
    current = rng.normal(0.1, 1.0, 20_000)
    grid = Grid.build(reference.copy())
    assert grid is not None
    assert grid.numerator(current) is None
    detector = KS()
    detector.fit(reference)
    first = detector.test(current)
    assert detector._grid is None  # given up after the first test
    assert first.statistic == pytest.approx(scipy.stats.ks_2samp(reference, current).statistic, abs=1e-12)
    assert detector.test(current) == first
