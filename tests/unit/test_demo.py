"""The demo's two pure parts: moving a sample event's dates relative to now, and the schedule it
prints (each step's real time, quiet hours and `at` holds included)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from babel.dates import format_date

from cascade.local.demo import EVENTS, date_fields, plan, sample, shift_dates
from cascade.scenarios import presets

NOW = datetime(2026, 11, 29, 18, 30, tzinfo=UTC)  # 23:30 in Almaty: quiet hours there
TRIGGERS = sorted(p.name for p in EVENTS.glob("*.json") if "type" in json.loads(p.read_text(encoding="utf-8"))
                  and json.loads(p.read_text(encoding="utf-8")).get("data"))
DATED = [name for name in TRIGGERS if date_fields(sample(name))]


def test_the_appointment_moves_to_tomorrow_or_after_keeping_its_time_of_day_and_its_text() -> None:
    event = sample("appointment-booked.json")

    moved = shift_dates(event, NOW)

    at = datetime.fromisoformat(moved["data"]["appointment_at"])
    assert timedelta(hours=26) <= at - NOW < timedelta(hours=50)  # both reminders (24 h and 2 h before) still ahead
    assert (at.hour, at.minute, at.utcoffset()) == (10, 30, timedelta(hours=5))
    assert moved["data"]["appointment_text"] == f"{format_date(at.date(), 'd MMMM', locale='ru')}, 10:30"
    assert event["data"]["appointment_at"] == sample("appointment-booked.json")["data"]["appointment_at"]  # a copy


def test_text_dates_in_the_recipients_language_move_too() -> None:
    visit = shift_dates(sample("visit-reminder.json"), NOW)["data"]["visit_at"]
    courier = shift_dates(sample("courier-assigned.json"), NOW)["data"]["delivery_date"]
    english = shift_dates({"type": "x.y", "recipient": {"locale": "en"}, "data": {"on": "3 Dec"}}, NOW,
                          lead=timedelta(0))["data"]["on"]

    assert visit == "1 декабря, 10:30"  # at least 24 h ahead, at its own time of day
    assert courier == "29 ноября"  # the courier comes today
    assert english == "29 Nov"  # a date without a time counts until its day ends


def test_an_event_without_dates_is_left_as_it_is() -> None:
    event = sample("delivery-failed.json")

    assert shift_dates(event, NOW) == event
    assert date_fields(event) == []


@pytest.mark.parametrize("now", [NOW, datetime(2031, 2, 28, 23, 59, tzinfo=UTC), datetime(2025, 6, 1, 4, 0, tzinfo=UTC)])
@pytest.mark.parametrize("name", DATED)
def test_every_sample_date_lands_ahead_of_now_within_a_week(name: str, now: datetime) -> None:
    event = sample(name)
    fields = date_fields(event)

    moved = shift_dates(event, now)

    assert fields and date_fields(moved) == fields  # each keeps its form
    assert all(moved["data"][key] != event["data"][key] for key in fields)
    iso = [datetime.fromisoformat(moved["data"][k]) for k in fields if moved["data"][k][:4].isdigit()]
    for moment in iso:
        assert now <= moment <= now + timedelta(days=7), (name, moment)


def test_the_samples_are_dated_weeks_ahead_of_when_they_were_written_not_years() -> None:
    """The files themselves (read by `sam local invoke`, curl in README): late 2026, not 2030."""
    assert DATED == ["appointment-booked.json", "courier-assigned.json", "return-requested.json",
                     "visit-reminder.json"]
    for name in TRIGGERS:
        event = sample(name)
        for key in date_fields(event):
            value = event["data"][key]
            if value[:4].isdigit():
                assert date(2026, 11, 29) < datetime.fromisoformat(value).date() < date(2027, 1, 31), (name, key)


def test_the_schedule_holds_a_night_sms_until_nine_in_the_recipients_time_zone() -> None:
    """23:30 in Almaty: the VIP delivery-failed SMS waits for 09:00 there (9.5 h: 10 whole seconds
    at 3600x, as the workflow's timer), then the others follow their waits; the operator step goes
    (the order is VIP)."""
    event = sample("delivery-failed-vip.json")

    found = plan(presets()["delivery-failed"], event, NOW, time_scale=3600)

    first = found.steps[0]
    assert [(r, u) for r, u, _ in first.held] == [("quiet_hours", datetime(2026, 11, 30, 4, 0, tzinfo=UTC))]
    assert [s.at_s for s in found.steps] == [10, 12, 34, 58]
    assert (found.ends_s, found.outcome) == (82, "exhausted")


def test_the_schedule_waits_for_a_steps_time_and_skips_what_does_not_apply() -> None:
    morning = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)  # 11:00 in Almaty
    event = shift_dates(sample("appointment-booked.json"), morning)
    at = datetime.fromisoformat(event["data"]["appointment_at"])

    found = plan(presets()["appointment"], event, morning, time_scale=3600)
    ordinary = plan(presets()["delivery-failed"], sample("delivery-failed.json"), NOW, time_scale=3600)

    reminder = found.steps[1]
    assert reminder.held[0][:2] == ("scheduled", at - timedelta(hours=24))
    assert found.steps[0].at_s == 0 and not found.steps[0].held  # the confirmation goes at once
    # asked 1 s in (the confirmation's 1 h wait), then held 22.5 h: the workflow's whole 23 s
    assert (at - timedelta(hours=24) - morning) == timedelta(hours=23.5) and reminder.at_s == 1 + 23
    assert ordinary.steps[3].skipped == "condition"  # the operator calls for VIP orders only


def test_an_otp_ends_expired_by_its_ttl() -> None:
    found = plan(presets()["otp"], sample("otp-requested.json"), NOW, time_scale=60)

    assert found.outcome == "expired"
    assert [s.at_s for s in found.steps] == [0, 1, 2]


def test_what_only_looks_like_a_date_is_left_alone() -> None:
    event = {"type": "x.y", "recipient": {"locale": "ru"},
             "data": {"code": "2026-13-45", "note": "31 ноября", "track": "RA123456789KZ", "when": "3 марта, 9:05"}}

    moved = shift_dates(event, NOW)

    assert {k: v for k, v in moved["data"].items() if k != "when"} == {k: v for k, v in event["data"].items()
                                                                      if k != "when"}
    assert moved["data"]["when"] == "1 декабря, 09:05"
