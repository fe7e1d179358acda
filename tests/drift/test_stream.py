"""PageHinkley and DDM: identical to river's on the same streams, false alarms, delays, validation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prodwrap.drift._base import StreamDetector, available, detector
from prodwrap.drift._stream import DDM, PageHinkley
from prodwrap.errors import ConfigurationError
from tests.drift.support import flagged_at, river_drift


def _normal_streams() -> dict[str, list[float]]:
    rng = np.random.default_rng(7)
    return {
        "step": np.concatenate([rng.normal(0, 1, 3000), rng.normal(1, 1, 3000), rng.normal(-1, 1, 3000)]).tolist(),
        "gradual": (rng.normal(0, 1, 10000) + np.linspace(0, 4, 10000)).tolist(),
        "variance": np.concatenate([rng.normal(0, 1, 4000), rng.normal(0, 4, 4000)]).tolist(),
        "offset": (rng.normal(1e6, 1, 8000) + np.repeat([0.0, 3.0], 4000)).tolist(),
        "integers": (rng.integers(0, 5, 8000) + np.repeat([0, 2], 4000)).tolist(),
    }


NORMAL = _normal_streams()


def _step(seed: int, shift: float, before: int, after: int, scale: float = 1.0) -> tuple[list[float], int]:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(0, 1, before), rng.normal(shift, scale, after)]).tolist(), before


# --- PageHinkley ---------------------------------------------------------------------------

PH_PARAMS = [
    {},
    {"threshold": 200.0},
    {"mode": "up", "threshold": 20.0},
    {"mode": "down", "threshold": 20.0, "delta": 0.1},
    {"alpha": 1.0, "min_instances": 1, "threshold": 30.0},
]


@pytest.mark.parametrize("params", PH_PARAMS, ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()) or "defaults")
@pytest.mark.parametrize("name", sorted(NORMAL))
def test_page_hinkley_matches_river(name: str, params: dict[str, Any]) -> None:
    river = river_drift()
    ours, theirs = PageHinkley(**params), river.PageHinkley(**params)
    for i, x in enumerate(NORMAL[name]):
        flagged = ours.update(x)
        theirs.update(x)
        assert flagged == theirs.drift_detected, i
        assert (ours.sum_increase, ours.sum_decrease, ours.mean) == (
            theirs._sum_increase,
            theirs._sum_decrease,
            theirs._x_mean.get(),
        )
        assert (ours.increase_statistic, ours.decrease_statistic) == (
            theirs._sum_increase - theirs._min_increase,
            theirs._max_decrease - theirs._sum_decrease,
        )
    if name == "step":  # up, then down: every mode alarms here, so the comparison has teeth
        assert flagged_at(PageHinkley(**params), NORMAL[name])


@settings(max_examples=40, deadline=None)
@given(
    levels=st.lists(st.floats(-20, 20), min_size=1, max_size=4),
    length=st.integers(20, 400),
    seed=st.integers(0, 2**32 - 1),
    min_instances=st.integers(1, 60),
    delta=st.floats(0.0, 1.0),
    threshold=st.floats(0.5, 100.0),
    alpha=st.floats(0.9, 1.0),
    mode=st.sampled_from(["up", "down", "both"]),
)
def test_page_hinkley_random_streams_and_parameters_match_river(
    levels: list[float],
    length: int,
    seed: int,
    min_instances: int,
    delta: float,
    threshold: float,
    alpha: float,
    mode: str,
) -> None:
    river = river_drift()
    rng = np.random.default_rng(seed)
    values = np.concatenate([level + rng.standard_normal(length) for level in levels]).tolist()
    params = {"min_instances": min_instances, "delta": delta, "threshold": threshold, "alpha": alpha, "mode": mode}
    assert flagged_at(PageHinkley(**params), values) == flagged_at(river.PageHinkley(**params), values)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_page_hinkley_false_alarms_on_a_stationary_stream(seed: int) -> None:
    # The threshold is in the stream's units. Measured on N(0, 1), 100 000 values: river's
    # default 50 raises 45 to 70 alarms; 200 raises 1 to 4 (50 seeds; module docstring).
    values = np.random.default_rng(seed).normal(size=100_000).tolist()
    assert 1 <= len(flagged_at(PageHinkley(threshold=200.0), values)) <= 4
    assert len(flagged_at(PageHinkley(), values)) >= 40


@pytest.mark.parametrize(("shift", "bound"), [(1.0, 225), (-1.0, 225), (0.5, 500)])
def test_page_hinkley_detection_delay(shift: float, bound: int) -> None:
    for seed in range(5):
        values, change = _step(100 + seed, shift, 5000, 3000)
        alarms = flagged_at(PageHinkley(threshold=200.0), values)
        assert alarms, seed
        assert change <= alarms[0] <= change + bound, (seed, alarms[0])


def test_page_hinkley_modes_watch_one_direction() -> None:
    values, change = _step(5, -3.0, 2000, 2000)
    assert flagged_at(PageHinkley(mode="up", threshold=200.0), values) == []
    down = flagged_at(PageHinkley(mode="down", threshold=200.0), values)
    assert down
    assert change <= down[0] < change + 100


def test_page_hinkley_restarts_after_an_alarm_and_resets() -> None:
    values, _ = _step(9, 3.0, 1000, 1000)
    ph = PageHinkley()
    alarms = flagged_at(ph, values)
    assert alarms
    ph = PageHinkley()
    for x in values[: alarms[0] + 1]:
        ph.update(x)
    assert ph.drift_detected
    assert ph.increase_statistic > 50.0
    ph.update(0.25)
    assert (ph.n, ph.mean, ph.drift_detected) == (1, 0.25, False)
    ph.reset()
    assert (ph.n, ph.mean, ph.sum_increase, ph.sum_decrease, ph.increase_statistic) == (0, 0.0, 0.0, 0.0, 0.0)
    assert flagged_at(ph, values) == alarms


# --- DDM -----------------------------------------------------------------------------------


def _errors(seed: int, rates: list[tuple[float, int]]) -> list[int]:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.random(n) < p for p, n in rates]).astype(int).tolist()


DDM_STREAMS = {
    "jump": _errors(1, [(0.1, 3000), (0.3, 3000), (0.1, 3000)]),
    "small": _errors(2, [(0.05, 3000), (0.08, 3000)]),
    "from-zero": _errors(3, [(0.0, 3000), (0.2, 3000)]),
    "high": _errors(4, [(0.4, 3000), (0.7, 3000)]),
}


@pytest.mark.parametrize("params", [{}, {"warm_start": 5, "warning_threshold": 1.5, "drift_threshold": 2.5}])
@pytest.mark.parametrize("name", sorted(DDM_STREAMS))
def test_ddm_matches_river_with_warnings(name: str, params: dict[str, Any]) -> None:
    river = river_drift()
    ours, theirs = DDM(**params), river.binary.DDM(**params)
    warned = 0
    for i, x in enumerate(DDM_STREAMS[name]):
        flagged = ours.update(x)
        theirs.update(x)
        assert (flagged, ours.warning_detected) == (theirs.drift_detected, theirs.warning_detected), i
        assert ours.error_rate == theirs._p.get()
        warned += ours.warning_detected
    assert warned
    assert flagged_at(DDM(**params), DDM_STREAMS[name])


@settings(max_examples=40, deadline=None)
@given(
    rates=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=4),
    length=st.integers(10, 600),
    seed=st.integers(0, 2**32 - 1),
    warm_start=st.integers(0, 60),
    warning_threshold=st.floats(0.5, 3.0),
    extra=st.floats(0.0, 2.0),
)
def test_ddm_random_streams_and_parameters_match_river(
    rates: list[float], length: int, seed: int, warm_start: int, warning_threshold: float, extra: float
) -> None:
    river = river_drift()
    values = _errors(seed, [(rate, length) for rate in rates])
    params = {
        "warm_start": warm_start,
        "warning_threshold": warning_threshold,
        "drift_threshold": warning_threshold + extra,
    }
    ours, theirs = DDM(**params), river.binary.DDM(**params)
    for x in values:
        flagged = ours.update(x)
        theirs.update(x)
        assert (flagged, ours.warning_detected) == (theirs.drift_detected, theirs.warning_detected)


def test_ddm_false_alarms_and_delay() -> None:
    # Measured (10 seeds): 0 to 3 alarms per 100 000 outcomes at a 0.1 error rate, all in the
    # first 20 000; a jump from 0.1 to 0.3 detected 96 to 400 updates later.
    assert len(flagged_at(DDM(), _errors(0, [(0.1, 100_000)]))) <= 3
    assert flagged_at(DDM(), _errors(1, [(0.3, 50_000)])) == []
    for seed in (200, 201, 203, 204):  # seeds without an alarm before the change
        alarms = flagged_at(DDM(), _errors(seed, [(0.1, 2000), (0.3, 3000)]))
        assert [a for a in alarms if a < 2000] == []
        assert 2000 <= alarms[0] <= 2400, (seed, alarms)


def test_ddm_warns_before_italarms() -> None:
    ddm = DDM()
    first_warning = None
    for i, x in enumerate(_errors(11, [(0.1, 2000), (0.4, 2000)])):
        if ddm.warning_detected and first_warning is None:
            first_warning = i
        if ddm.update(x):
            break
    assert first_warning is not None
    assert first_warning < i
    assert ddm.drift_detected
    assert not ddm.warning_detected  # a detection clears the warning, as in river
    assert ddm.error_rate + ddm.error_std > ddm.min_error_rate + 3.0 * ddm.min_error_std
    ddm.update(0)
    assert (ddm.n, ddm.error_rate, ddm.drift_detected) == (1, 0.0, False)
    ddm.reset()
    assert (ddm.n, ddm.error_rate, ddm.error_std, ddm.warning_detected) == (0, 0.0, 0.0, False)


@pytest.mark.parametrize("value", [True, False, 1, 0, 1.0, 0.0, np.int64(1), np.bool_(False)])
def test_ddm_accepts_zero_one_and_booleans(value: Any) -> None:
    ddm = DDM()
    ddm.update(value)
    assert ddm.error_rate == float(bool(value))


@pytest.mark.parametrize("value", [2, -1, 0.5, math.nan, math.inf, "1", None])
def test_ddm_rejects_anything_but_zero_or_one(value: Any) -> None:
    ddm = DDM()
    with pytest.raises(ValueError, match="DDM: update\\(\\) takes 0 or 1"):
        ddm.update(value)
    assert ddm.n == 0


# --- shared: validation, registry ----------------------------------------------------------


@pytest.mark.parametrize("cls", [PageHinkley])
@pytest.mark.parametrize("bad", [math.nan, -math.inf, "1.0", None, [1.0], 1j])
def test_numeric_detectors_reject_non_finite_and_non_numbers(cls: Any, bad: Any) -> None:
    det = cls()
    det.update(1.0)
    with pytest.raises(ValueError, match=f"{cls.__name__}: "):
        det.update(bad)
    assert det.n == 1


@pytest.mark.parametrize(
    ("cls", "params", "name"),
    [
        (PageHinkley, {"min_instances": 0}, "min_instances"),
        (PageHinkley, {"delta": -0.1}, "delta"),
        (PageHinkley, {"threshold": 0}, "threshold"),
        (PageHinkley, {"threshold": math.inf}, "threshold"),
        (PageHinkley, {"alpha": 0}, "alpha"),
        (PageHinkley, {"alpha": 1.5}, "alpha"),
        (PageHinkley, {"mode": "sideways"}, "mode"),
        (DDM, {"warm_start": -1}, "warm_start"),
        (DDM, {"warning_threshold": 0}, "warning_threshold"),
        (DDM, {"warning_threshold": 3.0, "drift_threshold": 2.0}, "drift_threshold"),
        (DDM, {"drift_threshold": "3"}, "drift_threshold"),
    ],
)
def test_nonsense_parameters_are_configuration_errors(cls: Any, params: dict[str, Any], name: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{cls.__name__}: .*{name}"):
        cls(**params)


@pytest.mark.parametrize(
    ("name", "cls", "params"),
    [
        ("pagehinkley", PageHinkley, {"threshold": 200.0}),
        ("PageHinkley", PageHinkley, {}),
        ("ddm", DDM, {"warm_start": 10}),
    ],
)
def test_registered_by_name(name: str, cls: Any, params: dict[str, Any]) -> None:
    assert name.lower() in available()
    det = detector(name, **params)
    assert type(det) is cls
    assert isinstance(det, StreamDetector)
    for key, value in params.items():
        assert getattr(det, key) == value
    assert repr(det).startswith(f"{cls.__name__}(")
