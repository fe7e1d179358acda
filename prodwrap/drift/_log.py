"""Logging for the drift package: alerts at WARNING, and faults throttled to one line per burst.

DESIGN §1: a drift alert is logged at WARNING whether or not ``on_drift`` is set, with its fields
in ``extra=``; a fault of prodwrap's own parts is logged at WARNING once per burst, not per call.
:class:`Throttle` is that "once per burst" rule, written once (it belongs in a shared
``prodwrap/_log.py`` when other packages need it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any

log = logging.getLogger("prodwrap.drift")


class Throttle:
    """Log a recurring fault at most once per ``interval`` seconds per key.

    The first fault of a key is logged at once (with its traceback when ``exc_info`` is
    given); the same key's faults in the next ``interval`` seconds are counted, not logged,
    and the next line logged for that key says how many were left out. So a detector failing
    at every check of a busy monitor writes one line a minute, not one per check.

    Args:
        logger: where the lines go.
        interval: seconds between two lines of one key (> 0).
        clock: monotonic seconds (default ``time.monotonic``), swappable in tests.

    Thread-safe; never raises from :meth:`warning` (a failing handler is logging's business).
    """

    def __init__(
        self, logger: logging.Logger, interval: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not interval > 0:
            raise ValueError(f"Throttle: interval must be > 0 seconds, got {interval!r}")
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._last: dict[Hashable, float] = {}  # key -> when its last line was logged
        self._suppressed: dict[Hashable, int] = {}

    def warning(
        self,
        key: Hashable,
        msg: str,
        *args: Any,
        exc_info: BaseException | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> bool:
        """Log ``msg % args`` at WARNING unless ``key`` was logged within ``interval``; True if logged."""
        now = self.clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False
            self._last[key] = now
            left_out = self._suppressed.pop(key, 0)
        if left_out:
            msg += f" ({left_out} more like it in the last {self.interval:g} s were not logged)"
        self.logger.warning(msg, *args, exc_info=exc_info, extra=dict(extra or {}), stacklevel=2)
        return True


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
