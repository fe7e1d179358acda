"""Shared helpers of the stream-detector tests: river as the reference, alarms as index lists."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest


def river_drift() -> Any:
    """``river.drift``, or skip the test when river is not installed."""
    return pytest.importorskip("river.drift")


def flagged_at(det: Any, values: list[Any]) -> list[int]:
    """Indices at which ``det`` flags a change, for prodwrap's detectors and river's alike."""
    out = []
    for i, x in enumerate(values):
        flagged = det.update(x)
        if flagged is None:  # river returns None and sets drift_detected
            flagged = det.drift_detected
        if flagged:
            out.append(i)
    return out


def _adwin_streams() -> dict[str, list[float]]:
    rng = np.random.default_rng(20240601)
    step = np.concatenate([rng.normal(0, 1, 5000), rng.normal(1, 1, 5000), rng.normal(-0.5, 1, 5000)])
    gradual = rng.normal(0, 1, 20000) + np.linspace(0, 3, 20000)
    variance = np.concatenate([rng.normal(0, 1, 5000), rng.normal(0, 3, 5000)])
    offset = rng.normal(1e6, 1, 20000) + np.repeat([0.0, 2.0, 0.0, 5.0], 5000)
    integers = (rng.integers(0, 5, 20000) + np.repeat([0, 1, 0, 3], 5000)).astype(float)
    errors = np.concatenate([rng.random(4000) < 0.1, rng.random(4000) < 0.4]).astype(float)
    return {
        "step": step.tolist(),
        "gradual": gradual.tolist(),
        "variance": variance.tolist(),
        "offset": offset.tolist(),
        "integers": integers.tolist(),
        "errors": errors.tolist(),
    }


# streams and parameter sets on which ADWIN is checked against river and update_many against update
ADWIN_STREAMS = _adwin_streams()
ADWIN_PARAMS = [
    {},
    {"clock": 1, "delta": 0.01},
    {"max_buckets": 2, "min_window_length": 1, "grace_period": 0, "clock": 3},
    {"delta": 0.0001, "clock": 7, "max_buckets": 3, "min_window_length": 12, "grace_period": 40},
]


class Shift:
    """Batch detector stand-in: drifted when |mean(current) - mean(reference)| > 0.5 (a distance)."""

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self.mean = 0.0

    def fit(self, reference: Any) -> None:
        self.mean = float(np.mean(np.asarray(reference, dtype=float)))

    def test(self, current: Any) -> Any:
        from prodwrap.drift import DriftResult

        cur = np.asarray(current, dtype=float)
        distance = abs(float(cur.mean()) - self.mean)
        return DriftResult("shift", None, distance, None, self.threshold, distance > self.threshold, 1, cur.size)


def raising(error: BaseException) -> Any:
    """A batch detector whose test raises ``error`` (fit works)."""

    class Raising(Shift):
        def test(self, current: Any) -> Any:
            raise error

    return Raising()
