"""Logging for the drift package: alerts at WARNING (faults go through ``prodwrap._log.Throttle``).

DESIGN §1: a drift alert is logged at WARNING whether or not ``on_drift`` is set, with its fields
in ``extra=``.
"""

from __future__ import annotations

from typing import Any

from prodwrap._log import Throttle, logger

__all__ = ["Throttle", "log", "log_alert"]

log = logger("drift")


def log_alert(result: Any) -> None:
    """One WARNING line for a drifted feature, its fields in ``extra=``."""
    log.warning(
        "drift on feature %r: %s statistic %.6g, p-value %s, threshold %.6g",
        result.feature,
        result.detector,
        result.statistic,
        "n/a" if result.p_value is None else f"{result.p_value:.6g}",
        result.threshold,
        extra={
            "feature": result.feature,
            "detector": result.detector,
            "statistic": result.statistic,
            "p_value": result.p_value,
            "threshold": result.threshold,
        },
    )
