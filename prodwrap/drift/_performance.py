"""Performance monitoring: ground truth arrives later, its errors feed a stream detector.

Outputs wait for their label in a bounded map keyed by prediction id, oldest dropped first
(an ``OrderedDict`` under a lock: ``remember`` runs once per prediction, from any thread, and
costs one short critical section). Each label becomes one error value
(``metric(output, actual)``) fed to the stream detector, one label at a time (the detector's
own lock: stream detectors are not thread-safe); a detection is a drift alert on the feature
``"performance"``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from numbers import Real
from typing import Any

import numpy as np

from prodwrap._record import MISSING
from prodwrap.drift._base import DriftResult, StreamDetector
from prodwrap.drift._features import unwrap_output


def _is_float(value: Any) -> bool:
    return isinstance(value, float | np.floating)


def _is_number(value: Any) -> bool:
    """A real number that is not a bool (Python's or numpy's)."""
    return isinstance(value, Real) and not isinstance(value, bool | np.bool_)


def default_metric(output: Any, actual: Any) -> float:
    """Absolute error for float outputs; 0/1 error for labels.

    A float output (``float`` or any numpy floating type) against a number (int or float of
    any kind, not a bool) gives ``|output - actual|``. Anything else (str, bool, an integer
    output, ...) is a label: 0.0 if equal, else 1.0.
    """
    if _is_float(output) and _is_number(actual):
        return abs(float(output) - float(actual))
    return 0.0 if output == actual else 1.0


class Unfed(Exception):
    """The metric or the detector raised ``error`` on a label; ``values``: the output and the
    label it was given."""

    def __init__(self, error: Exception, values: tuple[Any, Any]) -> None:
        super().__init__(error)
        self.error, self.values = error, values


class Performance:
    """The error stream of one model and the detector watching it (thread-safe)."""

    def __init__(self, detector: StreamDetector, metric: Callable[[Any, Any], float] | None, max_pending: int) -> None:
        self.detector = detector
        self.metric = metric or default_metric
        self.max_pending = max_pending
        self.received = 0  # labels matched to an output
        self.unmatched = 0  # labels whose output was unknown or already dropped
        self._outputs: OrderedDict[str, Any] = OrderedDict()
        self._held = threading.Lock()  # the outputs map and the two counts
        self._feeding = threading.Lock()  # the metric and the detector: one label at a time

    def remember(self, prediction_id: str, output: Any) -> None:
        """Hold ``output`` for a later label; the oldest is dropped past ``max_pending``."""
        with self._held:
            self._outputs[prediction_id] = output
            if len(self._outputs) > self.max_pending:
                self._outputs.popitem(last=False)

    def feedback(self, prediction_id: str, actual: Any) -> tuple[bool, DriftResult | None]:
        """``(matched, alert)``; the metric or detector may raise (the caller counts it)."""
        with self._held:
            output = self._outputs.pop(prediction_id, MISSING)
            if output is MISSING:
                self.unmatched += 1
                return False, None
            self.received += 1
            received = self.received
        with self._feeding:
            output = unwrap_output(output)
            try:
                error = float(self.metric(output, actual))
                detected = self.detector.update(error)
            except Exception as exc:  # (with the values it was given: a fault line may mask them)
                raise Unfed(exc, (output, actual)) from None
        if not detected:
            return True, None
        return True, DriftResult(
            detector=type(self.detector).__name__.lower(),
            feature="performance",
            statistic=error,
            p_value=None,
            threshold=float("nan"),
            drifted=True,
            n_reference=0,
            n_current=received,
        )
