"""What a DriftMonitor's check hands on: corrected results, the stats snapshot, its description."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prodwrap.drift._base import DriftResult
from prodwrap.drift._corrections import Correction, correct
from prodwrap.drift._features import Key

if TYPE_CHECKING:
    from prodwrap.drift._monitor import DriftMonitor


@dataclass(frozen=True, slots=True)
class DriftStats:
    """The drift section of ``model.stats()``: what a report needs, as one snapshot.

    Attributes:
        observed: observations so far. checks: checks run. alerts: drifted features
        reported. failures: detector, callback or metric failures (counted, never raised).
        latest: feature -> latest result. feedback / unmatched_feedback: labels matched to an
        output / whose output was no longer held. coalesced: due checks folded into one
        already due (checks on the background thread test the latest window; under load
        some windows are never tested on their own).
        missing: feature -> values of the latest check's window left out as NaN, +/-inf, None
        or absent, in a numeric feature (features with none left out are absent; a feature
        left with no value at all has no entry in ``latest`` for that check). window, check_every, correction, features
        (feature -> detector class name), closed: the configuration, for a report.
    """

    observed: int
    checks: int
    alerts: int
    failures: int
    latest: Mapping[Key, DriftResult]
    feedback: int = 0
    unmatched_feedback: int = 0
    coalesced: int = 0
    missing: Mapping[Key, int] = field(default_factory=dict)
    window: int = 0
    check_every: int = 0
    correction: Correction = None
    features: Mapping[Key, str] = field(default_factory=dict)
    closed: bool = False


def finished(
    raw: list[tuple[Key, DriftResult]], missing: Mapping[Key, int], correction: Correction
) -> list[DriftResult]:
    """Each result with its feature, its corrected level and decision, and its missing count.

    ``correction`` applies across the results with a p-value (each at its detector's own
    threshold for Bonferroni); the others keep their threshold and decision.
    """
    tested = [i for i, (_, r) in enumerate(raw) if r.p_value is not None]
    decided: dict[int, tuple[float, bool]] = {}
    if tested and correction is not None:
        p_values = [raw[i][1].p_value or 0.0 for i in tested]
        levels = [raw[i][1].threshold for i in tested]
        decided = dict(zip(tested, correct(p_values, levels, correction), strict=True))
    out = []
    for i, (key, result) in enumerate(raw):
        level, drifted = decided.get(i, (result.threshold, result.drifted))
        feature = key if result.feature is None else result.feature
        out.append(amend(result, feature, level, drifted, missing.get(key, 0)))
    return out


def amend(result: DriftResult, feature: Key, threshold: float, drifted: bool, n_missing: int) -> DriftResult:
    """``result`` with these four fields set: built directly for a plain DriftResult (a
    ``dataclasses.replace`` costs ~10 µs, several per check), replaced for a subclass."""
    if (result.feature, result.threshold, result.drifted, result.n_missing) == (feature, threshold, drifted, n_missing):
        return result
    if type(result) is not DriftResult:
        return dataclasses.replace(result, feature=feature, threshold=threshold, drifted=drifted, n_missing=n_missing)
    return DriftResult(
        result.detector,
        feature,
        result.statistic,
        result.p_value,
        threshold,
        drifted,
        result.n_reference,
        result.n_current,
        result.empty_bins,
        result.details,
        n_missing,
    )


def description(monitor: DriftMonitor) -> dict[str, Any]:
    """``monitor.describe()``: its features and their detectors, options and reference, keys as
    text (``n_reference``: the values each feature's detector was fitted on; ``reference_missing``:
    the None, NaN and +/-inf left out of a numeric feature's)."""
    return {
        "features": {str(k): type(d).__name__ for k, d in monitor.detectors.items()},
        "window": monitor.window,
        "check_every": monitor.check_every,
        "correction": monitor.correction,
        "background": monitor.background,
        "reference_fingerprint": monitor.fingerprint,
        "n_reference": {str(k): len(c) for k, c in monitor.columns.items()},
        "reference_missing": {str(k): n for k, n in monitor.reference_missing.items()},
        "performance": None if monitor.performance is None else type(monitor.performance).__name__,
        "sensitive": sorted(map(str, monitor.sensitive)),
    }
