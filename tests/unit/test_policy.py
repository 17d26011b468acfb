"""Policy arithmetic: quiet windows in a time zone, the cascade clock, scheduled steps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cascade.policy import cascade_now, quiet_until


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("now", "zone", "until"), [
    ("2026-11-23T18:30", "Asia/Almaty", "2026-11-24T04:00"),    # 23:30 in Almaty (UTC+5): until 09:00 local
    ("2026-11-23T02:00", "Asia/Almaty", "2026-11-23T04:00"),    # 07:00 local, after midnight: same morning
    ("2026-11-23T12:00", "Asia/Almaty", None),                  # 17:00 local: daytime
    ("2026-11-23T20:59", "UTC", None),                          # a minute before the window
    ("2026-11-23T21:00", "UTC", "2026-11-24T09:00"),
    ("2026-11-24T09:00", "UTC", None),                          # the window's end is already open
])
def test_a_night_window_ends_at_the_next_local_morning(now: str, zone: str, until: str | None) -> None:
    got = quiet_until(_utc(now), ZoneInfo(zone), "21:00", "09:00")
    assert got == (_utc(until) if until else None)


def test_a_window_inside_one_day_and_daylight_saving() -> None:
    lunch = ZoneInfo("Europe/Kyiv")
    assert quiet_until(_utc("2026-07-01T10:30"), lunch, "13:00", "14:00") == _utc("2026-07-01T11:00")  # UTC+3
    assert quiet_until(_utc("2026-12-01T11:30"), lunch, "13:00", "14:00") == _utc("2026-12-01T12:00")  # UTC+2
    assert quiet_until(_utc("2026-12-01T11:30"), lunch, "13:00", "13:00") is None  # an empty window


def test_the_cascade_clock_runs_at_the_time_scale_from_the_cascades_start() -> None:
    cascade = {"created_at": "2026-11-23T10:00:00.000Z"}
    real = _utc("2026-11-23T10:00:02")
    assert cascade_now(cascade, 1, real) == real
    assert cascade_now(cascade, 3600, real) == _utc("2026-11-23T12:00:00")  # 2 real seconds = 2 h
    shifted = cascade_now(cascade, 3600, real, shift_seconds=-3600)
    assert shifted == _utc("2026-11-23T11:00:00")
    assert cascade_now(cascade, 1, real, shift_seconds=60) - real == timedelta(seconds=60)
