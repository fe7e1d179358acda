"""DriftMonitor with small stand-in detectors (the real ones have their own tests)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel

import prodwrap as pw
from prodwrap._record import MISSING
from prodwrap.drift import BatchDetector, DriftResult, register


@register("test-meanshift")
class MeanShift(BatchDetector):
    """Distance detector: |mean(current) - mean(reference)|."""

    name = "test-meanshift"
    uses_p_value = False
    default_threshold = 0.5

    def _fit(self, reference: Any) -> int:
        ref = np.asarray(reference, dtype=float)
        self.mean = float(ref.mean())
        return len(ref)

    def _test(self, current: Any) -> tuple[float, float | None, int, dict[str, Any]]:
        cur = np.asarray(current, dtype=float)
        return abs(float(cur.mean()) - self.mean), None, len(cur), {}


@register("test-pvalue")
class FixedP(BatchDetector):
    """p-value detector whose p-value is the current sample's mean (for scripting)."""

    name = "test-pvalue"

    def _fit(self, reference: Any) -> int:
        return len(reference)

    def _test(self, current: Any) -> tuple[float, float | None, int, dict[str, Any]]:
        p = float(np.mean(current))
        return 1 - p, p, len(current), {}


class Broken(BatchDetector):
    name = "broken"

    def _fit(self, reference: Any) -> int:
        return len(reference)

    def _test(self, current: Any) -> tuple[float, float | None, int, dict[str, Any]]:
        raise ZeroDivisionError("detector bug")


class Row(BaseModel):
    a: float
    b: float
    c: str = "x"


REF = np.random.default_rng(0).normal(size=(500, 2))


def test_sync_checks_every_window_and_alerts_on_the_shifted_feature() -> None:
    alerts: list[DriftResult] = []
    monitor = pw.DriftMonitor(
        REF, features={0: MeanShift(), 1: MeanShift()}, window=100, background=False, on_drift=alerts.append
    )
    for _ in range(99):
        assert monitor.observe([0.0, 0.0], None) == ()
    assert monitor.observe([0.0, 0.0], None) == ()  # the check at 100 found nothing
    assert monitor.stats().checks == 1 and alerts == []
    for _ in range(99):
        monitor.observe([0.0, 3.0], None)
    fired = monitor.observe([0.0, 3.0], None)
    assert [r.feature for r in fired] == [1] and [r.feature for r in alerts] == [1]
    assert alerts[0].statistic == pytest.approx(3.0 - REF[:, 1].mean())
    report = monitor.report()
    assert set(report) == {0, 1} and report[1].drifted and not report[0].drifted
    stats = monitor.stats()
    assert (stats.checks, stats.alerts, stats.failures, stats.observed) == (2, 1, 0, 200)


def test_background_checks_run_off_the_calling_thread() -> None:
    import threading

    threads: list[str] = []

    def on_drift(result: DriftResult) -> None:
        threads.append(threading.current_thread().name)

    monitor = pw.DriftMonitor(REF, features={0: MeanShift()}, window=50, on_drift=on_drift)
    for _ in range(50):
        assert monitor.observe([5.0, 0.0], None) == ()
    assert monitor.wait(5)
    assert threads == ["prodwrap-drift"]
    assert monitor.stats().checks == 1


def test_check_every_and_sliding_window() -> None:
    monitor = pw.DriftMonitor(REF, features={0: MeanShift()}, window=10, check_every=5, background=False)
    for i in range(20):
        monitor.observe([float(i), 0.0], None)
    assert monitor.stats().checks == 4
    # the last check saw the last 10 observations only: 10..19
    assert monitor.report()[0].n_current == 10
    assert monitor.report()[0].statistic == pytest.approx(abs(14.5 - REF[:, 0].mean()))


def test_corrections_across_p_value_features_only() -> None:
    ref = np.zeros((10, 3))
    features = {0: FixedP(), 1: FixedP(), 2: MeanShift(threshold=0.5)}
    results = {}
    for correction in (None, "bonferroni", "holm", "fdr"):
        monitor = pw.DriftMonitor(ref, features=features, window=4, background=False, correction=correction)
        for _ in range(4):
            monitor.observe([0.03, 0.02, 1.0], None)  # p-values 0.03 and 0.02, mean shift 1.0
        results[correction] = {r.feature: r.drifted for r in monitor.check()}
    assert results[None] == {0: True, 1: True, 2: True}
    assert results["bonferroni"] == {0: False, 1: True, 2: True}  # level 0.025
    assert results["holm"] == {0: True, 1: True, 2: True}  # 0.02 < 0.025, then 0.03 < 0.05
    assert results["fdr"] == {0: True, 1: True, 2: True}


def test_bonferroni_level_is_reported_as_threshold() -> None:
    monitor = pw.DriftMonitor(np.zeros((10, 2)), features={0: FixedP(), 1: FixedP()}, window=2, background=False)
    monitor.observe([0.5, 0.5], None)
    monitor.observe([0.5, 0.5], None)
    assert {r.threshold for r in monitor.report().values()} == {0.025}


def test_holm_needs_one_level() -> None:
    with pytest.raises(pw.ConfigurationError, match="one significance level"):
        pw.DriftMonitor(
            np.zeros((5, 2)), features={0: FixedP(threshold=0.05), 1: FixedP(threshold=0.01)}, correction="holm"
        )


def test_failures_are_counted_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    def bad_callback(result: DriftResult) -> None:
        raise RuntimeError("callback bug")

    monitor = pw.DriftMonitor(
        REF, features={0: Broken(), 1: MeanShift()}, window=5, background=False, on_drift=bad_callback
    )
    with caplog.at_level(logging.WARNING, logger="prodwrap"):
        for _ in range(5):
            monitor.observe([0.0, 9.0], None)
    stats = monitor.stats()
    assert stats.failures == 2 and stats.alerts == 1  # the detector and the callback
    assert "detector bug" in caplog.text and "callback bug" in caplog.text


def test_features_from_pydantic_reference_and_inputs() -> None:
    reference = [Row(a=float(i % 7), b=1.0, c="x" if i % 2 else "y") for i in range(200)]
    monitor = pw.DriftMonitor(reference, features={"a": MeanShift(), "b": MeanShift()}, window=20, background=False)
    for _ in range(20):
        monitor.observe(Row(a=3.0, b=9.0), None)
    assert {k for k, r in monitor.report().items() if r.drifted} == {"b"}
    for _ in range(20):  # a dict input is read by key
        monitor.observe({"a": 3.0, "b": 1.0}, None)
    assert not any(r.drifted for r in monitor.report().values())
    assert monitor.stats().observed == 40


def test_array_reference_watching_pydantic_inputs_by_field_order() -> None:
    monitor = pw.DriftMonitor(REF, features={0: MeanShift(), 1: MeanShift()}, window=10, background=False)
    for _ in range(10):
        monitor.observe(Row(a=0.0, b=7.0), None)
    assert {k for k, r in monitor.report().items() if r.drifted} == {1}


def test_batch_inputs_contribute_every_row() -> None:
    monitor = pw.DriftMonitor(REF, features={0: MeanShift()}, window=3, background=False)
    for _ in range(3):
        monitor.observe(np.ones((4, 2)), None)
    assert monitor.report()[0].n_current == 12


def test_output_feature() -> None:
    monitor = pw.DriftMonitor(
        REF, features={"output": MeanShift()}, output_reference=np.zeros(100), window=5, background=False
    )
    for _ in range(5):
        monitor.observe([0.0, 0.0], {"probability": 0.9})  # a one-field output is read through
    result = monitor.report()["output"]
    assert result.statistic == pytest.approx(0.9) and result.drifted


class Scored(BaseModel):
    probability: float


@pytest.mark.parametrize(
    "outputs",
    [
        [{"probability": 0.0}] * 100,  # one-field dicts, read through as live outputs are
        [Scored(probability=0.0)] * 100,  # one-field models
        {"probability": [0.0] * 100},  # one column by name
        np.zeros((100, 1)),  # one column
    ],
)
def test_an_output_reference_of_one_field_records_is_read_through(outputs: Any) -> None:
    monitor = pw.DriftMonitor(REF, features={"output": MeanShift()}, output_reference=outputs, window=5)
    assert monitor.columns["output"].tolist() == [0.0] * 100
    monitor.close()


@pytest.mark.parametrize(
    ("outputs", "named"),
    [
        (np.zeros((100, 2)), r"output_reference has 2 columns \[0, 1\]"),
        ([[0.0, 1.0]] * 10, r"output_reference has 2 columns \[0, 1\]"),
        ([{"p": 0.0, "label": "a"}] * 10, r"output_reference has 2 columns \['p', 'label'\]"),
        ({"p": [0.0], "q": [1.0]}, r"output_reference has 2 columns"),
    ],
)
def test_an_output_reference_of_several_columns_is_refused(outputs: Any, named: str) -> None:
    """The output is one feature: a reference of several columns is never cut to its first."""
    with pytest.raises(pw.ConfigurationError, match=named + r".*one feature"):
        pw.DriftMonitor(REF, output_reference=outputs)


def test_unknown_features_and_bad_options() -> None:
    with pytest.raises(pw.ConfigurationError, match="unknown feature"):
        pw.DriftMonitor(REF, features=["nope"])
    for bad in ({"window": 1}, {"check_every": 0}, {"correction": "sidak"}, {"window": 2.5}):
        with pytest.raises(pw.ConfigurationError):
            pw.DriftMonitor(REF, features={0: MeanShift()}, **bad)  # type: ignore[arg-type]


def test_fingerprint_is_stable_and_sensitive() -> None:
    one = pw.DriftMonitor(REF, features={0: MeanShift()})
    two = pw.DriftMonitor(REF.copy(), features={0: MeanShift()})
    changed = REF.copy()
    changed[3, 0] += 1e-9
    three = pw.DriftMonitor(changed, features={0: MeanShift()})
    assert one.fingerprint == two.fingerprint != three.fingerprint
    assert len(one.fingerprint) == 64 and one.describe()["reference_fingerprint"] == one.fingerprint


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    reference = [{"x": float(i), "kind": "a" if i % 3 else "b"} for i in range(50)]
    monitor = pw.DriftMonitor(
        reference, features={"x": MeanShift(threshold=0.25), "kind": None}, window=8, check_every=4, correction="holm"
    )
    path = tmp_path / "reference.npz"
    monitor.save(path)
    loaded = pw.DriftMonitor.load(path, background=False)
    assert loaded.fingerprint == monitor.fingerprint
    assert (loaded.window, loaded.check_every, loaded.correction) == (8, 4, "holm")
    assert loaded.detectors["x"].threshold == 0.25
    assert np.array_equal(loaded.columns["x"], monitor.columns["x"])
    assert list(loaded.columns["kind"]) == list(monitor.columns["kind"])
    with np.load(path, allow_pickle=False) as data:  # no pickled objects inside
        assert set(data.files) >= {"meta"}


def test_load_refuses_tampered_data(tmp_path: Path) -> None:
    monitor = pw.DriftMonitor(REF, features={0: MeanShift()})
    path = tmp_path / "ref.npz"
    monitor.save(path)
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["column0"] = arrays["column0"] + 1.0
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="fingerprint"):
        pw.DriftMonitor.load(path)


def test_saving_an_unregistered_detector_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not registered"):
        pw.DriftMonitor(REF, features={0: Broken()}).save(tmp_path / "x.npz")


class Alarm:
    """Stream detector stand-in: signals when the running error mean passes a limit."""

    def __init__(self, limit: float = 0.5) -> None:
        self.limit, self.errors = limit, []  # type: ignore[var-annotated]

    def update(self, value: float) -> bool:
        self.errors.append(value)
        return len(self.errors) >= 4 and float(np.mean(self.errors[-4:])) > self.limit

    def reset(self) -> None:
        self.errors = []


def test_model_integration_feedback_and_stats() -> None:
    alerts: list[DriftResult] = []
    alarm = Alarm()
    monitor = pw.DriftMonitor(
        REF,
        features={0: MeanShift(), 1: MeanShift()},
        window=10,
        background=False,
        performance=alarm,
        on_drift=alerts.append,
    )
    model = pw.ProductionModel(lambda x: "yes" if x[0] > 0 else "no", drift=monitor)
    preds = [model.predict_detailed([1.0, 0.0]) for _ in range(9)]
    last = model.predict_detailed([1.0, 0.0])  # the 10th completes the window: check inline
    assert [r.feature for r in last.drift] == [0] and preds[0].drift == ()
    for p in preds[:4]:
        assert model.feedback(p.id, "no")  # wrong every time: the error stream alarms
    assert alarm.errors == [1.0, 1.0, 1.0, 1.0]
    assert [r.feature for r in alerts] == [0, "performance"]
    assert not model.feedback("unknown-id", "no")
    stats = model.stats().drift
    assert (stats.checks, stats.feedback, stats.unmatched_feedback) == (1, 4, 1)
    info = model.describe()
    assert info["stages"][-1] == "drift monitor" and info["drift"]["reference_fingerprint"] == monitor.fingerprint


def test_fallback_outputs_are_not_observed_but_inputs_are() -> None:
    monitor = pw.DriftMonitor(
        REF, features={0: MeanShift(), "output": MeanShift()}, output_reference=np.zeros(10), window=4, background=False
    )

    def predict(x: list[float]) -> float:
        raise RuntimeError

    model = pw.ProductionModel(predict, drift=monitor, fallback=pw.Constant(100.0))
    for _ in range(4):
        model([0.0, 0.0])
    report = monitor.report()
    assert report[0].n_current == 4 and "output" not in report  # no output observed yet


def test_feedback_without_monitor_is_a_configuration_error() -> None:
    with pytest.raises(pw.ConfigurationError):
        pw.ProductionModel(lambda x: x).feedback("id", 1)
    with pytest.raises(pw.ConfigurationError):
        pw.ProductionModel(lambda x: x, drift=pw.DriftMonitor(REF, features={0: MeanShift()})).feedback("id", 1)
    with pytest.raises(pw.ConfigurationError):
        pw.ProductionModel(lambda x: x, drift=object())  # type: ignore[arg-type]


def test_monitored_decorator() -> None:
    monitor = pw.DriftMonitor(REF, features={0: MeanShift()})

    @pw.monitored(drift=monitor)
    def model(x: list[float]) -> float:
        return x[0]

    assert isinstance(model, pw.ProductionModel) and model.describe()["drift"] is not None


def test_due_checks_coalesce_while_one_is_pending() -> None:
    import threading

    release = threading.Event()
    entered = threading.Event()

    class Slow(MeanShift):
        def _test(self, current: Any) -> tuple[float, float | None, int, dict[str, Any]]:
            entered.set()
            release.wait(5)
            return super()._test(current)

    monitor = pw.DriftMonitor(REF, features={0: Slow()}, window=10)
    for _ in range(10):
        monitor.observe([0.0, 0.0], None)
    assert entered.wait(5)  # the first check is running and holds the thread
    for _ in range(30):  # three more checks fall due: one is queued, two fold into it
        monitor.observe([0.0, 0.0], None)
    release.set()
    assert monitor.wait(5)
    stats = monitor.stats()
    assert (stats.checks, stats.coalesced, stats.observed) == (2, 2, 40)


def test_window_columns_read_every_input_form_alike() -> None:
    from prodwrap.drift._features import window_columns

    models = [Row(a=float(i), b=2.0 * i, c="x" if i % 2 else "y") for i in range(6)]
    dicts = [m.model_dump() for m in models]
    mixed = [models[0], dicts[1], models[2], dicts[3], models[4], dicts[5]]
    ragged = [*dicts[:5], {"a": 5.0, "c": "x"}]  # "b" missing in one: read value by value
    numeric = {"a": True, "b": True, "c": False}
    keys = ["a", "b", "c", "output"]
    outputs = [0.5, 0.25, MISSING, float("nan"), {"p": 1.0}, 2.0]
    columns = [
        window_columns(list(zip(rows, outputs, strict=True)), keys, numeric).columns
        for rows in (models, dicts, mixed, ragged)
    ]
    for cols in columns[:3]:
        assert cols["a"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
        assert cols["b"].tolist() == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        assert cols["c"].tolist() == ["y", "x", "y", "x", "y", "x"]
        assert cols["output"].tolist() == [0.5, 0.25, 1.0, 2.0]  # missing and NaN dropped
    assert columns[3]["b"].tolist() == [0.0, 2.0, 4.0, 6.0, 8.0]
    # a value that is not a number in a numeric feature: that column is read value by value
    odd_rows = [*dicts[:5], {"a": None, "b": "10", "c": "x"}]
    odd = window_columns([(row, 0.0) for row in odd_rows], keys, numeric).columns
    assert odd["a"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert odd["b"].tolist()[:5] == [0.0, 2.0, 4.0, 6.0, 8.0]
    # column positions of an array reference read pydantic fields in order
    by_index = window_columns([(m, None) for m in models], [1], {1: True}).columns
    assert by_index[1].tolist() == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
