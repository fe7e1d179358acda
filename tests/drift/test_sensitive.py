"""Sensitive features (prodwrap/drift/_sensitive.py): tested like any other, never shown."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pydantic
import pytest
from pydantic import BaseModel, Field, SecretStr

import prodwrap as pw
from prodwrap.drift._sensitive import Hidden, features_marked
from prodwrap.testing import capture

SECRET = "987-65-43"  # every live ssn starts so; the reference's never do


class Applicant(BaseModel):
    x: float
    ssn: Annotated[str, pw.Sensitive]


class Tagged(BaseModel):
    x: float
    tag: str = Field(json_schema_extra={"sensitive": True})


class Profile(BaseModel, frozen=True):
    ssn: SecretStr
    city: str


class Nested(BaseModel):
    x: float
    profile: Profile
    plan: str


class Score(BaseModel):
    label: Annotated[str, pw.Sensitive]


def _reference(n: int = 300) -> list[Applicant]:
    rng = np.random.default_rng(0)
    return [Applicant(x=rng.normal(), ssn=f"000-00-000{i % 3}") for i in range(n)]


def _live(i: int) -> dict[str, Any]:
    return {"x": 0.0, "ssn": f"{SECRET}{i % 7:02d}"}


def test_a_sensitive_field_is_monitored_but_no_value_leaves_the_monitor(caplog: pytest.LogCaptureFixture) -> None:
    called: list[Any] = []
    monitor = pw.DriftMonitor(_reference(), window=100, background=False, on_drift=called.append)
    with caplog.at_level(logging.DEBUG, logger="prodwrap"), capture() as cap:
        model = pw.ProductionModel(lambda a: a.x, input=Applicant, drift=monitor, name="scored")
        served = [model.predict_detailed(_live(i)) for i in range(100)]
    assert monitor.sensitive == frozenset({"ssn"}) and model.describe()["drift"]["sensitive"] == ["ssn"]
    alert = next(a for a in called if a.feature == "ssn")  # still tested: the unseen ssns drift
    assert alert.detector == "chisquare" and alert.details["unseen"] == 100
    examples = alert.details["unseen_examples"]
    assert [count for _, count in examples] == [15, 15, 14, 14, 14]  # counts kept
    assert all(label.startswith("redacted:") and len(label) == 9 + 32 for label, _ in examples)
    assert len({label for label, _ in examples}) == 5
    shown = [
        called,
        monitor.alerts,
        monitor.report(),
        monitor.stats(),
        model.stats(),
        model.report(),
        cap.drift_alerts,
        served[-1].drift,
        caplog.text,
    ]
    assert served[-1].drift and SECRET not in repr(shown)


def test_stand_ins_are_stable_within_a_monitor_and_differ_between_monitors() -> None:
    first = pw.DriftMonitor(_reference(), window=50, background=False, sensitive=["ssn"])
    second = pw.DriftMonitor(_reference(), window=50, background=False, sensitive=["ssn"])
    for monitor in (first, second):
        for i in range(100):
            monitor.observe(Applicant(**_live(i % 5)), None)
    labels = [dict(r.details["unseen_examples"]) for r in first.alerts if r.feature == "ssn"]
    assert len(labels) == 2 and set(labels[0]) == set(labels[1])  # one value, one stand-in
    other = {label for r in second.alerts if r.feature == "ssn" for label, _ in r.details["unseen_examples"]}
    assert other.isdisjoint(labels[0])  # a fresh salt per monitor


def test_features_not_marked_keep_their_examples() -> None:
    monitor = pw.DriftMonitor([{"x": 0.0, "kind": "a"}] * 50, features={"kind": None}, window=10, background=False)
    for _ in range(10):
        monitor.observe({"x": 0.0, "kind": "new"}, None)
    assert monitor.report()["kind"].details["unseen_examples"] == (("new", 10),)


@pytest.mark.parametrize(
    ("spec", "keys", "expected"),
    [
        (Applicant, ["x", "ssn"], {"ssn"}),
        (Applicant, [0, 1], {1}),  # a numbered feature by the field at its position
        (Tagged, ["x", "tag"], {"tag"}),
        (Nested, ["x", "profile", "plan"], {"profile"}),  # a secret below the field
        (SecretStr, [0], {0}),  # the input itself is secret
        (dict[str, SecretStr], ["a", "b"], {"a", "b"}),
        (pw.ArraySpec(shape=(None, 2)), [0, 1], set()),
        (None, ["x"], set()),
    ],
)
def test_features_marked_by_an_input_spec(spec: Any, keys: list[Any], expected: set[Any]) -> None:
    assert features_marked(keys, spec, None) == expected


def test_features_marked_by_an_output_spec() -> None:
    assert features_marked(["x", "ssn", "output"], Applicant, Score) == {"ssn", "output"}
    assert features_marked(["x", "output"], None, float) == set()


def test_a_sensitive_output_is_never_shown() -> None:
    reference = [{"x": 0.0}] * 50
    monitor = pw.DriftMonitor(reference, output_reference=["low", "high"] * 25, window=10, background=False)
    model = pw.ProductionModel(lambda row: {"label": f"{SECRET}{row['x']}"}, output=Score, drift=monitor)
    for _ in range(10):
        model({"x": 1.0})
    result = monitor.report()["output"]
    assert monitor.sensitive == frozenset({"output"}) and result.drifted and SECRET not in repr(result)


def test_an_array_reference_named_after_the_fields_is_marked_by_name() -> None:
    reference = np.column_stack([np.zeros(50), np.arange(50) % 3])
    monitor = pw.DriftMonitor(reference, window=10, background=False, sensitive=[1])
    assert monitor.sensitive == frozenset({1})
    monitor.name_features(["x", "ssn"])
    assert monitor.sensitive == frozenset({"ssn"})


def test_sensitive_names_only_reference_features() -> None:
    with pytest.raises(pw.ConfigurationError, match="sensitive names unknown feature"):
        pw.DriftMonitor(_reference(), sensitive=["SSN"])
    with pytest.raises(pw.ConfigurationError, match="sensitive must be"):
        pw.DriftMonitor(_reference(), sensitive="ssn")


def test_marking_later_redacts_the_results_kept() -> None:
    monitor = pw.DriftMonitor([r.model_dump() for r in _reference()], window=20, background=False)  # (dicts: unmarked)
    for i in range(20):
        monitor.observe(Applicant(**_live(i)), None)
    assert SECRET in repr(monitor.report())  # a monitor on its own, nothing marked: shown
    monitor.mark_sensitive(["ssn", "not-a-feature"])
    assert monitor.sensitive == frozenset({"ssn"})
    assert SECRET not in repr([monitor.report(), monitor.stats(), monitor.alerts])


def test_a_failing_detector_logs_no_value_of_a_sensitive_feature(caplog: pytest.LogCaptureFixture) -> None:
    class Quoting:
        def fit(self, reference: Any) -> None:
            pass

        def test(self, current: Any) -> Any:
            raise ValueError(f"cannot place {current[0]!r}")

    monitor = pw.DriftMonitor(_reference(), features={"ssn": Quoting()}, window=5, background=False)
    monitor.mark_sensitive(["ssn"])
    with caplog.at_level(logging.WARNING, logger="prodwrap"):
        for i in range(5):
            monitor.observe(Applicant(**_live(i)), None)
    assert monitor.stats().failures == 1
    assert "cannot place '**********'" in caplog.text and SECRET not in caplog.text
    assert all(r.exc_info is None for r in caplog.records)  # no exception object left to print


class Reporting:
    """A detector of the user's, reporting ``details(current)`` (an alert every check)."""

    threshold = 0.5

    def __init__(self, details: Callable[[Any], dict[Any, Any]]) -> None:
        self.details = details

    def fit(self, reference: Any) -> None:
        pass

    def test(self, current: Any) -> Any:
        details = self.details(current)
        return pw.drift.DriftResult("mine", None, 1.0, None, 0.5, True, 10, len(current), details=details)


def _reported(details: Callable[[Any], dict[Any, Any]]) -> Any:
    """The details kept of a check by ``Reporting(details)`` on the sensitive feature."""
    monitor = pw.DriftMonitor(_reference(), features={"ssn": Reporting(details)}, window=5, background=False)
    monitor.mark_sensitive(["ssn"])
    for i in range(5):
        monitor.observe(Applicant(**_live(i)), None)
    return monitor.report()["ssn"].details


def test_a_custom_detectors_details_keep_numbers_only() -> None:
    details = _reported(
        lambda current: {"first": current[0], "counts": {current[0]: 3}, "n": 5, "share": 0.5, "method": "mine"}
    )
    assert (details["n"], details["share"]) == (5, 0.5)
    assert details["first"].startswith("redacted:") and details["method"].startswith("redacted:")
    assert list(details["counts"].values()) == [3] and SECRET not in repr(details)


def test_a_custom_detail_named_after_a_value_of_the_window_is_renamed() -> None:
    details = _reported(lambda current: {current[0]: 1, "n": 5})  # (a detail named after a live value)
    assert details["n"] == 5 and SECRET not in repr(details)
    assert next(name for name in details if name != "n").startswith("redacted:")


def test_an_on_drift_that_recompiles_the_model_does_not_wait_on_its_own_check() -> None:
    """Compiling a model with sensitive fields marks its monitor's features again: with nothing
    new to mark it takes no lock, so an on_drift (run while the check holds the monitor's check
    lock) may derive or roll back models with the monitor."""
    derived: list[pw.ProductionModel] = []
    monitor = pw.DriftMonitor(
        _reference(), window=20, background=False, on_drift=lambda r: derived.append(model.with_options(version="2"))
    )
    model = pw.ProductionModel(lambda a: 0.5, input=Applicant, drift=monitor)
    caller = threading.Thread(target=lambda: [model(_live(i)) for i in range(20)], daemon=True)
    caller.start()
    caller.join(30)
    assert not caller.is_alive() and derived  # (a deadlock leaves the caller waiting)


def test_a_built_in_detectors_details_are_kept() -> None:
    hidden = Hidden(["x"])
    result = pw.drift.DriftResult("ks", "x", 0.5, 0.01, 0.05, True, 10, 10, details={"method": "asymp"})
    assert hidden.result(result, pw.drift.KS()).details == {"method": "asymp"}


def test_save_and_load_keep_the_sensitive_features(tmp_path: Path) -> None:
    monitor = pw.DriftMonitor(_reference(), window=10, background=False)
    pw.ProductionModel(lambda a: a.x, input=Applicant, drift=monitor)
    monitor.save(tmp_path / "ref.npz")
    loaded = pw.DriftMonitor.load(tmp_path / "ref.npz", background=False)
    assert loaded.sensitive == frozenset({"ssn"}) and loaded.fingerprint == monitor.fingerprint
    for i in range(10):
        loaded.observe(Applicant(**_live(i)), None)
    assert SECRET not in repr(loaded.report())


def _saved_ssns(tmp_path: Path) -> tuple[pw.DriftMonitor, Path]:
    reference = [
        {"x": float(i % 5), "ssn": f"000-00-{i % 3:04d}", "plan": ["gold", "basic"][i % 2]} for i in range(300)
    ]
    monitor = pw.DriftMonitor(reference, window=30, background=False, sensitive=["ssn"])
    monitor.save(tmp_path / "ref.npz")
    return monitor, tmp_path / "ref.npz"


def test_a_sensitive_features_categories_are_not_in_the_saved_file_in_clear(tmp_path: Path) -> None:
    monitor, path = _saved_ssns(tmp_path)
    raw = path.read_bytes()
    with np.load(path, allow_pickle=False) as data:  # (the archive may compress: its entries too)
        raw += b"".join(data[k].tobytes() for k in data.files) + str(data["meta"]).encode()
    for ssn in ("000-00-0000", "000-00-0001", "000-00-0002", "000-00-"):
        assert ssn.encode() not in raw
    assert b"gold" in raw  # a feature not marked sensitive is written as it was
    loaded = pw.DriftMonitor.load(path, background=False)
    assert loaded.fingerprint == monitor.fingerprint and loaded.sensitive == frozenset({"ssn"})
    assert not {"000-00-0000", "000-00-0001"} & set(loaded.columns["ssn"].tolist())


def test_a_loaded_sealed_feature_is_still_tested_as_before(tmp_path: Path) -> None:
    monitor, path = _saved_ssns(tmp_path)
    loaded = pw.DriftMonitor.load(path, background=False)
    for i in range(30):  # the reference's own ssns, in its proportions: no drift
        row = {"x": float(i % 5), "ssn": f"000-00-{i % 3:04d}", "plan": ["gold", "basic"][i % 2]}
        monitor.observe(row, None)
        loaded.observe(row, None)
    same, before = loaded.report()["ssn"], monitor.report()["ssn"]
    assert not same.drifted and (same.statistic, same.p_value) == (before.statistic, before.p_value)
    assert same.details["unseen"] == 0
    for i in range(30):  # one ssn only, and a new one: drift, its label never shown
        loaded.observe({"x": float(i % 5), "ssn": "000-00-0000" if i % 2 else "999-99-9999", "plan": "gold"}, None)
    drifted = loaded.report()["ssn"]
    assert drifted.drifted and drifted.details["unseen"] == 15
    assert "999-99" not in repr(drifted) and "000-00" not in repr(loaded.report())


def test_a_loaded_sealed_monitor_saves_and_loads_again(tmp_path: Path) -> None:
    monitor, path = _saved_ssns(tmp_path)
    first = pw.DriftMonitor.load(path, background=False)
    first.save(tmp_path / "again.npz")
    again = pw.DriftMonitor.load(tmp_path / "again.npz", background=False)
    assert again.fingerprint == monitor.fingerprint
    assert again.columns["ssn"].tolist() == first.columns["ssn"].tolist()  # the same seal, not one on top


def test_an_edited_sealed_file_is_refused(tmp_path: Path) -> None:
    import json

    _, path = _saved_ssns(tmp_path)
    with np.load(path, allow_pickle=False) as data:
        entries = {k: data[k] for k in data.files}
    meta = json.loads(str(entries["meta"]))
    ssn = next(e for e in meta["features"] if e["key"] == "ssn")
    ssn["values"][0] = ssn["values"][1 if ssn["values"][1] != ssn["values"][0] else 2]
    entries["meta"] = np.array(json.dumps(meta))
    np.savez(path, **entries)
    with pytest.raises(pw.ConfigurationError, match="does not match its fingerprint"):
        pw.DriftMonitor.load(path)
    ssn["sealed"] = "not hex"
    entries["meta"] = np.array(json.dumps(meta))
    np.savez(path, **entries)
    with pytest.raises(pw.ConfigurationError, match="malformed seal"):
        pw.DriftMonitor.load(path)


def test_load_adds_the_sensitive_features_it_is_given_and_refuses_a_string(tmp_path: Path) -> None:
    pw.DriftMonitor(_reference(), window=10, background=False).save(tmp_path / "ref.npz")
    assert pw.DriftMonitor.load(tmp_path / "ref.npz", sensitive=["ssn"]).sensitive == frozenset({"ssn"})
    with pytest.raises(pw.ConfigurationError, match="sensitive must be a collection of feature keys, got 'ssn'"):
        pw.DriftMonitor.load(tmp_path / "ref.npz", sensitive="ssn")


def test_a_secret_str_field_is_marked_whatever_holds_it() -> None:
    class Holder(BaseModel):
        x: float
        token: SecretStr
        tokens: list[pydantic.SecretStr] = []

    assert features_marked(["x", "token", "tokens"], Holder, None) == {"token", "tokens"}


def test_a_failing_performance_metric_logs_no_value_of_a_sensitive_output(caplog: pytest.LogCaptureFixture) -> None:
    class Verdict(BaseModel):
        label: Annotated[str, pw.Sensitive]
        score: float

    def metric(out: Any, actual: Any) -> float:
        raise ValueError(f"cannot score {out.label!r} against {actual!r}")

    monitor = pw.DriftMonitor(
        _reference(),
        window=10,
        background=False,
        performance=pw.drift.DDM(),
        metric=metric,
        output_reference=[0.5] * 20,
    )
    model = pw.ProductionModel(
        lambda a: Verdict(label=f"{SECRET}-label", score=0.5), input=Applicant, output=Verdict, drift=monitor
    )
    prediction = model.predict_detailed(_live(0))
    with caplog.at_level(logging.WARNING, logger="prodwrap"):
        assert model.feedback(prediction.id, f"{SECRET}-truth") is True
    assert monitor.stats().failures == 1
    assert "cannot score '**********' against '**********'" in caplog.text and SECRET not in caplog.text


class Raises:
    """A detector whose fit quotes a value of its reference, as numpy's errors do."""

    def fit(self, reference: Any) -> None:
        raise TypeError(f"cannot place {next(iter(reference))!r}")

    def test(self, current: Any) -> Any:
        raise AssertionError("never tested")


@pytest.mark.parametrize(
    ("reference", "options"),
    [
        ([{"ssn": s, "x": 1.0} for s in ("123-45-6789", "12")], {"features": {"ssn": "ks"}, "sensitive": ["ssn"]}),
        ([{"ssn": s, "x": 1.0} for s in ("123-45-6789", "12")], {"features": {"ssn": Raises()}, "sensitive": ["ssn"]}),
        ([Applicant(x=1.0, ssn=s) for s in ("123-45-6789", "12")], {"features": {"ssn": "ks"}}),  # marked by its model
    ],
)
def test_a_detector_refusing_a_sensitive_reference_quotes_none_of_its_values(
    reference: list[Any], options: dict[str, Any]
) -> None:
    import traceback

    with pytest.raises(pw.ConfigurationError, match=r"sensitive reference feature 'ssn': \w+Error: ") as info:
        pw.DriftMonitor(reference, **options)
    shown = "".join(traceback.format_exception(info.value))
    assert "123-45" not in shown and "'12'" not in shown and "**********" in shown
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_detector_refusing_a_reference_feature_not_sensitive_keeps_its_message() -> None:
    with pytest.raises(pw.ConfigurationError, match=r"reference feature 'ssn': ks: .*'123-45-6789'") as info:
        pw.DriftMonitor([{"ssn": "123-45-6789"}], features={"ssn": "ks"})
    assert isinstance(info.value.__cause__, ValueError)


def test_a_reference_of_models_marks_its_sensitive_fields_before_any_model_is_attached() -> None:
    monitor = pw.DriftMonitor(_reference(), window=10, background=False)
    assert monitor.sensitive == frozenset({"ssn"})
    for i in range(10):
        monitor.observe(Applicant(**_live(i)), None)
    assert SECRET not in repr(monitor.report()) and SECRET not in repr(monitor.describe())
