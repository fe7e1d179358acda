"""Shared helpers of the stream-detector tests: river as the reference, alarms as index lists."""

from __future__ import annotations

from typing import Any

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
