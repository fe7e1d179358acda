"""KSWIN and the equal-size KS p-value: identical to river's and scipy's, false alarms, delay."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from prodwrap.drift._base import StreamDetector, detector
from prodwrap.drift._kswin import KSWIN, _ks_count, ks_equal_pvalue
from prodwrap.errors import ConfigurationError
from tests.drift.support import flagged_at, river_drift


def _step(seed: int, shift: float, before: int, after: int, scale: float = 1.0) -> tuple[list[float], int]:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(0, 1, before), rng.normal(shift, scale, after)]).tolist(), before


def _streams() -> dict[str, list[float]]:
    rng = np.random.default_rng(7)
    return {
        "step": np.concatenate([rng.normal(0, 1, 1000), rng.normal(1, 1, 1500)]).tolist(),
        "variance": np.concatenate([rng.normal(0, 1, 1000), rng.normal(0, 4, 1500)]).tolist(),
        "gradual": (rng.normal(0, 1, 2500) + np.linspace(0, 4, 2500)).tolist(),
        "integers": (rng.integers(0, 5, 2500) + np.repeat([0, 2], 1250)).astype(float).tolist(),
    }


STREAMS = _streams()


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("step", {"seed": 1}),
        ("variance", {"seed": 2, "alpha": 0.01}),
        ("gradual", {"seed": 3, "window_size": 60, "stat_size": 20}),
    ],
)
def test_kswin_with_a_seed_matches_river_exactly(name: str, params: dict[str, Any]) -> None:
    # Both draw the older sample with random.Random(seed).sample(...), so the draws coincide.
    river = river_drift()
    values = STREAMS[name]
    ours, theirs = KSWIN(**params), river.KSWIN(**params)
    for i, x in enumerate(values):
        flagged = ours.update(x)
        theirs.update(x)
        assert flagged == theirs.drift_detected, i
        if ours.n >= ours.window_size:
            assert ours.p_value == pytest.approx(theirs.p_value, abs=1e-12)
    assert flagged_at(KSWIN(**params), values)


def test_kswin_needs_a_statistic_strictly_above_one_tenth() -> None:
    # 1000 old zeros against 900 zeros and 100 ones: D is exactly 0.1 with a p-value near
    # 1e-5, yet (as in river) no change, since the rule is D > 0.1; 101 ones is a change.
    river = river_drift()
    for ones, expected in ((100, False), (101, True)):
        values = [0.0] * 1000 + [0.0] * (1000 - ones) + [1.0] * ones
        ours, theirs = (
            KSWIN(window_size=2000, stat_size=1000, seed=0),
            river.KSWIN(window_size=2000, stat_size=1000, seed=0),
        )
        for x in values:  # the window fills at the last value: one test each
            ours.update(x)
            theirs.update(x)
        assert ours.statistic == pytest.approx(ones / 1000)
        assert ours.p_value < 0.005
        assert ours.drift_detected is expected is theirs.drift_detected


def test_kswin_false_alarm_rate_on_a_stationary_stream() -> None:
    # Measured: 124 to 152 alarms per 100 000 N(0, 1) values (10 seeds); each update tests
    # at alpha = 0.005 on overlapping windows.
    values = np.random.default_rng(0).normal(size=20_000).tolist()
    assert 10 <= len(flagged_at(KSWIN(seed=1), values)) <= 40


@pytest.mark.parametrize("shift", [1.0, -1.0, 2.0])
def test_kswin_detection_delay(shift: float) -> None:
    detected = 0
    for seed in range(10):
        values, change = _step(300 + seed, shift, 2000, 500)
        alarms = flagged_at(KSWIN(seed=seed), values)
        if any(change - 100 <= a < change for a in alarms):
            continue  # an alarm just before the change restarts the window: it may be missed
        assert change <= next(a for a in alarms if a >= change) <= change + 45, (seed, alarms)
        detected += 1
    assert detected >= 8


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 80), levels=st.integers(1, 1000), shift=st.integers(0, 3), seed=st.integers(0, 2**32 - 1))
def test_ks_p_value_equals_scipy(n: int, levels: int, shift: int, seed: int) -> None:
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(seed)
    a = rng.integers(0, levels, n).astype(float)
    b = (rng.integers(0, levels, n) + shift).astype(float)
    with warnings.catch_warnings(record=True) as caught:  # scipy warns when it falls back
        warnings.simplefilter("always", RuntimeWarning)
        expected = ks_2samp(a, b)
    h = _ks_count(sorted(a.tolist()), sorted(b.tolist()))
    assert h / n == expected.statistic
    # Where scipy's exact computation gave up, it returned its asymptotic approximation: ours
    # stays exact, so there is nothing to compare the p-value with.
    assume(not any(issubclass(w.category, RuntimeWarning) for w in caught))
    assert ks_equal_pvalue(n, h) == pytest.approx(expected.pvalue, abs=1e-10)


def test_ks_p_value_falls_back_like_scipy_when_the_exact_sum_leaves_zero_one() -> None:
    from scipy.stats import ks_2samp

    a = np.arange(30, dtype=float)
    with pytest.warns(RuntimeWarning, match="Exact calculation unsuccessful"):
        expected = ks_2samp(a, a + 0.5)  # D = 1/30: the exact sum gives 1.0000000000000004
    assert ks_equal_pvalue(30, 1) == pytest.approx(expected.pvalue, abs=1e-10)


def test_ks_p_value_large_samples_use_the_asymptotic_form() -> None:
    from scipy.stats import ks_2samp

    a = np.arange(12_000, dtype=float)
    expected = ks_2samp(a, a + 300.0)
    assert expected.statistic == pytest.approx(300 / 12_000, abs=1e-12)
    assert ks_equal_pvalue(12_000, 300) == pytest.approx(expected.pvalue, abs=1e-9)


def test_kswin_restarts_after_an_alarm_and_resets() -> None:
    values, _ = _step(42, 4.0, 300, 300)
    kswin = KSWIN(seed=5)
    alarms = flagged_at(kswin, values)
    assert alarms
    assert alarms[0] >= 300
    kswin = KSWIN(seed=5)
    for x in values[: alarms[0] + 1]:
        kswin.update(x)
    assert kswin.drift_detected
    assert kswin.p_value <= 0.005
    assert kswin.statistic > 0.1
    kswin.update(1.0)
    assert (kswin.n, kswin.drift_detected) == (1, False)
    kswin.reset()
    assert (kswin.n, kswin.p_value, kswin.statistic) == (0, 1.0, 0.0)
    assert flagged_at(kswin, values) == alarms


@pytest.mark.parametrize("bad", [math.nan, -math.inf, "1.0", None, [1.0], 1j])
def test_non_finite_and_non_numbers_are_rejected(bad: Any) -> None:
    kswin = KSWIN()
    kswin.update(1.0)
    with pytest.raises(ValueError, match="KSWIN: "):
        kswin.update(bad)
    assert kswin.n == 1


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"alpha": 0}, "alpha"),
        ({"alpha": 1}, "alpha"),
        ({"alpha": math.nan}, "alpha"),
        ({"stat_size": 0}, "stat_size"),
        ({"stat_size": 100}, "stat_size"),
        ({"window_size": 50, "stat_size": 30}, "window_size"),
        ({"seed": "x"}, "seed"),
        ({"seed": True}, "seed"),
    ],
)
def test_nonsense_parameters_are_configuration_errors(params: dict[str, Any], name: str) -> None:
    with pytest.raises(ConfigurationError, match=f"KSWIN: .*{name}"):
        KSWIN(**params)


def test_registered_by_name() -> None:
    kswin = detector("KSWIN", seed=3, alpha=0.001)
    assert type(kswin) is KSWIN
    assert isinstance(kswin, StreamDetector)
    assert (kswin.seed, kswin.alpha, kswin.window_size, kswin.stat_size) == (3, 0.001, 100, 30)
    assert repr(kswin) == "KSWIN(alpha=0.001, window_size=100, stat_size=30, seed=3)"
