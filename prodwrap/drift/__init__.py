"""Drift detection, numpy only: batch and streaming detectors behind two protocols."""

from prodwrap.drift._base import (
    BatchDetector,
    DriftDetector,
    DriftResult,
    StreamDetector,
    available,
    detector,
    register,
)
from prodwrap.drift._monitor import DriftMonitor, DriftStats

__all__ = [
    "BatchDetector",
    "DriftDetector",
    "DriftMonitor",
    "DriftResult",
    "DriftStats",
    "StreamDetector",
    "available",
    "detector",
    "register",
]
