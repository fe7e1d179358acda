"""Wasserstein: agreement with scipy, scaling by the reference's spread, constant columns."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import wasserstein_distance

from prodwrap.drift import detector
from prodwrap.drift._wasserstein import Wasserstein, wasserstein_sorted
from prodwrap.errors import ConfigurationError

Sample = Callable[[np.random.Generator], np.ndarray]
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False)


@settings(max_examples=150, deadline=None)
@given(
    reference=st.lists(finite, min_size=1, max_size=60),
    current=st.lists(finite, min_size=1, max_size=60),
)
def test_unscaled_distance_equals_scipy_on_arbitrary_floats(reference: list[float], current: list[float]) -> None:
    det = Wasserstein(scale=False)
    det.fit(reference)
    result = det.test(current)
    assert result.statistic == pytest.approx(wasserstein_distance(reference, current), rel=1e-9, abs=1e-12)
    assert result.details == {"distance": result.statistic, "scale": 1.0}


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_ref=st.integers(1, 5000),
    n_cur=st.integers(1, 5000),
    ties=st.booleans(),
)
def test_scaled_distance_equals_scipy_over_reference_std(seed: int, n_ref: int, n_cur: int, ties: bool) -> None:
    rng = np.random.default_rng(seed)
    if ties:  # heavy ties within and across the samples
        reference = rng.integers(0, 5, size=n_ref).astype(float)
        current = rng.integers(-2, 4, size=n_cur).astype(float)
    else:
        reference, current = rng.normal(size=n_ref), rng.standard_t(3, size=n_cur) + rng.normal()
    det = Wasserstein()
    det.fit(reference)
    result = det.test(current)
    distance = wasserstein_distance(reference, current)
    std = float(np.std(reference)) if np.ptp(reference) > 0 else 1.0
    assert result.details["distance"] == pytest.approx(distance, rel=1e-9, abs=1e-15)
    assert result.statistic == pytest.approx(distance / std, rel=1e-9, abs=1e-15)
    assert result.n_reference == n_ref
    assert result.n_current == n_cur


@pytest.mark.parametrize(
    ("make_ref", "make_cur"),
    [
        (lambda r: r.normal(size=200_000), lambda r: r.normal(0.02, 1.1, size=150_000)),
        (lambda r: r.lognormal(size=200_000), lambda r: r.lognormal(size=200_000)),
        (lambda r: r.integers(0, 50, size=200_000).astype(float), lambda r: r.integers(0, 60, size=120_000) * 1.0),
    ],
)
def test_agrees_with_scipy_on_200k(make_ref: Sample, make_cur: Sample) -> None:
    rng = np.random.default_rng(11)
    reference, current = make_ref(rng), make_cur(rng)
    det = Wasserstein(scale=False)
    det.fit(reference)
    assert det.test(current).statistic == pytest.approx(wasserstein_distance(reference, current), rel=1e-9)


def test_a_shift_moves_the_distance_by_exactly_the_shift() -> None:
    reference = np.random.default_rng(5).normal(10.0, 2.0, size=10_000)
    det = Wasserstein(scale=False)
    det.fit(reference)
    assert det.test(reference + 0.75).statistic == pytest.approx(0.75, rel=1e-9)
    assert det.test(reference).statistic == 0.0

    scaled = Wasserstein()
    scaled.fit(reference)
    assert scaled.divisor == pytest.approx(float(np.std(reference)))
    result = scaled.test(reference + 0.2 * np.std(reference))
    assert result.statistic == pytest.approx(0.2, rel=1e-9)
    assert result.drifted


def test_wasserstein_sorted_handles_ties_across_samples() -> None:
    reference = np.array([0.0, 0.0, 1.0, 1.0])
    current = np.array([0.0, 1.0, 1.0, 1.0, 2.0])
    # F_ref - F_cur is 0.5 - 0.2 = 0.3 on [0, 1) and 1 - 0.8 = 0.2 on [1, 2): W1 = 0.5
    assert wasserstein_sorted(reference, current) == pytest.approx(0.5, rel=1e-15)


@pytest.mark.parametrize("value", [0.1, 1 / 3, 7.0, -2.5])
def test_constant_reference_is_scaled_by_one(value: float) -> None:
    # np.std of a constant column can round to 1e-17 instead of 0 (0.1 does): not a scale
    det = Wasserstein()
    det.fit(np.full(1000, value))
    assert det.divisor == 1.0
    same = det.test(np.full(10, value))
    assert same.statistic == 0.0
    assert not same.drifted
    shifted = det.test(np.full(10, value + 0.5))
    assert shifted.statistic == pytest.approx(0.5, rel=1e-9)
    assert shifted.details["scale"] == 1.0
    assert shifted.drifted


def test_fit_leaves_the_callers_array_alone() -> None:
    reference = np.array([3.0, 1.0, 2.0])
    det = Wasserstein()
    det.fit(reference)
    np.testing.assert_array_equal(reference, [3.0, 1.0, 2.0])
    det.test(reference)
    np.testing.assert_array_equal(reference, [3.0, 1.0, 2.0])


def test_decision_threshold_and_override() -> None:
    det = Wasserstein(threshold=0.5, scale=False)
    det.fit([0.0, 1.0])
    result = det.test([0.5, 1.5])
    assert result.statistic == pytest.approx(0.5)
    assert result.p_value is None
    assert not result.drifted  # strictly above the threshold drifts
    assert det.test([0.5, 1.5], threshold=0.4).drifted
    assert Wasserstein().threshold == 0.1


@pytest.mark.parametrize("threshold", [-0.1, float("nan"), float("inf"), True, "0.1"])
def test_nonsense_threshold_is_rejected(threshold: object) -> None:
    with pytest.raises(ConfigurationError):
        Wasserstein(threshold=threshold)  # type: ignore[arg-type]


def test_inputs_are_checked() -> None:
    det = Wasserstein()
    with pytest.raises(RuntimeError, match="fit"):
        det.test([1.0])
    with pytest.raises(ValueError, match="NaN"):
        det.fit([0.0, float("nan")])
    with pytest.raises(ValueError, match="empty"):
        det.fit(np.array([]))
    with pytest.raises(ValueError, match="one-dimensional"):
        det.fit(np.zeros((2, 2)))
    det.fit([0.0, 1.0])
    with pytest.raises(ValueError, match="NaN"):
        det.test([np.nan])
    with pytest.raises(ValueError, match="numbers"):
        det.test(["x"])


def test_registry_lookup() -> None:
    det = detector("Wasserstein", threshold=0.3, scale=False)
    assert isinstance(det, Wasserstein)
    assert det.threshold == 0.3
    assert det.scale is False
    det.fit([0.0, 1.0])
    assert det.test([0.0, 1.0]).detector == "wasserstein"


@pytest.mark.parametrize("scale", [1e300, -1e300, 1e-300, 2.0**1000])
def test_references_near_the_float_limits_agree_with_scipy_scaled(scale: float) -> None:
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(0.5, 0.1, 400), rng.normal(0.6, 0.1, 300)
    plain = Wasserstein()
    plain.fit(ref)
    expected = plain.test(cur)
    det = Wasserstein()
    det.fit(ref * scale)
    result = det.test(cur * scale)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-9) and result.drifted == expected.drifted
    distance = wasserstein_distance(ref, cur) * abs(scale)
    assert result.details["distance"] == pytest.approx(distance, rel=1e-9)


def test_a_reference_spanning_the_whole_float_range_scores_a_far_sample_as_drifted() -> None:
    ref = np.array([-1.7e308, -1e308, 0.0, 1e308, 1.7e308])
    det = Wasserstein()
    det.fit(ref)
    same = det.test(ref)
    assert same.statistic == 0.0 and not same.drifted
    far = det.test(np.full(5, 1.7e308))
    assert far.drifted and np.isfinite(far.statistic) and far.statistic > 0.5
