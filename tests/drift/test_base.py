"""The drift protocols, the registry (with entry points) and the metric export."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import numpy as np
import pytest

import prodwrap as pw
from prodwrap.drift import BatchDetector, DriftDetector, DriftResult, StreamDetector, available, detector


class Plugin(BatchDetector):
    name = "plugin-mean"
    uses_p_value = False
    default_threshold = 1.0

    def _fit(self, reference: Any) -> int:
        return len(reference)

    def _test(self, current: Any) -> tuple[float, float | None, int, dict[str, Any]]:
        return float(np.mean(current)), None, len(current), {}


def test_entry_point_detectors_are_found_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = importlib.metadata.EntryPoint(name="plugin-mean", value=f"{__name__}:Plugin", group="prodwrap.drift_detectors")

    def fake_entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
        return [ep] if group == "prodwrap.drift_detectors" else []

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    found = detector("Plugin-Mean", threshold=2.0)
    assert isinstance(found, Plugin) and found.threshold == 2.0
    assert "plugin-mean" in available() and "ks" in available()


def test_unknown_names_list_what_is_known() -> None:
    with pytest.raises(pw.ConfigurationError, match=r"known: .*ks"):
        detector("nope")


def test_protocols_are_runtime_checkable() -> None:
    assert isinstance(pw.drift.KS(), DriftDetector)
    assert not isinstance(pw.drift.KS(), StreamDetector)

    class Custom:
        def fit(self, reference: Any) -> None: ...

        def test(self, current: Any) -> DriftResult:
            return DriftResult("custom", None, 0.0, None, 1.0, False, 1, 1)

    assert isinstance(Custom(), DriftDetector)  # the eight fields without defaults suffice


def test_batch_detector_rules() -> None:
    det = Plugin()
    with pytest.raises(RuntimeError, match="fit"):
        det.test([1.0])
    det.fit([0.0, 0.0])
    assert det.test([3.0]).drifted and not det.test([0.5]).drifted
    assert not det.test([3.0], threshold=5.0).drifted
    for bad in (-1.0, float("nan"), "x", True):
        with pytest.raises(pw.ConfigurationError):
            Plugin(threshold=bad)  # type: ignore[arg-type]
    with pytest.raises(pw.ConfigurationError, match=r"\(0, 1\)"):
        pw.drift.KS(threshold=1.5)


def test_monitor_exports_the_drift_score_gauge() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    reference = np.random.default_rng(1).normal(size=(200, 2))
    monitor = pw.DriftMonitor(reference, window=50, background=False, meter_provider=provider)
    for _ in range(50):
        monitor.observe([0.0, 5.0], None)
    data = reader.get_metrics_data()
    assert data is not None
    points = {
        (p.attributes["feature"], p.attributes["detector"]): p.value
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "prodwrap.drift.score"
        for p in m.data.data_points
    }
    assert set(points) == {("0", "ks"), ("1", "ks")}
    assert points[("1", "ks")] == monitor.report()[1].statistic
    provider.shutdown()
