"""Calendar windows: local days, hours and months, across daylight saving time."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from prodwrap.cost._calendar import Calendar, bounds, utc

NY = ZoneInfo("America/New_York")


def at(text: str, zone: ZoneInfo, fold: int = 0) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone, fold=fold).timestamp()


def local(seconds: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(seconds, zone).isoformat()


@pytest.mark.parametrize(
    ("day", "hours"),
    [("2026-03-07", 24), ("2026-03-08", 23), ("2026-11-01", 25), ("2026-11-02", 24)],
)
def test_a_day_is_the_local_calendar_day(day: str, hours: int) -> None:
    for time in ("00:00:00", "01:59:59", "03:00:00", "23:59:59"):
        now = at(f"{day}T{time}", NY)
        start, end = bounds("day", NY, now)
        assert start <= now < end
        assert local(start, NY)[:19] == f"{day}T00:00:00"
        assert (end - start) / 3600 == hours


def test_a_midnight_that_does_not_exist_starts_the_day_when_it_begins() -> None:
    chile = ZoneInfo("America/Santiago")  # 2026-09-06: 23:59:59 -04 is followed by 01:00 -03
    start, end = bounds("day", chile, at("2026-09-06T12:00", chile))
    assert local(start, chile) == "2026-09-06T01:00:00-03:00"
    assert local(end, chile) == "2026-09-07T00:00:00-03:00"
    assert (end - start) / 3600 == 23


def test_the_repeated_hour_is_two_windows() -> None:
    first = at("2026-11-01T01:30", NY, fold=0)  # EDT
    second = at("2026-11-01T01:30", NY, fold=1)  # EST, an hour later
    a, b = bounds("hour", NY, first), bounds("hour", NY, second)
    assert a == (int(first - 1800), first + 1800) and b == (int(second - 1800), second + 1800)
    assert a[1] == b[0]


def test_hours_follow_the_local_clock_in_a_half_hour_zone() -> None:
    india = ZoneInfo("Asia/Kolkata")  # UTC+05:30
    start, end = bounds("hour", india, datetime(2026, 3, 7, 12, 10, tzinfo=UTC).timestamp())
    assert (utc(start), utc(end)) == (
        datetime(2026, 3, 7, 11, 30, tzinfo=UTC),
        datetime(2026, 3, 7, 12, 30, tzinfo=UTC),
    )


def test_a_month_is_the_calendar_month() -> None:
    start, end = bounds("month", NY, at("2026-02-14T12:00", NY))
    assert (local(start, NY), local(end, NY)) == ("2026-02-01T00:00:00-05:00", "2026-03-01T00:00:00-05:00")
    start, end = bounds("month", NY, at("2026-12-31T23:59:59", NY))
    assert local(end, NY) == "2027-01-01T00:00:00-05:00"


def test_a_lifetime_is_one_window() -> None:
    assert bounds(None, NY, 1e9) == (0, math.inf)
    assert utc(math.inf) is None


def test_the_calendar_recomputes_only_when_time_leaves_the_window() -> None:
    calendar = Calendar("day", NY)
    now = at("2026-03-08T12:00", NY)
    first = calendar.window(now)
    assert calendar.window(now + 3600) is first
    following = calendar.window(first[1])
    assert following[0] == first[1] and calendar.current is following
