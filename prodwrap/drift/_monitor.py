"""``DriftMonitor``: watches a model's inputs and output against a reference.

The hot path (``observe``) appends the call's validated input and output to a bounded
window (a ``deque`` with ``maxlen=window``: a preallocated ring of references) and counts;
every ``check_every`` observations a check is due. Checks run off the hot path on one
daemon thread (``_checker``: started on the first due check, never at import, holding only
a weak reference to the monitor), or inline when ``background=False``. One check runs at a
time. A check turns the window into feature columns (a numeric feature's NaN, +/-inf and
None left out and counted), runs each feature's detector (on sealed labels, for a sensitive
categorical feature loaded from a file), applies the multiple-testing correction across
p-value detectors, keeps no value of a sensitive feature in its result (``_sensitive``), and
delivers alerts (a WARNING log line, ``on_drift``, ``stats()``, the
``prodwrap.drift.score`` metric). A failing detector, callback or metric never reaches the
prediction: it is counted and logged (once per burst). Anything but ``KeyboardInterrupt``
counts as such a failure; ``KeyboardInterrupt`` reaches the caller of an inline or manual
check (it is the user's Ctrl-C), and is counted like the rest on the checker thread.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from prodwrap._scope import SCOPE, emit
from prodwrap.drift import _persist
from prodwrap.drift._base import DriftResult, StreamDetector
from prodwrap.drift._checker import Checker
from prodwrap.drift._corrections import Correction
from prodwrap.drift._features import (
    OUTPUT,
    Key,
    both_references,
    fingerprint,
    is_numeric,
    window_columns,
)
from prodwrap.drift._log import Throttle, log, log_alert
from prodwrap.drift._performance import Performance, Unfed
from prodwrap.drift._score import Scores
from prodwrap.drift._sensitive import Hidden, window_mask
from prodwrap.drift._setup import check_levels, check_options, chosen_features, fitted_detectors, sensitive_keys
from prodwrap.drift._summary import DriftStats, description, finished
from prodwrap.errors import ConfigurationError

ALERTS_KEPT = 100


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
            (default: that of each model with telemetry the monitor is attached to, the
            model's ``meter_provider=`` or else the test scope's or the global one, read at
            check time; a monitor attached to no such model uses the latter).
        sensitive: feature keys whose values are never shown (tested all the same), with those
            a model's specs mark (:meth:`mark_sensitive`) and those whose reference holds secrets.

    Raises:
        ConfigurationError: an option that makes no sense (naming it): an empty reference,
            unknown or no features, a bad window, an unknown correction, an output reference of
            several columns, or a reference column its detector refuses (a numeric one left
            with no value once its None, NaN and +/-inf are left out and counted in
            ``reference_missing``, ...), naming the feature.
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
        sensitive: Iterable[Key] = (),
    ) -> None:
        check_options(window, check_every, max_pending, correction, on_drift, performance, metric)
        columns = (ref := both_references(reference, output_reference)).columns
        self._width = reference.shape[1] if isinstance(reference, np.ndarray) and reference.ndim == 2 else None
        chosen = chosen_features(features, columns)
        self._hidden = Hidden(sensitive_keys(sensitive, columns) | ref.marked)
        self.window = window
        self.check_every = check_every or window
        self.correction: Correction = correction
        self.on_drift = on_drift
        self.background = background
        self.performance = performance
        self._performance = None if performance is None else Performance(performance, metric, max_pending)
        self.meter_provider = meter_provider
        self.columns = {k: columns[k] for k in chosen}
        self.reference_missing = {k: ref.missing[k] for k in chosen}  # None, NaN, +/-inf left out of a column
        self.detectors = fitted_detectors(chosen, self.columns, window, self.reference_missing, self._hidden.keys)
        check_levels(correction, self.detectors)
        self._numeric = {k: is_numeric(c) for k, c in self.columns.items()}
        self._positions: dict[Key, int] | None = None  # name -> column, once named
        self.fingerprint = fingerprint(self.columns, _persist.config(self))
        self._buffer: deque[tuple[Any, Any]] = deque(maxlen=window)
        self._seen = itertools.count(1)
        self._observed = 0  # the latest sequence number (a racing observe may briefly lag it)
        self._lock = threading.Lock()  # every counter below, and latest / missing / alerts
        self._checking = threading.Lock()  # one check at a time on these detectors
        self._checker = Checker()
        self._closed = weakref.finalize(self, self._checker.close, False)
        self._throttle = Throttle(log)
        self._checks = self._alert_count = self._failures = self._inline_coalesced = 0
        self._latest: dict[Key, DriftResult] = {}
        self._missing: dict[Key, int] = {}
        self.alerts: deque[DriftResult] = deque(maxlen=ALERTS_KEPT)
        self._scores = Scores()  # where the prodwrap.drift.score gauge goes, but for meter_provider=

    def name_features(self, names: Sequence[str]) -> None:
        """Name an array reference's features ``0..d-1`` after ``names`` (a schema's fields, in order).

        Applies only when the reference was a 2-D numpy array of width ``len(names)`` whose
        features are still numbered; otherwise (another kind of reference, another width,
        already named) it does nothing, so calling it again, or from several models, is safe.
        From then on results, stats, reports and ``on_drift`` use the names; pydantic and dict
        inputs are read by name, array and list inputs by position.
        """
        names = [str(n) for n in names]
        if self._width is None or self._width != len(names) or self._positions is not None:
            return
        if len(set(names)) != len(names) or OUTPUT in names:
            return  # names that would collide: keep the numbers
        rename: dict[Key | None, Key] = {i: names[i] for i in range(self._width)}
        with self._checking, self._lock:
            self.columns = {rename.get(k, k): c for k, c in self.columns.items()}
            self.detectors = {rename.get(k, k): d for k, d in self.detectors.items()}
            self._numeric = {rename.get(k, k): v for k, v in self._numeric.items()}
            self.reference_missing = {rename.get(k, k): v for k, v in self.reference_missing.items()}
            self._latest = {
                rename.get(k, k): dataclasses.replace(r, feature=rename.get(k, k)) for k, r in self._latest.items()
            }
            self._missing = {rename.get(k, k): v for k, v in self._missing.items()}
            kept = [dataclasses.replace(r, feature=rename.get(r.feature, r.feature)) for r in self.alerts]
            self.alerts = deque(kept, maxlen=ALERTS_KEPT)
            self._hidden.rename(rename)
            self._positions = {names[i]: i for i in range(self._width)}
            self.fingerprint = fingerprint(self.columns, _persist.config(self))

    @property
    def sensitive(self) -> frozenset[Key]:
        """The features whose values results and fault lines never show."""
        return self._hidden.keys

    def mark_sensitive(self, keys: Iterable[Key]) -> None:
        """Never show the values of these features (those the monitor watches; others are
        ignored). A model calls it with the features its ``input=``/``output=`` specs mark
        sensitive; marks only add, so calling it again, or from several models, is safe.
        Results already kept (``report()``, ``stats()``, ``alerts``) are redacted too."""
        wanted = {k for k in keys if k in self.detectors}
        if wanted <= self._hidden.keys:  # (no lock: an on_drift that recompiles a model never waits on itself)
            return
        with self._lock:  # (a check stores its results under it, redacted as the marks then say)
            new = self._hidden.add(wanted)
            hide = self._hidden.result
            self._latest = {k: hide(r, self.detectors[k]) if k in new else r for k, r in self._latest.items()}
            kept = [hide(r, self.detectors[r.feature]) if r.feature in new else r for r in self.alerts]
            self.alerts = deque(kept, maxlen=ALERTS_KEPT)

    def _shown(self, key: Any, result: DriftResult, values: Any = None) -> DriftResult:
        """``result`` as it may be shown: without values when ``key`` is sensitive."""
        return self._hidden.result(result, self.detectors[key], values) if key in self._hidden else result

    # -- hot path --------------------------------------------------------------------------

    def observe(self, value: Any, output: Any) -> tuple[DriftResult, ...]:
        """Record one prediction's validated input and output (never raises but KeyboardInterrupt).

        Returns the alerts of a check this observation ran inline (``background=False``),
        else ``()``. After :meth:`close` it only records (no check is started).
        """
        self._buffer.append((value, output))
        self._observed = seen = next(self._seen)
        if seen % self.check_every:
            return ()
        if self.background:
            self._checker.schedule(self)
            return ()
        if self._checker.closed:
            return ()
        if not self._checking.acquire(blocking=False):  # another call's inline check is running
            with self._lock:
                self._inline_coalesced += 1
            return ()
        try:
            return tuple(r for r in self._check_quietly() if r.drifted)
        finally:
            self._checking.release()

    # -- checks ----------------------------------------------------------------------------

    def _background_check(self) -> None:
        """The checker thread's check: even KeyboardInterrupt is a counted fault here."""
        with self._checking:
            try:
                self._check_now()
            except BaseException as exc:  # even KeyboardInterrupt: the checker goes on
                self._fault(("check",), "the drift check failed", exc)

    def _check_quietly(self) -> list[DriftResult]:
        try:
            return self._check_now()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # never reaches a prediction
            self._fault(("check",), "the drift check failed", exc)
            return []

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no background check is due or running; False if ``timeout`` passed."""
        return self._checker.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Stop the checker thread after its current check (a due check not started is
        dropped) and wait up to ``timeout`` seconds (None: as long as it takes) for it to end.

        Idempotent. Afterwards ``observe`` only records the observation; ``check()`` still
        runs when asked.
        """
        self._checker.close(join=True, timeout=timeout)

    def __enter__(self) -> DriftMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()  # (``with pw.DriftMonitor(reference) as monitor:``)

    @property
    def closed(self) -> bool:
        return self._checker.closed

    def check(self) -> list[DriftResult]:
        """Test the current window now; call ``on_drift`` for each drifted feature first.

        Waits for a background check in progress (one check at a time). Returns every
        feature's ``DriftResult`` (features whose detector failed, or with no values in the
        window, are left out: counted as failures, or shown in ``stats().missing``).
        """
        with self._checking:
            return self._check_now()

    def _check_now(self) -> list[DriftResult]:
        columns, missing = window_columns(list(self._buffer), list(self.detectors), self._numeric, self._positions)
        raw: list[tuple[Key, DriftResult]] = []
        for key, det in self.detectors.items():
            values = columns[key]
            if len(values) == 0:
                continue
            try:
                result = det.test(self._hidden.tested(key, values))  # (sealed as a loaded sensitive reference is)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # a detector fault is counted, not raised
                what = f"drift detector {type(det).__name__} failed on feature {key!r}"
                self._fault(("detector", key), what, exc, window_mask(values) if key in self._hidden else None)
                continue
            raw.append((key, result))
        results = finished(raw, missing, self.correction)
        with self._lock:
            results = [self._shown(key, r, columns[key]) for (key, _), r in zip(raw, results, strict=True)]
            self._checks += 1
            self._missing = {k: n for k, n in missing.items() if n}
            self._latest.update(zip([key for key, _ in raw], results, strict=True))
        for result in results:
            self._export(result)
            if result.drifted:
                self._alert(result)
        return results

    def _fault(self, part: Hashable, what: str, exc: BaseException, masked: Any = None) -> None:
        with self._lock:
            self._failures += 1
        self._throttle.warning(part, "prodwrap: %s: %s: %s", what, type(exc).__name__, exc, exc_info=exc, masked=masked)

    def _alert(self, result: DriftResult) -> None:
        with self._lock:
            self._alert_count += 1
            self.alerts.append(result)
        log_alert(result)
        if SCOPE.on:  # a test's capture() is in force
            emit("drift", result)
        if self.on_drift is not None:
            try:
                self.on_drift(result)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # a callback fault is counted, not raised
                self._fault(("on_drift",), "the on_drift callback failed", exc)

    def _export(self, result: DriftResult) -> None:
        try:
            self._scores.set(self.meter_provider, result.statistic, str(result.feature), result.detector)
        except Exception as exc:
            self._fault(("metric",), "exporting the drift metric failed", exc)

    # -- feedback ----------------------------------------------------------------------------

    def remember(self, prediction_id: str, output: Any) -> None:
        """Keep an output until its ground truth arrives (bounded; oldest dropped). Never raises."""
        if self._performance is not None:
            try:
                self._performance.remember(prediction_id, output)
            except Exception as exc:
                self._fault(("remember",), "remembering an output for feedback failed", exc)

    def feedback(self, prediction_id: str, actual: Any) -> bool:
        """Ground truth for an earlier prediction; False if its output is no longer known.

        Thread-safe. A failing metric or detector is counted and logged, the label matched.

        Raises:
            ConfigurationError: the monitor has no ``performance=`` detector.
        """
        if self._performance is None:
            raise ConfigurationError("DriftMonitor: feedback needs performance= (a stream detector)")
        try:
            matched, alert = self._performance.feedback(prediction_id, actual)
        except Unfed as unfed:  # (a sensitive output: what the metric was given is masked in the line)
            masked = window_mask(unfed.values) if OUTPUT in self._hidden else None
            self._fault(("performance",), "performance monitoring failed", unfed.error, masked)
            return True
        if alert is not None:
            self._alert(alert)
        return matched

    # -- persistence -----------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str], *, key: bytes | None = None) -> None:
        """Write the reference and configuration to ``path`` (.npz + JSON, no pickle; ``key``: ``_persist.save``)."""
        _persist.save(self, path, key)

    @classmethod
    def load(cls, path: str | os.PathLike[str], **options: Any) -> DriftMonitor:
        """A monitor from a file written by :meth:`save`; ``options`` as for the constructor
        (``on_drift=``, ...), and ``key=``, the key a file was saved with, if any.

        Raises:
            ConfigurationError: for anything but an intact file ``save`` wrote (missing, truncated,
                foreign, with data or parameters changed, or without its right key), naming the file.
        """
        return _persist.load(path, **options)

    # -- reading ----------------------------------------------------------------------------

    def report(self) -> dict[Key, DriftResult]:
        """Feature -> the latest ``DriftResult``."""
        with self._lock:
            return dict(self._latest)

    def stats(self) -> DriftStats:
        with self._lock:
            return DriftStats(
                observed=self._observed,
                checks=self._checks,
                coalesced=self._checker.coalesced + self._inline_coalesced,
                alerts=self._alert_count,
                failures=self._failures,
                latest=dict(self._latest),
                feedback=0 if self._performance is None else self._performance.received,
                unmatched_feedback=0 if self._performance is None else self._performance.unmatched,
                missing=dict(self._missing),
                window=self.window,
                check_every=self.check_every,
                correction=self.correction,
                features={k: type(d).__name__ for k, d in self.detectors.items()},
                closed=self._checker.closed,
            )

    def describe(self) -> dict[str, Any]:
        """The configuration and the reference, for ``model.describe()`` (see ``_summary.description``)."""
        return description(self)
