"""Calendar windows for budgets: the clock hour, the day or the month in a time zone.

A window is read from wall time (epoch seconds, the clock's ``time()``) and is the local
calendar period in the zone: a day runs from local midnight to the next one, so it is 23 or
25 hours long on the days daylight saving time begins or ends; a month from the first to the
first. Bounds are computed once per window and then checked with two comparisons per call.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

Bounds = tuple[int, float]  # (start, end): epoch seconds; the start names the window


def _midnight(day: date, zone: ZoneInfo) -> int:
    """Local midnight of ``day``, in epoch seconds. A midnight that does not exist (a zone
    whose clocks skip from 23:59 to 01:00) is the instant the day begins all the same."""
    return int(datetime.combine(day, time(0), tzinfo=zone).timestamp())


def bounds(per: str | None, zone: ZoneInfo, now: float) -> Bounds:
    """The window holding the wall time ``now``: ``per`` None is one window for all time."""
    if per is None:
        return 0, math.inf
    local = datetime.fromtimestamp(now, zone)
    if per == "hour":  # the local clock hour (``fold`` tells the repeated hour's two halves apart)
        start = int(local.replace(minute=0, second=0, microsecond=0).timestamp())
        if start > now:  # a zone whose offset changed by a part of an hour within this hour
            start = int(now - now % 3600)
        return start, start + 3600.0
    today = local.date()
    if per == "day":
        return _midnight(today, zone), float(_midnight(today + timedelta(days=1), zone))
    first = today.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return _midnight(first, zone), float(_midnight(following, zone))


def utc(seconds: float) -> datetime | None:
    """Epoch seconds as an aware UTC ``datetime`` (None for the end of time)."""
    return None if math.isinf(seconds) else datetime.fromtimestamp(seconds, UTC)


class Calendar:
    """One budget's current window, recomputed only when the wall time leaves it."""

    __slots__ = ("current", "per", "zone")

    def __init__(self, per: str | None, zone: ZoneInfo) -> None:
        self.per = per
        self.zone = zone
        self.current: Bounds = (1, 0.0)  # empty: the first reading computes the window

    def window(self, now: float) -> Bounds:
        current = self.current  # (one read: another thread may replace it, never tear it)
        if current[0] <= now < current[1]:
            return current
        current = self.current = bounds(self.per, self.zone, now)
        return current
