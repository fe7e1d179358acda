"""What users see of a monitor: missing values counted, field names, log lines."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel

import prodwrap as pw
from prodwrap.drift._log import Throttle
from tests.drift.support import Shift, raising

REF = np.random.default_rng(0).normal(size=(200, 3))


class Row(BaseModel):
    age: float
    income: float
    debt: float | None = None


def test_nan_and_none_in_live_inputs_are_counted_and_shown() -> None:
    monitor = pw.DriftMonitor(REF, features={0: Shift(), 1: Shift(), 2: Shift()}, window=10, background=False)
    for i in range(10):
        monitor.observe([float("nan") if i < 3 else 0.0, 0.0, None if i < 4 else 0.0], None)
    report = monitor.report()
    assert (report[0].n_missing, report[0].n_current) == (3, 7)
    assert (report[1].n_missing, report[1].n_current) == (0, 10)
    assert (report[2].n_missing, report[2].n_current) == (4, 6)
    assert monitor.stats().missing == {0: 3, 2: 4}


def test_nan_in_pydantic_and_dict_inputs_read_at_once_are_counted() -> None:
    monitor = pw.DriftMonitor(
        [{"age": 1.0, "income": 2.0}] * 20, features={"age": Shift(), "income": Shift()}, window=4, background=False
    )
    for value in (Row(age=float("nan"), income=1.0), Row(age=1.0, income=1.0)) * 2:
        monitor.observe(value, None)
    assert monitor.stats().missing == {"age": 2}
    for value in ({"age": 1.0, "income": float("nan")}, {"age": 1.0, "income": 2.0}) * 2:
        monitor.observe(value, None)
    assert monitor.stats().missing == {"income": 2} and monitor.report()["income"].n_missing == 2


def test_a_feature_left_with_no_value_is_shown_as_missing() -> None:
    monitor = pw.DriftMonitor(REF, features={0: Shift(), 1: Shift()}, window=5, background=False)
    for _ in range(5):
        monitor.observe([float("nan"), 0.0], None)
    assert set(monitor.report()) == {1} and monitor.stats().missing == {0: 5}


def test_name_features_names_an_array_reference_after_the_fields() -> None:
    alerts: list[Any] = []
    monitor = pw.DriftMonitor(REF, window=10, background=False, on_drift=alerts.append)
    monitor.name_features(["age", "income", "debt"])
    monitor.name_features(["age", "income", "debt"])  # idempotent
    monitor.name_features(["a", "b", "c"])  # already named: kept
    assert list(monitor.detectors) == ["age", "income", "debt"]
    for age, income, debt in REF[:10]:
        monitor.observe(Row(age=age, income=income + 5.0, debt=debt), None)
    assert set(monitor.report()) == {"age", "income", "debt"}
    assert [a.feature for a in alerts] == ["income"]
    assert set(monitor.stats().latest) == {"age", "income", "debt"} and monitor.describe()["features"]["income"] == "KS"
    for age, income, debt in REF[10:20]:  # list inputs are read by position
        monitor.observe([age, income, debt + 9.0], None)
    assert monitor.report()["debt"].drifted and not monitor.report()["income"].drifted


def test_name_features_renames_the_alerts_already_kept() -> None:
    monitor = pw.DriftMonitor(REF, features={0: Shift(), 1: Shift(), 2: Shift()}, window=10, background=False)
    for age, income, debt in REF[:10]:
        monitor.observe([age, income + 5.0, debt], None)
    assert [a.feature for a in monitor.alerts] == [1]
    monitor.name_features(["age", "income", "debt"])
    assert (
        [a.feature for a in monitor.alerts]
        == ["income"]
        == [r.feature for r in monitor.stats().latest.values() if r.drifted]
    )
    assert monitor.alerts.maxlen == 100
    for age, income, debt in REF[:10]:  # the same window again: new alerts come under the name too
        monitor.observe([age, income + 5.0, debt], None)
    assert [a.feature for a in monitor.alerts] == ["income", "income"]


def test_name_features_does_nothing_when_the_widths_or_kinds_differ() -> None:
    narrow = pw.DriftMonitor(REF, features={0: Shift()})
    narrow.name_features(["age", "income"])
    assert list(narrow.detectors) == [0]
    keyed = pw.DriftMonitor([{"x": 1.0, "y": 2.0}] * 10, features={"x": Shift(), "y": Shift()})
    keyed.name_features(["a", "b"])
    assert list(keyed.detectors) == ["x", "y"]


def test_name_features_renames_chosen_features_and_keeps_the_fingerprint_consistent(tmp_path: Any) -> None:
    monitor = pw.DriftMonitor(REF, features={1: "ks"})
    before = monitor.fingerprint
    monitor.name_features(["age", "income", "debt"])
    assert list(monitor.detectors) == ["income"] and monitor.fingerprint != before
    monitor.save(tmp_path / "ref.npz")
    assert pw.DriftMonitor.load(tmp_path / "ref.npz").fingerprint == monitor.fingerprint


class Income(BaseModel):
    income: float  # pydantic's default: NaN and inf accepted


@pytest.mark.parametrize("odd", [float("inf"), -float("inf"), float("nan")])
def test_one_non_finite_live_value_does_not_stop_the_check(odd: float, caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(0)
    reference = [Income(income=v) for v in rng.normal(50_000, 5_000, 2000)]
    monitor = pw.DriftMonitor(reference, window=500, background=False)
    model = pw.ProductionModel(lambda a: a.income / 1e5, input=Income, drift=monitor)
    with caplog.at_level(logging.WARNING, logger="prodwrap"):
        for i, v in enumerate(rng.normal(80_000, 5_000, 500)):  # a large shift
            model({"income": odd if i == 250 else v})
    stats = monitor.stats()
    assert (stats.alerts, stats.failures, stats.missing) == (1, 0, {"income": 1})
    result = monitor.report()["income"]
    assert result.drifted and (result.n_current, result.n_missing) == (499, 1)
    assert "NaN or infinite" not in caplog.text


NAN = float("nan")


class Optional(BaseModel):
    age: float
    income: float | None


@pytest.mark.parametrize("detector", ["ks", "psi", "wasserstein"])
@pytest.mark.parametrize(
    "reference",
    [
        {"age": [1.0, 2.0, 3.0, 4.0, 5.0], "income": [1.0, None, 2.0, float("inf"), NAN]},  # columns
        [{"age": float(i + 1), "income": v} for i, v in enumerate([1.0, None, 2.0, -float("inf"), NAN])],  # rows
        [Optional(age=float(i + 1), income=v) for i, v in enumerate([1.0, None, 2.0, float("inf"), NAN])],  # models
    ],
)
def test_none_nan_and_infinity_in_a_numeric_reference_are_left_out_and_counted(detector: str, reference: Any) -> None:
    """One rule for None, NaN and +/-inf, in the reference as in a live window: left out of the
    feature's distribution and counted (``describe()["reference_missing"]``), never an error."""
    monitor = pw.DriftMonitor(reference, features={"age": "ks", "income": detector}, window=2, background=False)
    assert monitor.columns["income"].tolist() == [1.0, 2.0]
    info = monitor.describe()
    assert info["n_reference"] == {"age": 5, "income": 2} and info["reference_missing"] == {"age": 0, "income": 3}
    for value in ({"age": 1.0, "income": 1.0}, {"age": 2.0, "income": None}):  # the live side: the same rule
        monitor.observe(value, None)
    assert monitor.report()["income"].n_missing == 1 and monitor.stats().missing == {"income": 1}


def test_an_array_reference_leaves_its_nan_out_of_that_column_only() -> None:
    reference = REF.copy()
    reference[5, 2] = np.nan
    monitor = pw.DriftMonitor(reference)
    assert monitor.describe()["n_reference"] == {"0": 200, "1": 200, "2": 199}
    assert monitor.reference_missing == {0: 0, 1: 0, 2: 1} and not np.isnan(monitor.columns[2]).any()
    monitor.name_features(["age", "income", "debt"])
    assert monitor.describe()["reference_missing"] == {"age": 0, "income": 0, "debt": 1}


def test_a_reference_feature_with_no_finite_value_is_refused_naming_it() -> None:
    with pytest.raises(pw.ConfigurationError, match=r"feature 'income' has no value to fit on: all 3 .*None, NaN"):
        pw.DriftMonitor({"age": [1.0, 2.0, 3.0], "income": [None, NAN, float("inf")]})


def test_none_and_nan_are_one_category_in_a_categorical_feature_on_both_sides() -> None:
    monitor = pw.DriftMonitor({"kind": ["a", "b", None, NAN] * 25}, window=4, background=False)
    assert monitor.columns["kind"].tolist()[:3] == ["a", "b", None] and monitor.reference_missing == {"kind": 0}
    for value in ("a", "b", None, None):
        monitor.observe({"kind": value}, None)
    result = monitor.report()["kind"]
    assert (result.n_current, result.n_missing, result.details["categories"]) == (4, 0, 3)
    assert result.details["unseen"] == 0  # None is the reference's "<missing>", not a new label


def test_saved_counts_of_left_out_reference_values_load_and_are_fingerprinted(tmp_path: Any) -> None:
    monitor = pw.DriftMonitor({"income": [1.0, None, 2.0, NAN, 3.0]})
    clean = pw.DriftMonitor({"income": [1.0, 2.0, 3.0]})
    assert monitor.fingerprint != clean.fingerprint  # the counts are part of the reference
    monitor.save(tmp_path / "ref.npz")
    loaded = pw.DriftMonitor.load(tmp_path / "ref.npz")
    assert loaded.reference_missing == {"income": 2} and loaded.fingerprint == monitor.fingerprint


def test_a_drift_alert_is_logged_at_warning_without_on_drift(caplog: pytest.LogCaptureFixture) -> None:
    monitor = pw.DriftMonitor(REF, features={0: Shift(), 1: "ks"}, window=50, background=False)
    with caplog.at_level(logging.WARNING, logger="prodwrap.drift"):
        for _ in range(50):
            monitor.observe([5.0, 5.0], None)
    records = [r for r in caplog.records if r.name == "prodwrap.drift"]
    assert [r.levelno for r in records] == [logging.WARNING] * 2
    by_feature = {r.feature: r for r in records}  # type: ignore[attr-defined]
    assert by_feature[0].detector == "shift" and by_feature[0].p_value is None  # type: ignore[attr-defined]
    assert by_feature[1].detector == "ks" and by_feature[1].p_value < 1e-6  # type: ignore[attr-defined]
    assert by_feature[0].statistic == pytest.approx(5.0 - REF[:, 0].mean())  # type: ignore[attr-defined]


def test_a_recurring_fault_is_logged_once_per_burst(caplog: pytest.LogCaptureFixture) -> None:
    monitor = pw.DriftMonitor(REF, features={0: raising(ZeroDivisionError("bug"))}, window=2, background=False)
    now = [0.0]
    monitor._throttle.clock = lambda: now[0]
    with caplog.at_level(logging.WARNING, logger="prodwrap.drift"):
        for _ in range(20):  # ten failing checks in one burst
            monitor.observe([0.0, 0.0, 0.0], None)
        now[0] = 61.0
        monitor.observe([0.0, 0.0, 0.0], None)
        monitor.observe([0.0, 0.0, 0.0], None)
    lines = [r.getMessage() for r in caplog.records if r.name == "prodwrap.drift"]
    assert monitor.stats().failures == 11 and len(lines) == 2
    assert "ZeroDivisionError: bug" in lines[0] and "9 more like it" in lines[1]


def test_throttle_keys_are_independent() -> None:
    logger = logging.getLogger("prodwrap.drift.test")
    throttle = Throttle(logger, interval=10.0, clock=lambda: 0.0)
    assert throttle.warning("a", "x") and throttle.warning("b", "x") and not throttle.warning("a", "x")
    with pytest.raises(ValueError):
        Throttle(logger, interval=0)
