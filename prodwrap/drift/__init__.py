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
from prodwrap.drift._binned import PSI, Hellinger, JensenShannon
from prodwrap.drift._chisquare import ChiSquare
from prodwrap.drift._ks import KS
from prodwrap.drift._mmd import MMD
from prodwrap.drift._monitor import DriftMonitor, DriftStats
from prodwrap.drift._wasserstein import Wasserstein

__all__ = [
    "KS",
    "MMD",
    "PSI",
    "BatchDetector",
    "ChiSquare",
    "DriftDetector",
    "DriftMonitor",
    "DriftResult",
    "DriftStats",
    "Hellinger",
    "JensenShannon",
    "StreamDetector",
    "Wasserstein",
    "available",
    "detector",
    "register",
]
