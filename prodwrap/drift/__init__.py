"""Drift detection, numpy only: batch and streaming detectors behind two protocols."""

from prodwrap.drift._adwin import ADWIN
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
from prodwrap.drift._kswin import KSWIN
from prodwrap.drift._mmd import MMD
from prodwrap.drift._monitor import DriftMonitor
from prodwrap.drift._stream import DDM, PageHinkley
from prodwrap.drift._summary import DriftStats
from prodwrap.drift._wasserstein import Wasserstein

__all__ = [
    "ADWIN",
    "DDM",
    "KS",
    "KSWIN",
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
    "PageHinkley",
    "StreamDetector",
    "Wasserstein",
    "available",
    "detector",
    "register",
]
