"""``DriftMonitor``: watches a model's inputs and output against a reference.

The hot path (``observe``) appends the call's validated input and output to a bounded
window (a ``deque`` with ``maxlen=window``: a preallocated ring of references) and counts;
every ``check_every`` observations a check is due. Checks run off the hot path on one
daemon thread (started on the first check, never at import), or inline when
``background=False``. A check turns the window into feature columns, runs each feature's
detector, applies the multiple-testing correction across p-value detectors, and delivers
alerts (``on_drift``, ``stats()``, the ``prodwrap.drift.score`` metric). A failing detector,
callback or metric never reaches the prediction: it is counted and logged.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from prodwrap.drift import _persist
from prodwrap.drift._base import DriftResult, StreamDetector, detector
from prodwrap.drift._corrections import CORRECTIONS, Correction, correct
from prodwrap.drift._features import (
    OUTPUT,
    Key,
    fingerprint,
    is_numeric,
    reference_columns,
    window_columns,
)
from prodwrap.drift._performance import Performance
from prodwrap.errors import ConfigurationError

log = logging.getLogger("prodwrap")

SMALL_WINDOW = 5000  # numeric features: KS up to this window, PSI above (binned, O(n))
ALERTS_KEPT = 100


def default_detector(col: np.ndarray, window: int) -> Any:
    """KS for numeric features in small windows, PSI in large ones, chi-square for categories.

    The default KS uses the asymptotic p-value (``method="asymp"``): a check then costs
    milliseconds whatever the reference size (pass ``features={key: pw.drift.KS()}`` for
    scipy's exact small-sample p-values).
    """
    if not is_numeric(col):
        return detector("chisquare")
    return detector("ks", method="asymp") if window <= SMALL_WINDOW else detector("psi")


@dataclass(frozen=True, slots=True)
class DriftStats:
    """The drift section of ``model.stats()``.

    Attributes:
        observed: observations so far. checks: checks run. alerts: drifted features
        reported. failures: detector, callback or metric failures (counted, never raised).
        latest: feature -> latest result. feedback / unmatched_feedback: labels matched to an
        output / whose output was no longer held. coalesced: due checks folded into one
        already due (checks on the background thread test the latest window; under load
        some windows are never tested on their own).
    """

    observed: int
    checks: int
    alerts: int
    failures: int
    latest: Mapping[Key, DriftResult]
    feedback: int = 0
    unmatched_feedback: int = 0
    coalesced: int = 0


class DriftMonitor:
    """Watch features of the inputs (and the output) for drift against a reference.

    Args:
        reference: the data the model was trained or validated on (see ``_features``).
        features: None (every reference feature, detector chosen by type), a list of
            feature keys, or a mapping key -> detector (instance, registered name or None).
        window: observations in the current window (the sample each check tests).
        check_every: observations between checks (default: ``window``).
        correction: ``"bonferroni"`` (default), ``"holm"``, ``"fdr"`` or None, across the
            p-value detectors of one check; distance detectors keep their threshold.
        on_drift: called with one ``DriftResult`` per drifted feature per check.
        output_reference: reference outputs; when given, the output is feature ``"output"``.
        background: run due checks on a background thread (default) or inline.
        performance: a stream detector fed the error of each ``feedback``.
        metric: ``(output, actual) -> error`` for feedback (default: :func:`default_metric`).
        max_pending: outputs kept awaiting feedback (oldest dropped first).
        meter_provider: OpenTelemetry meter provider for ``prodwrap.drift.score``
            (default: the global one at check time).

    Raises:
        ConfigurationError: unknown features, bad window, unknown correction.
        ValueError: a reference column a detector cannot use (NaN in a numeric column, ...).
    """

    def __init__(
        self,
        reference: Any,
        features: Mapping[Key, Any] | Sequence[Key] | None = None,
        window: int = 1000,
        check_every: int | None = None,
        correction: Correction = "bonferroni",
        on_drift: Callable[[DriftResult], Any] | None = None,
        *,
        output_reference: Any = None,
        background: bool = True,
        performance: StreamDetector | None = None,
        metric: Callable[[Any, Any], float] | None = None,
        max_pending: int = 100_000,
        meter_provider: Any = None,
    ) -> None:
        for name, value, low in (
            ("window", window, 2),
            ("check_every", check_every, 1),
            ("max_pending", max_pending, 1),
        ):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                raise ConfigurationError(f"DriftMonitor: {name} must be an int >= {low}, got {value!r}")
        if correction not in CORRECTIONS:
            raise ConfigurationError(f"DriftMonitor: correction must be one of {CORRECTIONS}, got {correction!r}")
        columns = reference_columns(reference)
        if output_reference is not None:
            columns[OUTPUT] = reference_columns(
                np.asarray(output_reference) if not isinstance(output_reference, list) else output_reference
            )[0]
        chosen: Mapping[Key, Any] = (
            dict.fromkeys(columns)
            if features is None
            else features
            if isinstance(features, Mapping)
            else dict.fromkeys(features)
        )
        unknown = [k for k in chosen if k not in columns]
        if unknown:
            raise ConfigurationError(f"DriftMonitor: unknown feature(s) {unknown}; the reference has {list(columns)}")
        self.window = window
        self.check_every = check_every or window
        self.correction: Correction = correction
        self.on_drift = on_drift
        self.background = background
        self.performance = performance
        self._performance = None if performance is None else Performance(performance, metric, max_pending)
        self.meter_provider = meter_provider
        self.columns = {k: columns[k] for k in chosen}
        self.detectors: dict[Key, Any] = {}
        for key, spec in chosen.items():
            det = detector(spec) if isinstance(spec, str) else spec
            det = default_detector(self.columns[key], window) if det is None else det
            det.fit(self.columns[key])
            self.detectors[key] = det
        self._check_levels()
        self.fingerprint = fingerprint(self.columns)
        self._numeric = {k: is_numeric(c) for k, c in self.columns.items()}
        self._buffer: deque[tuple[Any, Any]] = deque(maxlen=window)
        self._seen = itertools.count(1)
        self._observed = 0  # observations so far (the latest sequence number)
        self._coalesced = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = False
        self._running = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._checks = self._alert_count = self._failures = 0
        self._latest: dict[Key, DriftResult] = {}
        self.alerts: deque[DriftResult] = deque(maxlen=ALERTS_KEPT)
        self._gauge: Any = None

    def _check_levels(self) -> None:
        if self.correction in ("holm", "fdr"):
            levels = {d.threshold for d in self.detectors.values() if getattr(d, "uses_p_value", False)}
            if len(levels) > 1:
                raise ConfigurationError(
                    f"DriftMonitor: {self.correction} needs one significance level across p-value detectors, "
                    f"got {sorted(levels)}"
                )

    # -- hot path --------------------------------------------------------------------------

    def observe(self, value: Any, output: Any) -> tuple[DriftResult, ...]:
        """Record one prediction's validated input and output (never raises).

        Returns the alerts of a check this observation ran inline (``background=False``),
        else ``()``.
        """
        self._buffer.append((value, output))
        self._observed = seen = next(self._seen)
        if seen % self.check_every:
            return ()
        if self.background:
            self._schedule()
            return ()
        return tuple(r for r in self._check_quietly() if r.drifted)

    # -- checks ----------------------------------------------------------------------------

    def _schedule(self) -> None:
        with self._lock:
            if self._pending:
                self._coalesced += 1  # a check is already due: it will test the latest window
                return
            self._pending = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._run_checks, name="prodwrap-drift", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run_checks(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                if not self._pending:
                    continue
                self._pending = False
                self._running = True
            try:
                self._check_quietly()
            finally:
                with self._lock:
                    self._running = False
                    self._idle.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no background check is due or running; False if ``timeout`` passed."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._pending and not self._running, timeout)

    def _check_quietly(self) -> list[DriftResult]:
        try:
            return self.check()
        except Exception:  # never reaches a prediction
            self._failures += 1
            log.exception("prodwrap: drift check failed")
            return []

    def check(self) -> list[DriftResult]:
        """Test the current window now; call ``on_drift`` for each drifted feature first.

        Returns every feature's ``DriftResult`` (features whose detector failed, or with no
        values in the window, are left out and counted as failures / skipped).
        """
        snapshot = list(self._buffer)
        columns = window_columns(snapshot, list(self.detectors), self._numeric)
        raw: list[tuple[Key, DriftResult]] = []
        for key, det in self.detectors.items():
            values = columns[key]
            if len(values) == 0:
                continue
            try:
                result = det.test(values)
            except Exception:
                self._failures += 1
                log.exception("prodwrap: drift detector %r failed on feature %r", type(det).__name__, key)
                continue
            if result.feature is None:
                result = dataclasses.replace(result, feature=key)
            raw.append((key, result))
        results = self._corrected(raw)
        self._checks += 1
        for key, result in zip((k for k, _ in raw), results, strict=True):
            self._latest[key] = result
            self._export(result)
            if result.drifted:
                self._alert(result)
        return results

    def _corrected(self, raw: list[tuple[Key, DriftResult]]) -> list[DriftResult]:
        results = [r for _, r in raw]
        tested = [i for i, r in enumerate(results) if r.p_value is not None]
        if not tested or self.correction is None:
            return results
        p_values = [results[i].p_value or 0.0 for i in tested]
        if self.correction == "bonferroni":
            m = len(tested)
            decided = [
                (results[i].threshold / m, p < results[i].threshold / m) for i, p in zip(tested, p_values, strict=True)
            ]
        else:
            decided = correct(p_values, results[tested[0]].threshold, self.correction)
        for i, (level, rejected) in zip(tested, decided, strict=True):
            results[i] = dataclasses.replace(results[i], threshold=level, drifted=rejected)
        return results

    def _alert(self, result: DriftResult) -> None:
        self._alert_count += 1
        self.alerts.append(result)
        if self.on_drift is not None:
            try:
                self.on_drift(result)
            except Exception:
                self._failures += 1
                log.exception("prodwrap: on_drift callback failed")

    def _export(self, result: DriftResult) -> None:
        try:
            if self._gauge is None:
                from opentelemetry import metrics

                provider = self.meter_provider or metrics.get_meter_provider()
                self._gauge = provider.get_meter("prodwrap").create_gauge(
                    "prodwrap.drift.score", description="drift statistic of the latest check", unit="1"
                )
            self._gauge.set(result.statistic, {"feature": str(result.feature), "detector": result.detector})
        except Exception:
            self._failures += 1
            log.exception("prodwrap: exporting the drift metric failed")

    # -- feedback ----------------------------------------------------------------------------

    def remember(self, prediction_id: str, output: Any) -> None:
        """Keep an output until its ground truth arrives (bounded; oldest dropped)."""
        if self._performance is not None:
            self._performance.remember(prediction_id, output)

    def feedback(self, prediction_id: str, actual: Any) -> bool:
        """Ground truth for an earlier prediction; False if its output is no longer known."""
        if self._performance is None:
            raise ConfigurationError("DriftMonitor: feedback needs performance= (a stream detector)")
        try:
            matched, alert = self._performance.feedback(prediction_id, actual)
        except Exception:
            self._failures += 1
            log.exception("prodwrap: performance monitoring failed")
            return True
        if alert is not None:
            self._alert(alert)
        return matched

    # -- persistence -----------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the reference and configuration to ``path`` (``.npz`` + JSON, never pickle)."""
        _persist.save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], **options: Any) -> DriftMonitor:
        """A monitor from a file written by :meth:`save`; ``options`` as for the constructor
        (``on_drift=``, ``performance=``, ...). Refuses data that does not match its fingerprint."""
        return _persist.load(path, **options)

    # -- reading ----------------------------------------------------------------------------

    def report(self) -> dict[Key, DriftResult]:
        """Feature -> the latest ``DriftResult``."""
        return dict(self._latest)

    def stats(self) -> DriftStats:
        return DriftStats(
            observed=self._observed,
            checks=self._checks,
            coalesced=self._coalesced,
            alerts=self._alert_count,
            failures=self._failures,
            latest=dict(self._latest),
            feedback=0 if self._performance is None else self._performance.received,
            unmatched_feedback=0 if self._performance is None else self._performance.unmatched,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "features": {str(k): type(d).__name__ for k, d in self.detectors.items()},
            "window": self.window,
            "check_every": self.check_every,
            "correction": self.correction,
            "background": self.background,
            "reference_fingerprint": self.fingerprint,
            "n_reference": {str(k): len(c) for k, c in self.columns.items()},
            "performance": None if self.performance is None else type(self.performance).__name__,
        }
