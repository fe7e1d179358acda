"""prodwrap's loggers and the "once per burst" rule for faults (DESIGN §1, Logging).

Logger ``prodwrap`` with children per part (``prodwrap.model``, ``prodwrap.workers``, ...).
A retry is logged at DEBUG, a call served by a fallback or refused by a policy at INFO, a
fault of prodwrap's own parts (an observer, an exporter) at WARNING, once per burst: the
first fault of a kind is logged, the next ones within ``BURST_SECONDS`` are only counted, and
the next log line says how many were left out.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

BURST_SECONDS = 60.0

log = logging.getLogger("prodwrap")


def logger(part: str) -> logging.Logger:
    """The child logger of one part (``prodwrap.<part>``)."""
    return log.getChild(part)


class Burst:
    """Logs a fault of one kind at most once per ``seconds`` (real time), counting the rest."""

    __slots__ = ("_last", "_lock", "_logger", "_seconds", "_skipped")

    def __init__(self, logger: logging.Logger, seconds: float = BURST_SECONDS) -> None:
        self._logger = logger
        self._seconds = seconds
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def warning(self, key: str, message: str, *args: Any, exc_info: Any = None, extra: Any = None) -> bool:
        """Log ``message % args`` at WARNING unless ``key`` was logged within the burst.

        Returns whether it was logged. Never raises (a failing handler is logging's business).
        """
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._seconds:
                self._skipped[key] = self._skipped.get(key, 0) + 1
                return False
            self._last[key] = now
            skipped = self._skipped.pop(key, 0)
        if skipped:
            message += f" ({skipped} more like it in the last burst not logged)"
        self._logger.warning(message, *args, exc_info=exc_info, extra=extra)
        return True
