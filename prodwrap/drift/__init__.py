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

__all__ = [
    "BatchDetector",
    "DriftDetector",
    "DriftResult",
    "StreamDetector",
    "available",
    "detector",
    "register",
]
