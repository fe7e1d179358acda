"""prodwrap's loggers and the "once per burst" rule for faults (DESIGN §1, Logging).

Logger ``prodwrap`` with children per part (``prodwrap.model``, ``prodwrap.workers``, ...).
A retry is logged at DEBUG, a call served by a fallback or refused by a policy at INFO, a
fault of prodwrap's own parts (an observer, an exporter) at WARNING, once per burst: the
first fault of a kind is logged, the next ones within ``BURST_SECONDS`` are only counted (:class:`Throttle`), and
the next log line says how many were left out.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Hashable, Mapping
from typing import Any

BURST_SECONDS = 60.0

log = logging.getLogger("prodwrap")
log.addHandler(logging.NullHandler())  # a library's logger: the application decides where lines go


def logger(part: str) -> logging.Logger:
    """The child logger of one part (``prodwrap.<part>``)."""
    return log.getChild(part)


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
        self, logger: logging.Logger, interval: float = BURST_SECONDS, clock: Callable[[], float] = time.monotonic
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
        masked: Callable[[], Callable[[str], str] | None] | None = None,
    ) -> bool:
        """Log ``msg % args`` at WARNING unless ``key`` was logged within ``interval``; True if logged.

        ``masked`` gives the mask of a call's sensitive values (``partial(Masking.mask_for,
        value)``), asked only for a line that is logged (a throttled fault reads no input). The
        mask is applied to the line and to ``exc_info``'s traceback; when it changes either, the
        masked traceback is written in the line and the record carries no exception object (a
        handler formatting that one would print the values in clear)."""
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
        mask = None if masked is None else masked()
        if mask is not None:
            msg, args, exc_info = _masked(mask, msg, args, exc_info)
        self.logger.warning(msg, *args, exc_info=exc_info, extra=dict(extra or {}), stacklevel=2)
        return True


def _masked(
    mask: Callable[[str], str], msg: str, args: tuple[Any, ...], exc_info: BaseException | None
) -> tuple[str, tuple[Any, ...], BaseException | None]:
    """``msg % args`` and ``exc_info``'s traceback masked, as one line's (msg, args, exc_info);
    a text that cannot be made (an exception whose ``str()`` raises) is withheld."""
    try:
        text = msg % args if args else msg
        trace = "" if exc_info is None else "".join(traceback.format_exception(exc_info)).rstrip("\n")
        shown, shown_trace = mask(text), mask(trace)
    except Exception:
        from prodwrap._masking import withheld

        return "%s", (withheld(msg),), None
    if shown == text and shown_trace == trace:
        return msg, args, exc_info
    return "%s", (f"{shown}\n{shown_trace}" if shown_trace and shown_trace != shown else shown,), None
