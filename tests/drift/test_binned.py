"""PSI, Jensen-Shannon and Hellinger: hand computations, scipy cross-checks, bins and eps."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon

from prodwrap.drift import BatchDetector, DriftResult, detector
from prodwrap.drift._binned import PSI, Hellinger, JensenShannon, bin_counts
from prodwrap.errors import ConfigurationError

FloatArray = np.ndarray


def independent_shares(
    reference: FloatArray, current: FloatArray, bins: int = 10, eps: float = 1e-4
) -> tuple[FloatArray, FloatArray, int]:
    """Reference and current shares computed the slow, obvious way (searchsorted + bincount)."""
    quantiles = np.quantile(reference, np.linspace(0, 1, bins + 1))
    edges = np.unique(quantiles[1:-1])
    if edges[-1] >= reference.max():
        edges = np.append(edges, np.nextafter(reference.max(), np.inf))
    ref_counts = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=edges.size + 1)
    cur_counts = np.bincount(np.searchsorted(edges, current, side="right"), minlength=edges.size + 1)
    empty = int(np.sum((ref_counts == 0) | (cur_counts == 0)))

    def shares(counts: FloatArray) -> FloatArray:
        raw = counts / counts.sum()
        raw[counts == 0] = eps
        return raw / raw.sum()

    return shares(ref_counts), shares(cur_counts), empty


def sample_pair(seed: int, n_ref: int, n_cur: int, kind: str) -> tuple[FloatArray, FloatArray]:
    """Two samples of a given flavour: continuous, shifted, discrete with ties, or constant."""
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.normal(size=n_ref), rng.normal(size=n_cur)
    if kind == "shifted":
        return rng.normal(size=n_ref), rng.normal(0.7, 1.5, size=n_cur)
    if kind == "discrete":
        return rng.integers(0, 4, size=n_ref).astype(float), rng.integers(-1, 6, size=n_cur).astype(float)
    return np.full(n_ref, 2.5), rng.choice([2.5, 2.0, 3.0], size=n_cur)


KINDS = st.sampled_from(["normal", "shifted", "discrete", "constant"])


# --- hand computations -------------------------------------------------------------------


def test_psi_matches_a_hand_computation() -> None:
    psi = PSI(bins=2)
    psi.fit(np.arange(1.0, 11.0))  # median 5.5: bins (-inf, 5.5) and [5.5, inf), 5 and 5
    result = psi.test(np.arange(1.0, 9.0))  # 5 below, 3 above
    # (5/8 - 1/2) ln(5/4) + (3/8 - 1/2) ln(3/4) = ln(5/3) / 8
    assert result.statistic == pytest.approx(math.log(5 / 3) / 8, rel=1e-12)
    assert result.empty_bins == 0
    assert result.details["bins"] == 2


def test_psi_empty_bin_takes_eps_and_is_counted() -> None:
    psi = PSI(bins=2, eps=1e-3)
    psi.fit(np.arange(1.0, 11.0))
    result = psi.test([1.0, 2.0, 3.0])  # nothing in [5.5, inf)
    q0, q1 = 1 / 1.001, 1e-3 / 1.001
    expected = (q0 - 0.5) * math.log(q0 / 0.5) + (q1 - 0.5) * math.log(q1 / 0.5)
    assert result.statistic == pytest.approx(expected, rel=1e-12)
    assert result.empty_bins == 1
    assert result.drifted


def test_identical_samples_score_zero_for_every_binned_detector() -> None:
    data = np.random.default_rng(1).normal(size=5000)
    for cls in (PSI, JensenShannon, Hellinger):
        det = cls()
        det.fit(data)
        result = det.test(data)
        assert result.statistic == pytest.approx(0.0, abs=1e-12)
        assert not result.drifted
        assert result.empty_bins == 0


# --- cross-checks against scipy and the independent computation -----------------------


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_ref=st.integers(5, 3000),
    n_cur=st.integers(5, 3000),
    bins=st.integers(2, 30),
    kind=KINDS,
)
def test_binned_statistics_agree_with_scipy_and_the_definitions(
    seed: int, n_ref: int, n_cur: int, bins: int, kind: str
) -> None:
    reference, current = sample_pair(seed, n_ref, n_cur, kind)
    p, q, empty = independent_shares(reference, current, bins)
    expected = {
        JensenShannon: float(jensenshannon(p, q, base=2)),
        PSI: float(np.sum((q - p) * np.log(q / p))),
        Hellinger: math.sqrt(max(0.0, 1.0 - float(np.sum(np.sqrt(p * q))))),
    }
    for cls, value in expected.items():
        det = cls(bins=bins)
        det.fit(reference)
        np.testing.assert_allclose(det.reference_proportions, p, rtol=1e-12)
        result = det.test(current)
        tolerance = 1e-9 if cls is not Hellinger else 1e-6  # 1 - BC loses digits near 0
        assert result.statistic == pytest.approx(value, rel=1e-9, abs=tolerance), cls
        assert result.empty_bins == empty
        assert result.n_reference == n_ref
        assert result.n_current == n_cur


@pytest.mark.parametrize("shift", [0.0, 0.05, 0.5])
def test_jensenshannon_matches_scipy_on_200k(shift: float) -> None:
    rng = np.random.default_rng(7)
    reference, current = rng.lognormal(size=200_000), rng.lognormal(shift, 1.0, size=150_000)
    js = JensenShannon(bins=20)
    js.fit(reference)
    p, q, _ = independent_shares(reference, current, bins=20)
    assert js.test(current).statistic == pytest.approx(float(jensenshannon(p, q, base=2)), rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=400),
    edges=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=300, unique=True),
)
def test_bin_counts_match_searchsorted_on_both_paths(values: list[float], edges: list[float]) -> None:
    sorted_edges = np.unique(np.asarray(edges))
    data = np.asarray(values)
    expected = np.bincount(np.searchsorted(sorted_edges, data, side="right"), minlength=sorted_edges.size + 1)
    np.testing.assert_array_equal(bin_counts(sorted_edges, data), expected)


def test_bin_counts_uses_the_search_path_for_many_edges() -> None:
    data = np.random.default_rng(3).normal(size=10_000)
    edges = np.linspace(-3, 3, 1000)  # above the comparison cut-off
    expected = np.bincount(np.searchsorted(edges, data, side="right"), minlength=1001)
    np.testing.assert_array_equal(bin_counts(edges, data), expected)


# --- bins: quantiles, ties, open outer bins, constant columns ------------------------------


def test_edges_are_the_reference_inner_quantiles() -> None:
    reference = np.random.default_rng(2).normal(size=10_000)
    psi = PSI(bins=10)
    psi.fit(reference)
    np.testing.assert_array_equal(psi.edges, np.quantile(reference, np.linspace(0, 1, 11))[1:-1])
    np.testing.assert_allclose(psi.reference_proportions, np.full(10, 0.1), atol=1e-4)


def test_values_outside_the_reference_range_land_in_the_open_outer_bins() -> None:
    reference = np.linspace(0.0, 1.0, 1001)
    edges = PSI(bins=10)
    edges.fit(reference)
    counts = bin_counts(edges.edges, np.array([-100.0, -1.0, 0.5, 2.0, 1e9]))
    assert counts[0] == 2
    assert counts[-1] == 2
    assert counts.sum() == 5

    psi = PSI(bins=10)
    psi.fit(reference)
    result = psi.test(np.full(50, 7.0))  # all above the reference's maximum: top bin only
    assert result.empty_bins == 9
    p, q, _ = independent_shares(reference, np.full(50, 7.0))
    assert q[-1] == pytest.approx(1 / (1 + 9e-4))
    assert result.statistic == pytest.approx(float(np.sum((q - p) * np.log(q / p))), rel=1e-12)
    assert result.drifted


def test_constant_reference_sees_shifts_both_ways() -> None:
    psi = PSI()
    psi.fit(np.full(200, 3.0))
    assert psi.edges.size == 2  # [3.0, next float above 3.0): below / equal / above
    same = psi.test(np.full(100, 3.0))
    assert same.statistic == pytest.approx(0.0, abs=1e-12)
    assert same.empty_bins == 2  # the below and above bins are empty in both
    assert not same.drifted
    assert psi.test(np.full(100, 3.5)).drifted
    assert psi.test(np.full(100, 2.5)).drifted


def test_ties_merge_bins_and_a_discrete_column_is_stable_against_itself() -> None:
    rng = np.random.default_rng(4)
    reference = rng.choice([0.0, 1.0, 2.0], p=[0.6, 0.3, 0.1], size=5000)
    for cls in (PSI, JensenShannon, Hellinger):
        det = cls(bins=10)
        det.fit(reference)
        # unique quantile edges [0, 1, 2] plus the top edge above the point mass at 2
        assert det.edges.size == 4
        stable = det.test(rng.choice([0.0, 1.0, 2.0], p=[0.6, 0.3, 0.1], size=5000))
        assert not stable.drifted
        assert stable.empty_bins == 2  # below 0 and above 2
        assert det.test(rng.choice([0.0, 1.0, 2.0], p=[0.1, 0.3, 0.6], size=5000)).drifted


def test_distances_stay_below_one_at_the_most_extreme_shift() -> None:
    # Everything in the open top bin, which holds a tenth of the reference: as far apart as
    # quantile bins allow (the outer bins always share the reference's tails).
    reference = np.linspace(0.0, 1.0, 1000)
    p = np.full(10, 0.1)
    q = np.append(np.full(9, 1e-4), 1.0) / (1 + 9e-4)
    expected = {JensenShannon: float(jensenshannon(p, q, base=2)), Hellinger: math.sqrt(1 - np.sum(np.sqrt(p * q)))}
    for cls, value in expected.items():
        det = cls()
        det.fit(reference)
        result = det.test(np.full(1000, 50.0))
        assert result.statistic == pytest.approx(value, rel=1e-9)
        assert 0.8 < result.statistic < 1.0


# --- decision, configuration, inputs, registry -----------------------------------------


def test_decision_is_statistic_strictly_above_threshold() -> None:
    psi = PSI()
    psi.fit(np.arange(1.0, 101.0))
    result = psi.test(np.arange(30.0, 101.0))
    assert result.p_value is None
    assert isinstance(result, DriftResult)
    assert psi.test(np.arange(30.0, 101.0), threshold=result.statistic).drifted is False
    assert psi.test(np.arange(30.0, 101.0), threshold=result.statistic * 0.999).drifted is True
    assert not PSI.uses_p_value
    assert isinstance(psi, BatchDetector)


@pytest.mark.parametrize(("cls", "default"), [(PSI, 0.2), (JensenShannon, 0.1), (Hellinger, 0.1)])
def test_default_thresholds(cls: type[BatchDetector], default: float) -> None:
    assert cls().threshold == default


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": -0.1},
        {"threshold": float("nan")},
        {"threshold": "0.2"},
        {"bins": 1},
        {"bins": True},
        {"bins": 2.5},
        {"eps": 0.0},
        {"eps": 1.0},
        {"eps": -1e-4},
        {"eps": float("nan")},
    ],
)
@pytest.mark.parametrize("cls", [PSI, JensenShannon, Hellinger])
def test_nonsense_configuration_is_rejected(cls: type[PSI], kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        cls(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", [PSI, JensenShannon, Hellinger])
def test_inputs_are_checked(cls: type[PSI]) -> None:
    det = cls()
    with pytest.raises(RuntimeError, match="fit"):
        det.test([1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        det.fit([1.0, float("nan"), 2.0])
    with pytest.raises(ValueError, match="empty"):
        det.fit([])
    with pytest.raises(ValueError, match="one-dimensional"):
        det.fit(np.ones((3, 3)))
    det.fit(np.arange(20.0).reshape(-1, 1))  # a single column is fine
    with pytest.raises(ValueError, match="infinite"):
        det.test([1.0, float("inf")])
    with pytest.raises(ValueError, match="numbers"):
        det.test(["a", "b"])


def test_refit_replaces_the_reference() -> None:
    psi = PSI()
    psi.fit(np.arange(100.0))
    psi.fit(np.arange(1000.0, 1100.0))
    result = psi.test(np.arange(1000.0, 1100.0))
    assert result.statistic == pytest.approx(0.0, abs=1e-12)
    assert result.n_reference == 100


@pytest.mark.parametrize(
    ("name", "cls"),
    [("psi", PSI), ("PSI", PSI), ("jensenshannon", JensenShannon), ("js", JensenShannon), ("hellinger", Hellinger)],
)
def test_registry_lookup(name: str, cls: type[PSI]) -> None:
    det = detector(name, threshold=0.3, bins=5)
    assert type(det) is cls
    assert det.threshold == 0.3
    assert det.bins == 5
    det.fit(np.arange(50.0))
    assert det.test(np.arange(50.0)).detector == cls.name
