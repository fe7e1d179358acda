"""KS detector: statistic and p-value against scipy.stats.ks_2samp, edges, errors, registry.

Also covers ``prodwrap.drift._kstwo`` (the one-sample distribution behind the asymptotic
p-value) against ``scipy.stats.kstwo`` and ``scipy.special.smirnov``.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
import scipy.special
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import prodwrap.drift
from prodwrap.drift import DriftResult
from prodwrap.drift._ks import KS, ks_2samp_pvalue
from prodwrap.drift._ksgrid import gap_numerator
from prodwrap.drift._kstwo import kstwo_sf, smirnov_sf
from prodwrap.errors import ConfigurationError

P_TOL = 1e-4  # the contract: p-values within 1e-4 (absolute) of scipy's
D_TOL = 1e-9  # the contract: statistics within 1e-9
EXACT_MAX_N = 10_000  # scipy's switch: exact p-values when max(n1, n2) <= 10000


def run_ks(reference: np.ndarray, current: np.ndarray, threshold: float | None = None) -> DriftResult:
    detector = KS(threshold)
    detector.fit(reference)
    return detector.test(current)


def scipy_ks(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """scipy's (D, p). For equal sizes and D = 1/n its exact sum can round to 1 + 1e-16; it then
    warns "Exact calculation unsuccessful" and falls back to asymp. That warning is scipy's."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful", RuntimeWarning)
        expected = scipy.stats.ks_2samp(reference, current)
    return float(expected.statistic), float(expected.pvalue)


def assert_matches_scipy(reference: np.ndarray, current: np.ndarray) -> DriftResult:
    statistic, p_value = scipy_ks(reference, current)
    result = run_ks(reference, current)
    assert result.statistic == pytest.approx(statistic, abs=D_TOL)
    assert result.p_value is not None
    assert result.p_value == pytest.approx(p_value, abs=P_TOL)
    expected_method = "exact" if max(reference.size, current.size) <= EXACT_MAX_N else "asymp"
    assert result.details["method"] == expected_method
    return result


# --- agreement with scipy on random samples ------------------------------------------------

finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)
few_values = st.sampled_from([-2.0, -0.0, 0.0, 0.5, 1.0, 3.0])  # ties within and across samples


@settings(max_examples=150, deadline=None)
@given(
    reference=hnp.arrays(np.float64, st.integers(1, 40), elements=finite | few_values),
    current=hnp.arrays(np.float64, st.integers(1, 40), elements=finite | few_values),
)
def test_matches_scipy_on_arbitrary_small_samples(reference: np.ndarray, current: np.ndarray) -> None:
    assert_matches_scipy(reference, current)


@settings(max_examples=100, deadline=None)
@given(
    n1=st.integers(1, 2000),
    n2=st.integers(1, 2000),
    shift=st.sampled_from([0.0, 0.02, 0.1, 0.3, 1.0]),
    kind=st.sampled_from(["continuous", "integers", "rounded"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_matches_scipy_on_random_samples_up_to_2000(n1: int, n2: int, shift: float, kind: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.normal(0.0, 1.0, n1)
    current = rng.normal(shift, 1.0, n2)
    if kind == "integers":  # heavy ties
        reference, current = np.floor(reference * 2), np.floor(current * 2)
    elif kind == "rounded":
        reference, current = np.round(reference, 1), np.round(current, 1)
    assert_matches_scipy(reference, current)


@pytest.mark.parametrize(
    ("n1", "n2", "shift"),
    [
        (10000, 10000, 0.03),  # equal sizes at the switch: exact
        (10000, 9999, 0.03),  # unequal sizes at the switch: exact lattice sweep
        (10000, 10001, 0.03),  # one past the switch: asymptotic at size 5000
        (10001, 10000, 0.0),
        (20000, 15000, 0.02),  # where the Kolmogorov limit would be off by 3e-3
        (100000, 100000, 0.01),
        (100000, 100000, 0.05),  # Smirnov-sum region of the one-sample distribution
        (10000, 3, 0.5),  # exact, very unbalanced
        (1, 10001, 0.0),  # asymptotic at effective size 1
        (5, 20000, 1.0),
        (300, 200, 0.3),
    ],
)
def test_matches_scipy_around_the_exact_asymptotic_switch(n1: int, n2: int, shift: float) -> None:
    rng = np.random.default_rng(n1 * 7919 + n2)
    assert_matches_scipy(rng.normal(0.0, 1.0, n1), rng.normal(shift, 1.0, n2))


def test_small_p_values_keep_relative_accuracy() -> None:
    # The exact sweep computes P(outside) directly, not 1 - P(inside): tiny p-values stay
    # meaningful for corrections over many features.
    rng = np.random.default_rng(5)
    reference, current = rng.normal(0.0, 1.0, 900), rng.normal(0.6, 1.0, 700)
    expected = scipy_ks(reference, current)[1]
    assert 1e-30 < expected < 1e-10
    result = run_ks(reference, current)
    assert result.p_value == pytest.approx(expected, rel=1e-6)


# --- exact p-values from first principles -----------------------------------------------------


@pytest.mark.parametrize(("n1", "n2"), [(1, 1), (1, 4), (2, 3), (3, 3), (3, 5), (4, 6), (5, 5)])
def test_exact_p_value_equals_the_permutation_distribution(n1: int, n2: int) -> None:
    # Under the null every split of the pooled ranks is equally likely: count them all.
    total = n1 + n2
    numerators = []
    for chosen in itertools.combinations(range(total), n1):
        first = np.array(chosen, dtype=np.float64)
        second = np.array(sorted(set(range(total)) - set(chosen)), dtype=np.float64)
        numerators.append(gap_numerator(first, second, first.size, second.size))
    splits = len(numerators)
    for observed in sorted(set(numerators)):
        expected = sum(value >= observed for value in numerators) / splits
        p_value, method = ks_2samp_pvalue(n1, n2, observed)
        assert method == "exact"
        assert p_value == pytest.approx(expected, abs=1e-12)


def test_statistic_is_exact_with_ties_across_and_within_samples() -> None:
    reference = np.array([1.0, 1.0, 2.0, 3.0, 3.0, 3.0])
    current = np.array([0.0, 1.0, 3.0, 3.0])
    # F_ref - F_cur at 0, 1, 2, 3: 0 - 1/4, 2/6 - 2/4, 3/6 - 2/4, 0 -> D = 1/4
    result = run_ks(reference, current)
    assert result.statistic == 0.25
    assert result.statistic == pytest.approx(scipy_ks(reference, current)[0], abs=D_TOL)


# --- edges ------------------------------------------------------------------------------------


def test_identical_constant_samples_have_no_drift() -> None:
    result = run_ks(np.full(50, 3.5), np.full(70, 3.5))
    assert result.statistic == 0.0
    assert result.p_value == 1.0
    assert not result.drifted


@pytest.mark.parametrize(("n1", "n2"), [(1, 1), (5, 5), (40, 60), (20000, 15000)])
def test_disjoint_samples_have_statistic_one(n1: int, n2: int) -> None:
    reference, current = np.zeros(n1), np.ones(n2)
    result = assert_matches_scipy(reference, current)
    assert result.statistic == 1.0
    assert result.drifted == (result.p_value is not None and result.p_value < 0.05)


def test_constant_reference_against_varied_current() -> None:
    rng = np.random.default_rng(3)
    assert_matches_scipy(np.full(200, 0.0), rng.normal(0.0, 1.0, 150))


@pytest.mark.parametrize(("n1", "n2"), [(1, 1), (1, 2), (2, 1), (1, 5), (3, 2), (5, 4)])
def test_tiny_samples(n1: int, n2: int) -> None:
    rng = np.random.default_rng(n1 * 10 + n2)
    assert_matches_scipy(rng.normal(size=n1), rng.normal(size=n2))


def test_does_not_modify_the_callers_arrays() -> None:
    reference = np.array([3.0, 1.0, 2.0])
    current = np.array([9.0, 7.0, 8.0, 0.0])
    detector = KS()
    detector.fit(reference)
    first = detector.test(current)
    reference[:] = 100.0  # the fitted reference is a copy
    assert detector.test(current) == first
    assert current.tolist() == [9.0, 7.0, 8.0, 0.0]


def test_accepts_lists_and_column_vectors() -> None:
    detector = KS()
    detector.fit([[1.0], [2.0], [3.0]])
    result = detector.test([2.5, 3.5])
    assert (result.n_reference, result.n_current) == (3, 2)
    assert result.statistic == pytest.approx(scipy_ks(np.array([1.0, 2, 3]), np.array([2.5, 3.5]))[0])


def test_result_fields() -> None:
    result = run_ks(np.arange(10.0), np.arange(5.0) + 0.5, threshold=0.01)
    assert result.detector == "ks"
    assert result.feature is None
    assert result.threshold == 0.01
    assert (result.n_reference, result.n_current) == (10, 5)
    assert isinstance(result.statistic, float) and isinstance(result.p_value, float)
    assert result.empty_bins is None
    assert dict(result.details) == {"method": "exact"}


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_reference_is_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match=r"ks: reference contains 1 NaN or infinite value"):
        KS().fit([1.0, bad, 2.0])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_current_sample_is_rejected(bad: float) -> None:
    detector = KS()
    detector.fit([1.0, 2.0])
    with pytest.raises(ValueError, match=r"ks: current sample contains 2 NaN or infinite value"):
        detector.test([bad, 0.0, bad])


@pytest.mark.parametrize(
    ("values", "message"),
    [([], "is empty"), ([[1.0, 2.0], [3.0, 4.0]], "one-dimensional"), (["a", "b"], "must be numbers")],
)
def test_malformed_samples_are_rejected(values: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KS().fit(values)
    detector = KS()
    detector.fit([1.0])
    with pytest.raises(ValueError, match=message):
        detector.test(values)


def test_test_before_fit_is_an_error() -> None:
    with pytest.raises(RuntimeError, match=r"call fit\(reference\) before test\(\)"):
        KS().test([1.0, 2.0])


@pytest.mark.parametrize("threshold", [0, 0.0, 1, 1.0, 1.5, -0.1, math.nan, math.inf, True, "0.05"])
def test_threshold_must_be_a_significance_level(threshold: object) -> None:
    with pytest.raises(ConfigurationError, match="ks: threshold"):
        KS(threshold)  # type: ignore[arg-type]


def test_default_threshold() -> None:
    assert KS().threshold == 0.05
    assert KS(0.01).threshold == 0.01


# --- decision rule and registry ---------------------------------------------------------------


def test_drifted_iff_p_value_below_threshold() -> None:
    rng = np.random.default_rng(11)
    reference, current = rng.normal(0.0, 1.0, 400), rng.normal(0.15, 1.0, 300)
    p_value = run_ks(reference, current).p_value
    assert p_value is not None and 0.001 < p_value < 0.999
    assert run_ks(reference, current, threshold=math.nextafter(p_value, 1.0)).drifted
    assert not run_ks(reference, current, threshold=p_value).drifted  # strictly below
    detector = KS(0.999)
    detector.fit(reference)
    assert detector.test(current).drifted
    assert not detector.test(current, threshold=0.001).drifted  # the monitor's corrected level


def test_registered_as_ks() -> None:
    made = prodwrap.drift.detector("ks", threshold=0.01)
    assert isinstance(made, KS)
    assert made.threshold == 0.01
    assert isinstance(prodwrap.drift.detector("KS"), KS)
    assert "ks" in prodwrap.drift.available()
    assert isinstance(made, prodwrap.drift.DriftDetector)


# --- the one-sample distribution (prodwrap.drift._kstwo) --------------------------------------

# scipy evaluates kstwo point by point in Python (and Smirnov's sum in double-double), so
# large sizes get a short grid: z = d*sqrt(n) across the Durbin / Pelz-Good / Smirnov regions.
SHORT_Z = [0.2, 0.5, 0.9, 1.2, 1.45, 1.6, 2.5, 4.0]


@pytest.mark.parametrize("n", [1, 2, 3, 7, 40, 140, 141, 1000, 5000])
def test_kstwo_sf_matches_scipy(n: int) -> None:
    # Every region: below the support, Ruben-Gambino ends, Durbin matrix, Pelz-Good, Smirnov.
    z = np.linspace(0.05, 4.0, 60)
    grid = np.concatenate([z / math.sqrt(n), np.linspace(0.0, 1.0, 41), [0.5 / n, 1.0 / n, 1.0 - 1.0 / n]])
    assert_kstwo_matches(n, grid[(grid >= 0.0) & (grid <= 1.0)])


@pytest.mark.parametrize("n", [100000, 100001, 2_000_001])
def test_kstwo_sf_matches_scipy_at_large_sizes(n: int) -> None:
    assert_kstwo_matches(n, np.array(SHORT_Z) / math.sqrt(n))


def assert_kstwo_matches(n: int, grid: np.ndarray) -> None:
    expected = scipy.stats.kstwo.sf(grid, n)
    got = np.array([kstwo_sf(n, float(d)) for d in grid])
    np.testing.assert_allclose(got, expected, rtol=0.0, atol=1e-7)


@pytest.mark.parametrize("n", [2, 10, 141, 5000, 100000, 1000001])
def test_smirnov_sf_matches_scipy(n: int) -> None:
    z = np.array(SHORT_Z) if n >= 100000 else np.linspace(0.05, 3.0, 30)
    grid = np.concatenate([np.linspace(0.0, 1.0, 31), z / math.sqrt(n)])
    grid = grid[grid <= 1.0]
    expected = scipy.special.smirnov(n, grid)
    got = np.array([smirnov_sf(n, float(d)) for d in grid])
    np.testing.assert_allclose(got, expected, rtol=0.0, atol=1e-7)


def test_kstwo_sf_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="n must be >= 1"):
        kstwo_sf(0, 0.5)
    with pytest.raises(ValueError, match="NaN"):
        kstwo_sf(10, math.nan)


@pytest.mark.parametrize(("n1", "n2"), [(300, 200), (5000, 1000), (20, 20)])
def test_method_choice_matches_scipy(n1: int, n2: int) -> None:
    from prodwrap.drift import KS as PublicKS

    rng = np.random.default_rng(n1 + n2)
    ref, cur = rng.normal(size=n1), rng.normal(0.1, 1, size=n2)
    for method in ("exact", "asymp"):
        det = PublicKS(method=method)
        det.fit(ref)
        result = det.test(cur)
        expected = scipy.stats.ks_2samp(ref, cur, method=method)
        assert result.p_value == pytest.approx(expected.pvalue, abs=1e-4)
        assert result.details["method"] == method
    with pytest.raises(ConfigurationError):
        PublicKS(method="fast")
