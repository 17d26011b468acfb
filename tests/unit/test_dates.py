"""Dates in templates: the `when`, `date` and `time` filters show an ISO 8601 value as a person
reads it, in the rendering's language and the recipient's time zone (Babel's CLDR data)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from jinja2.exceptions import UndefinedError

from cascade.dates import format_moment
from cascade.rendering import render, render_string
from cascade.scenarios import Step
from cascade.segments import is_gsm7

SOON = (datetime.now(UTC) + timedelta(days=20)).replace(hour=7, minute=30, second=0, microsecond=0)


def reader(locale: str, timezone: str | None = None, **data: Any) -> dict[str, Any]:
    return {"recipient": {"locale": locale, "timezone": timezone}, "data": data}


def show(source: str, locale: str, timezone: str | None = None, scenario_zone: str = "UTC", **data: Any) -> str:
    return render_string(source, reader(locale, timezone, **data), locale, scenario_zone)


@pytest.mark.parametrize(("locale", "expected"), [
    ("ru", "1 декабря, 10:30"), ("uk", "1 грудня, 10:30"), ("en", "December 1, 10:30 AM"), ("kk", "1 желтоқсан, 10:30"),
])
def test_a_utc_time_is_shown_in_the_recipients_language_and_time_zone(locale: str, expected: str) -> None:
    # 07:30 UTC is 10:30 in Moscow; a date this close needs no year.
    assert format_moment("2026-12-01T07:30:00Z", locale, "Europe/Moscow", today=date(2026, 11, 29)) == expected


def test_the_filters_render_in_templates_with_the_recipients_zone() -> None:
    at = SOON.isoformat().replace("+00:00", "Z")
    moscow = SOON.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Moscow"))
    text = show("{{ data.at | when }} / {{ data.at | date }} / {{ data.at | time }}", "ru", "Europe/Moscow", at=at)
    assert text.endswith(f" / {moscow:%H:%M}")
    assert f"{moscow.day} " in text and "T" not in text and "Z" not in text and str(SOON.year) not in text


def test_without_a_recipient_zone_a_time_keeps_the_offset_the_business_wrote() -> None:
    # 10:30 at the clinic (+05:00) is 10:30 for the patient, not 05:30 UTC.
    assert format_moment("2026-12-01T10:30:00+05:00", "ru", None, "UTC", today=date(2026, 11, 1)) == "1 декабря, 10:30"
    # ...while a UTC time is shown in the scenario's time zone.
    assert format_moment("2026-12-01T07:30:00Z", "ru", None, "Asia/Tokyo", today=date(2026, 11, 1)) == "1 декабря, 16:30"
    # A time with no offset is already local and never moved.
    assert format_moment("2026-12-01T10:30:00", "en", "Asia/Tokyo", today=date(2026, 11, 1)) == "December 1, 10:30 AM"


def test_summer_time_is_honoured() -> None:
    july, january = "2026-07-01T16:00:00Z", "2027-01-10T16:00:00Z"
    assert format_moment(july, "en", "America/New_York", today=date(2026, 6, 1)).endswith("12:00 PM")
    assert format_moment(january, "en", "America/New_York", today=date(2026, 12, 1)).endswith("11:00 AM")


def test_a_date_far_away_carries_its_year() -> None:
    assert format_moment("2030-12-01", "ru", today=date(2026, 11, 29)) == "1 декабря 2030 г."
    assert format_moment("2030-12-01T07:30:00Z", "en", "Europe/Moscow",
                         today=date(2026, 11, 29)) == "December 1, 2030, 10:30 AM"
    assert format_moment("2030-12-01", "kk", part="date", today=date(2030, 11, 1)) == "1 желтоқсан"


def test_english_times_stay_in_the_gsm7_alphabet() -> None:
    # CLDR writes "10:30\u202fAM": one such space would make an English SMS UCS-2 (70 characters a part).
    text = show("{{ data.at | when }}", "en", "Europe/Moscow", at="2030-12-01T07:30:00Z")
    assert is_gsm7(text), repr(text)


def test_a_date_only_value_is_a_date_and_has_no_time() -> None:
    assert show("{{ data.d | when }}|{{ data.d | time }}", "uk", d="2030-03-08") == "8 березня 2030 р.|"
    assert show("{{ data.d | when }}", "en", d="20300308") == "March 8, 2030"


@pytest.mark.parametrize(("value", "shown"), [
    ("25 ноября, 10:30", "25 ноября, 10:30"),  # already written for people: as it is
    ("tomorrow", "tomorrow"), ("2030-13-45", "2030-13-45"), (None, ""), ("", ""), (42, "42"),
    ("0001-01-01T00:00:00+05:00", "0001-01-01T00:00:00+05:00"),  # Moscow time would be before year 1
    ("9999-12-31T23:00:00-05:00", "9999-12-31T23:00:00-05:00"),  # ...or after 9999
])
def test_a_value_that_is_not_a_date_is_shown_as_it_is_and_never_fails(value: Any, shown: str) -> None:
    assert show("{{ data.at | when }}", "ru", "Europe/Moscow", at=value) == shown


def test_an_unknown_locale_or_zone_falls_back_instead_of_failing() -> None:
    assert show("{{ data.at | when }}", "xx", "Mars/Olympus", at="2030-12-01T07:30:00Z") == "December 1, 2030, 7:30 AM"


def test_a_missing_field_fails_as_strictly_as_without_the_filter() -> None:
    # Caught when the scenario is saved (every step is rendered against sample data), not at send time.
    with pytest.raises(UndefinedError):
        show("{{ data.missing | when }}", "ru")


def test_render_uses_the_steps_locale_not_only_the_recipients() -> None:
    step = Step.model_validate({"channel": "sms", "wait": "1h", "template": {
        "ru": "Приём {{ data.at | when }}", "en": "Visit {{ data.at | when }}"}})
    # A Kazakh-speaking recipient of a scenario without kk gets the ru copy, with ru dates.
    _, text = render(step, "ru", reader("kk", "Europe/Moscow", at="2030-12-01T07:30:00Z"))
    assert text == "Приём 1 декабря 2030 г., 10:30"
