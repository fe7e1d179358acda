"""ChiSquare and its incomplete gamma: agreement with scipy, unseen and missing labels."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import gammaincc
from scipy.stats import chi2, chi2_contingency

from prodwrap.drift import detector
from prodwrap.drift._chisquare import MISSING, ChiSquare, chi2_sf, count_labels, regularized_gamma_q
from prodwrap.errors import ConfigurationError

# --- the regularised upper incomplete gamma ------------------------------------------------


def test_gamma_q_matches_scipy_over_a_wide_grid() -> None:
    worst = 0.0
    for a in np.logspace(-3, 5, 81):
        spread = math.sqrt(a)
        xs = np.concatenate((a * np.logspace(-4, 1.5, 40), a + spread * np.linspace(-8, 8, 33)))
        for x in xs[xs >= 0]:
            worst = max(worst, abs(regularized_gamma_q(float(a), float(x)) - float(gammaincc(a, x))))
    assert worst < 1e-10


@settings(max_examples=400, deadline=None)
@given(
    log_a=st.floats(-3.0, 5.0),
    where=st.one_of(st.floats(-8.0, 8.0), st.floats(-20.0, 60.0)),
    relative=st.booleans(),
)
def test_gamma_q_matches_scipy_gammaincc(log_a: float, where: float, relative: bool) -> None:
    a = 10.0**log_a
    # x around the bulk (a +- k sqrt(a)) or as a multiple of a, covering both expansions
    x = a * 10.0 ** (where / 8.0) if relative else max(0.0, a + where * math.sqrt(a))
    expected = float(gammaincc(a, x))
    got = regularized_gamma_q(a, x)
    assert abs(got - expected) < 1e-10
    if expected > 1e-250:  # deep in the upper tail the relative error stays small too
        assert abs(got - expected) <= 1e-9 * expected + 1e-15


def test_gamma_q_closed_forms_and_limits() -> None:
    for x in (1e-8, 0.3, 1.0, 2.0, 5.0, 30.0, 200.0):
        assert regularized_gamma_q(1.0, x) == pytest.approx(math.exp(-x), rel=1e-13)
        assert regularized_gamma_q(0.5, x) == pytest.approx(math.erfc(math.sqrt(x)), rel=1e-12)
    assert regularized_gamma_q(3.0, 0.0) == 1.0
    assert regularized_gamma_q(3.0, math.inf) == 0.0
    assert regularized_gamma_q(2.0, 1e4) == 0.0  # underflows cleanly
    # very large shapes still converge: the median of Gamma(a) is about a - 1/3
    assert regularized_gamma_q(1e8, 1e8) == pytest.approx(float(gammaincc(1e8, 1e8)), abs=1e-10)


@pytest.mark.parametrize(("a", "x"), [(0.0, 1.0), (-1.0, 1.0), (math.nan, 1.0), (math.inf, 1.0), (1.0, -0.1)])
def test_gamma_q_rejects_nonsense(a: float, x: float) -> None:
    with pytest.raises(ValueError):
        regularized_gamma_q(a, x)
    with pytest.raises(ValueError):
        regularized_gamma_q(1.0, math.nan)


def test_chi2_sf_matches_scipy() -> None:
    for dof in (1, 2, 3, 7, 50, 999):
        for statistic in (0.0, 0.01, 1.0, float(dof), 3.0 * dof + 10, 10.0 * dof + 100):
            assert chi2_sf(statistic, dof) == pytest.approx(float(chi2.sf(statistic, dof)), rel=1e-9, abs=1e-15)
    with pytest.raises(ValueError):
        chi2_sf(1.0, 0)


# --- ChiSquare against chi2_contingency ---------------------------------------------------


def scipy_result(reference: Sequence[Hashable], current: Sequence[Hashable]) -> tuple[float, float]:
    """chi2_contingency on the 2 x K table built by hand: reference categories + unseen bucket."""
    ref, cur = Counter(reference), Counter(current)
    columns = [[ref[label], cur.get(label, 0)] for label in ref]
    unseen = sum(count for label, count in cur.items() if label not in ref)
    if unseen:
        columns.append([0, unseen])
    table = np.array(columns).T
    result = chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


LABELS = st.sampled_from(["a", "b", "c", "d", "e", 1, 2, True, (3, "x"), "f", "g"])


@settings(max_examples=150, deadline=None)
@given(
    reference=st.lists(LABELS, min_size=1, max_size=300),
    current=st.lists(LABELS, min_size=1, max_size=300),
)
def test_statistic_and_p_value_equal_chi2_contingency(reference: list[Hashable], current: list[Hashable]) -> None:
    det = ChiSquare()
    det.fit(reference)
    result = det.test(current)
    statistic, p_value = scipy_result(reference, current)
    assert result.statistic == pytest.approx(statistic, rel=1e-9, abs=1e-12)
    assert result.p_value == pytest.approx(p_value, abs=1e-9)
    assert result.n_reference == len(reference)
    assert result.n_current == len(current)
    assert result.drifted == (p_value < 0.05)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_ref=st.integers(1, 20_000), n_cur=st.integers(1, 20_000))
def test_numpy_arrays_agree_with_chi2_contingency(seed: int, n_ref: int, n_cur: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 40))
    reference = rng.integers(0, k, size=n_ref)
    current = rng.integers(0, k + int(rng.integers(0, 5)), size=n_cur)
    det = ChiSquare()
    det.fit(reference)
    result = det.test(current)
    statistic, p_value = scipy_result(reference.tolist(), current.tolist())
    assert result.statistic == pytest.approx(statistic, rel=1e-9, abs=1e-12)
    assert result.p_value == pytest.approx(p_value, abs=1e-9)


@pytest.mark.parametrize("shift", [0.0, 0.002, 0.05])
def test_agrees_with_chi2_contingency_on_200k(shift: float) -> None:
    rng = np.random.default_rng(9)
    shares = np.linspace(1.0, 3.0, 30)
    shares /= shares.sum()
    moved = np.clip(shares + shift * np.sin(np.arange(30)), 1e-6, None)
    reference = rng.choice(30, p=shares, size=200_000)
    current = rng.choice(30, p=moved / moved.sum(), size=180_000)
    labels = np.array([f"cat{i}" for i in range(30)])
    for ref, cur in ((reference, current), (labels[reference], labels[current])):
        det = ChiSquare()
        det.fit(ref)
        result = det.test(cur)
        statistic, p_value = scipy_result(ref.tolist(), cur.tolist())
        assert result.statistic == pytest.approx(statistic, rel=1e-9)
        assert result.p_value == pytest.approx(p_value, abs=1e-9)
        assert result.drifted is (shift >= 0.002)


def test_single_category_gives_statistic_zero_and_p_one_as_scipy() -> None:
    det = ChiSquare()
    det.fit(["x"] * 10)
    result = det.test(["x"] * 3)
    assert (result.statistic, result.p_value, result.drifted) == (0.0, 1.0, False)
    assert result.details["dof"] == 0
    scipy = chi2_contingency(np.array([[10], [3]]), correction=False)
    assert (scipy.statistic, scipy.pvalue) == (0.0, 1.0)


# --- unseen and missing labels -------------------------------------------------------------


def test_unseen_categories_are_pooled_and_listed() -> None:
    det = ChiSquare()
    det.fit(["a"] * 50 + ["b"] * 50)
    current = ["a"] * 40 + ["b"] * 40 + ["n1"] * 9 + ["n2"] * 1 + ["n3"] * 5 + ["n4"] * 2 + ["n5"] * 7 + ["n6"] * 3
    result = det.test(current)
    details = result.details
    assert details["unseen"] == 27
    assert details["categories"] == 2
    assert details["dof"] == 2  # a, b and the one unseen bucket
    assert details["unseen_examples"] == (("n1", 9), ("n5", 7), ("n3", 5), ("n6", 3), ("n4", 2))
    statistic, p_value = scipy_result(["a"] * 50 + ["b"] * 50, current)
    assert result.statistic == pytest.approx(statistic, rel=1e-12)
    assert result.p_value == pytest.approx(p_value, abs=1e-12)
    assert result.drifted


def test_no_unseen_bucket_without_unseen_labels() -> None:
    det = ChiSquare()
    det.fit(["a", "b", "c"] * 10)
    result = det.test(["a", "b"] * 10)  # "c" is absent now but present in the reference: kept
    assert result.details["dof"] == 2
    assert result.details["unseen"] == 0
    assert result.details["unseen_examples"] == ()


def test_none_and_nan_count_as_one_missing_category() -> None:
    reference = ["a"] * 30 + [None] * 5 + [float("nan"), float("nan")] + [np.nan]
    det = ChiSquare()
    det.fit(reference)
    assert det.categories == ["a", MISSING]
    result = det.test(["a"] * 30 + [None] * 4 + [float("nan")] * 4)
    assert result.details["unseen"] == 0
    statistic, p_value = scipy_result(["a"] * 30 + ["m"] * 8, ["a"] * 30 + ["m"] * 8)
    assert result.statistic == pytest.approx(statistic, abs=1e-12)
    assert result.p_value == pytest.approx(p_value, abs=1e-12)

    floats = ChiSquare()
    floats.fit(np.array([1.0, 2.0, np.nan, np.nan]))
    assert floats.categories == [1.0, 2.0, MISSING]

    fresh = ChiSquare()
    fresh.fit(["a"] * 100)
    surge = fresh.test(["a"] * 50 + [None] * 50)
    assert surge.details["unseen_examples"] == ((MISSING, 50),)
    assert surge.drifted


def test_label_kinds_and_containers_agree() -> None:
    rng = np.random.default_rng(3)
    ints = rng.integers(0, 4, size=500)
    cur = rng.integers(0, 5, size=400)
    results = []
    for ref_form, cur_form in (
        (ints, cur),
        (ints.tolist(), cur.tolist()),
        (ints.astype(float), cur.astype(float)),
        (ints.reshape(-1, 1), cur.reshape(-1, 1)),
        (iter(ints.tolist()), (int(v) for v in cur)),
        (np.array([str(v) for v in ints]), np.array([str(v) for v in cur])),
        (np.array([str(v) for v in ints], dtype=object), [str(v) for v in cur]),
    ):
        det = ChiSquare()
        det.fit(ref_form)
        result = det.test(cur_form)
        results.append((result.statistic, result.p_value, result.details["unseen"]))
    assert all(r == pytest.approx(results[0], rel=1e-12) for r in results)

    bools = ChiSquare()
    bools.fit(np.array([True, False, True, True]))
    assert set(bools.categories) == {False, True}
    assert bools.test([True, False]).details["unseen"] == 0


@settings(max_examples=120, deadline=None)
@given(
    data=hnp.arrays(
        dtype=st.sampled_from([np.int8, np.int16, np.int64, np.uint8, np.uint64, np.bool_, np.float64]),
        shape=st.integers(1, 300),
        elements={"allow_nan": False},
    ),
)
def test_count_labels_on_numeric_arrays_equals_counter(data: np.ndarray) -> None:
    # dense codes (bincount), sparse ids and extreme values (np.unique), bools, floats
    assert count_labels(data, detector="chisquare", what="current") == Counter(data.tolist())


@pytest.mark.parametrize(
    "data",
    [
        np.array([-128, 127, 0, 0], dtype=np.int8),
        np.array([2**64 - 1, 2**64 - 3, 2**64 - 1], dtype=np.uint64),
        np.array([-(2**63), -(2**63) + 2], dtype=np.int64),
        np.array([2**63 - 1, 2**63 - 2, 2**63 - 1], dtype=np.int64),
        np.array([10**12, 5, 5]),
    ],
)
def test_count_labels_on_extreme_integers(data: np.ndarray) -> None:
    assert count_labels(data, detector="chisquare", what="current") == Counter(data.tolist())


def test_count_labels_turns_numpy_scalars_into_python_values() -> None:
    counts = count_labels(np.array([3, 1, 3]), detector="chisquare", what="reference")
    assert counts == {1: 1, 3: 2}
    assert all(type(label) is int for label in counts)


# --- decision, configuration, inputs, registry -----------------------------------------


@pytest.mark.parametrize("bad", ["abc", b"abc", [], np.array([]), [[1, 2], [3]], np.zeros((2, 3)), 5, [{"a": 1}]])
def test_bad_labels_are_rejected(bad: object) -> None:
    det = ChiSquare()
    with pytest.raises(ValueError, match="chisquare"):
        det.fit(bad)
    det.fit(["a", "b"])
    with pytest.raises(ValueError, match="chisquare"):
        det.test(bad)


def test_test_before_fit_and_threshold_checks() -> None:
    with pytest.raises(RuntimeError, match="fit"):
        ChiSquare().test(["a"])
    for threshold in (0.0, 1.0, 1.5, -0.1, float("nan"), True):
        with pytest.raises(ConfigurationError):
            ChiSquare(threshold=threshold)
    det = ChiSquare(threshold=0.01)
    det.fit(["a"] * 50 + ["b"] * 50)
    result = det.test(["a"] * 60 + ["b"] * 40)  # p about 0.157
    assert not result.drifted
    assert det.test(["a"] * 60 + ["b"] * 40, threshold=0.2).drifted
    assert ChiSquare().threshold == 0.05
    assert ChiSquare.uses_p_value


def test_registry_lookup() -> None:
    det = detector("ChiSquare", threshold=0.01)
    assert isinstance(det, ChiSquare)
    assert det.threshold == 0.01
    det.fit(["a", "b"])
    assert det.test(["a", "b"]).detector == "chisquare"
