"""Performance monitoring: ground truth arrives later, its errors feed a stream detector.

Outputs wait for their label in a bounded LRU map keyed by prediction id (the oldest are
dropped first, so delayed labels cost bounded memory). Each label becomes one error value
(``metric(output, actual)``) fed to the stream detector; a detection is a drift alert on the
feature ``"performance"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cachetools

from prodwrap._record import MISSING
from prodwrap.drift._base import DriftResult, StreamDetector
from prodwrap.drift._features import unwrap_output


def default_metric(output: Any, actual: Any) -> float:
    """Absolute error for floats; 0/1 error for labels (str, bool, int, anything else)."""
    if isinstance(output, float) and isinstance(actual, int | float) and not isinstance(actual, bool):
        return abs(output - float(actual))
    return 0.0 if output == actual else 1.0


class Performance:
    """The error stream of one model and the detector watching it."""

    def __init__(self, detector: StreamDetector, metric: Callable[[Any, Any], float] | None, max_pending: int) -> None:
        self.detector = detector
        self.metric = metric or default_metric
        self.received = 0  # labels matched to an output
        self.unmatched = 0  # labels whose output was unknown or already dropped
        self._outputs: cachetools.LRUCache[str, Any] = cachetools.LRUCache(maxsize=max_pending)

    def remember(self, prediction_id: str, output: Any) -> None:
        self._outputs[prediction_id] = output

    def feedback(self, prediction_id: str, actual: Any) -> tuple[bool, DriftResult | None]:
        """``(matched, alert)``; the metric or detector may raise (the caller counts it)."""
        output = self._outputs.pop(prediction_id, MISSING)
        if output is MISSING:
            self.unmatched += 1
            return False, None
        self.received += 1
        error = float(self.metric(unwrap_output(output), actual))
        if not self.detector.update(error):
            return True, None
        return True, DriftResult(
            detector=type(self.detector).__name__.lower(),
            feature="performance",
            statistic=error,
            p_value=None,
            threshold=float("nan"),
            drifted=True,
            n_reference=0,
            n_current=self.received,
        )
