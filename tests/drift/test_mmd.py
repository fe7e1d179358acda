"""MMD: the statistic and the batched permutations against plain loops, the p-value rule, error rates."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import prodwrap.drift
from prodwrap.drift import DriftResult
from prodwrap.drift import _mmd as mmd_module
from prodwrap.drift._mmd import MMD, _permutation_groups
from prodwrap.errors import ConfigurationError


def loop_median_sq_distance(x: np.ndarray) -> float:
    """alibi-detect's median heuristic, spelled out: the lower median over distinct pairs."""
    dists = sorted(float(np.sum((x[i] - x[j]) ** 2)) for i, j in itertools.combinations(range(len(x)), 2))
    med = dists[(len(dists) - 1) // 2]
    if med == 0.0:
        apart = [d for d in dists if d > 0.0]
        med = apart[(len(apart) - 1) // 2] if apart else 2.0
    return med


def loop_mmd2(x: np.ndarray, y: np.ndarray, sigma: float) -> float:
    """The unbiased MMD² of Gretton et al. (2012, eq. 3), one kernel evaluation at a time."""

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return math.exp(-float(np.sum((a - b) ** 2)) / (2 * sigma**2))

    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m))
    return xx / (n * (n - 1)) + yy / (m * (m - 1)) - 2 * xy / (n * m)


def gaussian(seed: int, n: int, d: int, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)) + shift


def fitted(reference: np.ndarray, **params: object) -> MMD:
    det = MMD(**params)  # type: ignore[arg-type]
    det.fit(reference)
    return det


# --- the statistic ---------------------------------------------------------------------------------


def test_statistic_and_width_equal_a_loop_in_float64() -> None:
    ref, cur = gaussian(0, 14, 3), gaussian(1, 11, 3, shift=0.3)
    result = fitted(ref, dtype="float64", seed=0).test(cur)
    sigma = math.sqrt(loop_median_sq_distance(ref) / 2)
    assert result.details["sigma"] == pytest.approx(sigma, rel=1e-12)
    assert abs(result.statistic - loop_mmd2(ref, cur, sigma)) < 1e-9


def test_float32_statistic_close_to_float64() -> None:
    ref, cur = gaussian(2, 300, 8), gaussian(3, 250, 8, shift=0.05)
    r32 = fitted(ref, seed=5).test(cur)
    r64 = fitted(ref, dtype="float64", seed=5).test(cur)
    assert abs(r32.statistic - r64.statistic) < 1e-7
    assert r32.p_value == r64.p_value


def test_fixed_sigma_is_used() -> None:
    ref, cur = gaussian(4, 10, 2), gaussian(5, 9, 2)
    result = fitted(ref, sigma=0.7, dtype="float64").test(cur)
    assert result.details["sigma"] == 0.7
    assert abs(result.statistic - loop_mmd2(ref, cur, 0.7)) < 1e-9


@settings(max_examples=40, deadline=None)
@given(
    ref=hnp.arrays(np.float64, st.tuples(st.integers(2, 9), st.integers(1, 3)), elements=st.integers(-3, 3)),
    data=st.data(),
)
def test_statistic_equals_loop_on_small_samples(ref: np.ndarray, data: st.DataObject) -> None:
    # Small integers: ties, duplicate rows and constant columns are common (the width's fallbacks).
    cur = data.draw(hnp.arrays(np.float64, (data.draw(st.integers(2, 9)), ref.shape[1]), elements=st.integers(-3, 3)))
    ref, cur = ref / 2, cur / 2
    result = fitted(ref, dtype="float64", n_permutations=5, seed=0).test(cur)
    sigma = math.sqrt(loop_median_sq_distance(ref) / 2)
    assert result.details["sigma"] == pytest.approx(sigma, rel=1e-12)
    assert abs(result.statistic - loop_mmd2(ref, cur, sigma)) < 1e-9


def test_statistic_invariant_to_translation() -> None:
    ref, cur = gaussian(6, 200, 4), gaussian(7, 150, 4, shift=0.2)
    offset = np.array([1e3, -5.0, 0.0, 42.0])
    a = fitted(ref, dtype="float64", seed=1).test(cur)
    b = fitted(ref + offset, dtype="float64", seed=1).test(cur + offset)
    assert abs(a.statistic - b.statistic) < 1e-9
    assert a.p_value == b.p_value


# --- permutations and the p-value ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_batched_permutations_equal_a_loop(dtype: str) -> None:
    ref, cur = gaussian(8, 13, 2), gaussian(9, 10, 2, shift=0.4)
    n, m, permutations, seed = len(ref), len(cur), 30, 11
    det = fitted(ref, dtype=dtype, n_permutations=permutations, seed=seed)
    stats, n_current = det._statistics(cur)
    assert n_current == m
    assert stats.shape == (permutations + 1,)

    pooled = np.vstack([ref, cur])
    sigma = det.sigma
    assert sigma is not None
    groups = _permutation_groups(np.random.default_rng(seed), permutations, n, m)  # fit drew nothing
    expected = [loop_mmd2(ref, cur, sigma)]
    for group in groups:
        rest = np.setdiff1d(np.arange(n + m), group)
        expected.append(loop_mmd2(pooled[group], pooled[rest], sigma))
    tolerance = 1e-9 if dtype == "float64" else 1e-6
    np.testing.assert_allclose(stats, expected, rtol=0, atol=tolerance)

    # The same detector, from the same seed, reaches the p-value the loop gives.
    result = fitted(ref, dtype=dtype, n_permutations=permutations, seed=seed).test(cur)
    k = sum(s >= expected[0] for s in expected[1:])
    assert result.p_value == (k + 1) / (permutations + 1)
    assert result.details["exceedances"] == k


def test_permutation_blocks_give_the_same_statistics(monkeypatch: pytest.MonkeyPatch) -> None:
    ref, cur = gaussian(10, 40, 3), gaussian(11, 30, 3)
    whole, _ = fitted(ref, n_permutations=50, seed=3, dtype="float64")._statistics(cur)
    monkeypatch.setattr(mmd_module, "_PERMUTATION_BLOCK", 7)
    blocked, _ = fitted(ref, n_permutations=50, seed=3, dtype="float64")._statistics(cur)
    np.testing.assert_allclose(blocked, whole, rtol=0, atol=1e-12)


def test_p_value_is_never_zero() -> None:
    ref, cur = gaussian(12, 200, 5), gaussian(13, 200, 5, shift=3.0)
    result = fitted(ref, n_permutations=100, seed=0).test(cur)
    assert result.drifted
    assert result.details["exceedances"] == 0
    assert result.p_value == 1 / 101


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), permutations=st.integers(1, 60), shift=st.floats(0.0, 2.0))
def test_p_value_is_k_plus_one_over_p_plus_one(seed: int, permutations: int, shift: float) -> None:
    det = fitted(gaussian(seed, 30, 2), n_permutations=permutations, seed=seed)
    result = det.test(gaussian(seed + 1, 20, 2, shift))
    k = result.details["exceedances"]
    assert 0 <= k <= permutations
    assert result.p_value == (k + 1) / (permutations + 1)
    assert result.p_value is not None and result.p_value > 0
    assert result.drifted == (result.p_value < 0.05)


def test_identical_constant_samples_never_drift() -> None:
    result = fitted(np.zeros((50, 3)), seed=0).test(np.zeros((40, 3)))
    assert result.statistic == 0.0
    assert result.p_value == 1.0
    assert not result.drifted
    assert result.details["sigma"] == 1.0


def test_constant_reference_against_moved_current_drifts() -> None:
    assert fitted(np.zeros((50, 3)), seed=0).test(np.ones((40, 3))).drifted


# --- error rates -----------------------------------------------------------------------------------


def test_false_positive_rate_near_alpha_on_same_distribution() -> None:
    det = MMD(seed=2024)
    p_values = []
    for trial in range(50):
        det.fit(gaussian(2 * trial, 60, 3))
        p_values.append(det.test(gaussian(2 * trial + 1, 60, 3)).p_value)
    false_positives = sum(p < 0.05 for p in p_values)
    # Binomial(50, 0.05): P(X >= 8) is about 0.003. Permutation p-values are close to uniform under H0.
    assert false_positives <= 7
    assert 0.3 < float(np.mean(p_values)) < 0.7


def test_mean_shift_is_detected() -> None:
    det = MMD(seed=7)
    detected = 0
    for trial in range(10):
        det.fit(gaussian(100 + 2 * trial, 150, 4))
        detected += det.test(gaussian(101 + 2 * trial, 150, 4, shift=0.5)).drifted
    assert detected == 10


def test_shift_in_one_of_many_features_is_detected() -> None:
    ref, cur = gaussian(20, 300, 16), gaussian(21, 300, 16)
    cur[:, 3] += 1.0
    result = fitted(ref, seed=0).test(cur)
    assert result.drifted
    assert result.p_value == 1 / 101


# --- inputs, caps, the result record ---------------------------------------------------------------


def test_subsampling_caps() -> None:
    det = fitted(gaussian(30, 5000, 2), max_reference=300, max_current=150, seed=4)
    assert det.n_reference == 300
    result = det.test(gaussian(31, 1000, 2))
    assert (result.n_reference, result.n_current) == (300, 150)


def test_subsampling_is_seeded() -> None:
    ref, cur = gaussian(32, 3000, 2), gaussian(33, 3000, 2)
    a = fitted(ref, max_reference=200, max_current=200, seed=9).test(cur)
    b = fitted(ref, max_reference=200, max_current=200, seed=9).test(cur)
    c = fitted(ref, max_reference=200, max_current=200, seed=10).test(cur)
    assert (a.statistic, a.p_value) == (b.statistic, b.p_value)
    assert a.statistic != c.statistic


def test_one_dimensional_input_is_one_feature() -> None:
    ref, cur = gaussian(40, 80, 1), gaussian(41, 70, 1, shift=0.3)
    flat = fitted(ref.ravel(), seed=1).test(cur.ravel())
    column = fitted(ref, seed=1).test(cur)
    assert (flat.statistic, flat.p_value) == (column.statistic, column.p_value)
    assert fitted(ref.ravel().tolist(), seed=1).test(cur.ravel().tolist()).statistic == flat.statistic


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_rejected(bad: float) -> None:
    data = gaussian(50, 20, 2)
    data[3, 1] = bad
    with pytest.raises(ValueError, match="mmd: reference contains 1 NaN or infinite"):
        MMD().fit(data)
    det = fitted(gaussian(51, 20, 2))
    with pytest.raises(ValueError, match="mmd: current contains 1 NaN or infinite"):
        det.test(data)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.zeros((2, 2, 2)), "2-D array"),
        (np.zeros((1, 3)), "at least 2 rows"),
        ([], "at least 2 rows"),
        (np.zeros((5, 0)), "no features"),
        ([["a", "b"], ["c", "d"]], "must be numbers"),
    ],
)
def test_malformed_input_is_rejected(values: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MMD().fit(values)


def test_feature_count_must_match_the_reference() -> None:
    with pytest.raises(ValueError, match="3 features, the reference has 2"):
        fitted(gaussian(52, 20, 2)).test(gaussian(53, 20, 3))


def test_test_before_fit_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="fit"):
        MMD().test(gaussian(54, 10, 2))


@pytest.mark.parametrize(
    "params",
    [
        {"threshold": 1.5},
        {"n_permutations": 0},
        {"n_permutations": True},
        {"n_permutations": 10.0},
        {"max_reference": 1},
        {"max_current": 1},
        {"sigma": -1.0},
        {"sigma": float("nan")},
        {"dtype": "float16"},
    ],
)
def test_nonsense_parameters_are_configuration_errors(params: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="mmd"):
        MMD(**params)  # type: ignore[arg-type]


def test_result_record() -> None:
    result = fitted(gaussian(55, 50, 2), seed=0).test(gaussian(56, 40, 2))
    assert isinstance(result, DriftResult)
    assert (result.detector, result.feature, result.threshold) == ("mmd", None, 0.05)
    assert (result.n_reference, result.n_current) == (50, 40)
    assert set(result.details) == {"sigma", "n_permutations", "exceedances"}
    assert result.details["n_permutations"] == 100


def test_threshold_override_per_test() -> None:
    det = fitted(gaussian(57, 60, 2), seed=0)
    result = det.test(gaussian(58, 60, 2), threshold=0.999)
    assert result.threshold == 0.999
    assert result.drifted == (result.p_value is not None and result.p_value < 0.999)


def test_registry_lookup() -> None:
    det = prodwrap.drift.detector("mmd", seed=3, n_permutations=20)
    assert isinstance(det, MMD)
    assert det.n_permutations == 20
    assert isinstance(prodwrap.drift.detector("MMD"), MMD)
    assert "mmd" in prodwrap.drift.available()
    assert isinstance(det, prodwrap.drift.DriftDetector)


@pytest.mark.parametrize("power", [1000, -1000, 1020])
def test_references_near_the_float_limits_give_the_unscaled_answer(power: int) -> None:
    rng = np.random.default_rng(5)
    ref, cur = rng.normal(size=(120, 3)), rng.normal(0.4, 1.0, size=(100, 3))
    plain, scaled = MMD(seed=1), MMD(seed=1)
    plain.fit(ref)
    scaled.fit(np.ldexp(ref, power))
    expected, result = plain.test(cur), scaled.test(np.ldexp(cur, power))
    assert result.statistic == expected.statistic and result.p_value == expected.p_value
    assert result.details["sigma"] == pytest.approx(np.ldexp(expected.details["sigma"], power), rel=1e-12)


def test_a_current_sample_far_beyond_the_reference_is_drifted_not_nan() -> None:
    rng = np.random.default_rng(6)
    det = MMD(seed=0)
    det.fit(rng.normal(size=(100, 2)) * 1e-300)
    result = det.test(np.full((50, 2), 1e308))
    assert np.isfinite(result.statistic) and result.drifted
