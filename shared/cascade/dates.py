"""Dates and times as a person reads them, in their language and time zone (Babel's CLDR data).

Templates use them as filters (see :mod:`cascade.rendering`): ``{{ data.appointment_at | when }}``
→ ``1 декабря, 10:30`` (ru), ``December 1, 10:30 AM`` (en); ``| date`` → ``1 декабря``; ``| time``
→ ``10:30``. The year is shown only for a date more than half a year away from today.

Which clock: the recipient's ``timezone`` (IANA) when they have one; otherwise the value's own UTC
offset (``…T10:30:00+05:00`` is 10:30 at the place, as the business wrote it); a UTC value
(``…Z``) without a recipient time zone is shown in the scenario's ``timezone``. A value without
an offset is local time already and is never moved.

A value that is not an ISO 8601 date or timestamp (``"25 ноября, 10:30"``, already written for
people) is shown as it is, and an empty one as nothing: a date never stops a message from going out.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from functools import cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

Part = Literal["when", "date", "time"]
# CLDR puts a narrow no-break space before AM/PM and no-break spaces inside dates: outside the
# GSM-7 alphabet, one of them would turn an English SMS into UCS-2 (70 characters a part, not 160).
_SPACES = str.maketrans({"\u202f": " ", "\u00a0": " ", "\u2009": " ", "\u2007": " "})
_YEAR_SHOWN_AFTER_DAYS = 182


@cache
def _locale(name: str | None) -> Any:
    from babel import Locale, UnknownLocaleError

    try:
        return Locale.parse((name or "en").replace("_", "-"), sep="-")
    except (UnknownLocaleError, ValueError, TypeError):
        return Locale.parse("en")


@cache
def _zone(name: str | None) -> tzinfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # not an IANA name: as if none was given
        return None


def parse(value: Any) -> datetime | date | None:
    """An ISO 8601 timestamp or date (a string, or already a datetime/date), or None."""
    if isinstance(value, datetime | date):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    # "2030-12-01", "20301201", "2030-W48-1": a day, with no time to show.
    return moment if any(mark in text for mark in "T :") else moment.date()


def _local(moment: datetime, zone: str | None, default_zone: str | None) -> datetime:
    if moment.tzinfo is None:
        return moment
    target = _zone(zone)
    if target is None and moment.utcoffset() == UTC.utcoffset(None):
        target = _zone(default_zone)
    return moment.astimezone(target) if target is not None else moment


def _with_year(day: date, today: date) -> bool:
    return abs((day - today).days) > _YEAR_SHOWN_AFTER_DAYS


def format_moment(value: Any, locale: str | None, zone: str | None = None, default_zone: str | None = "UTC",
                  part: Part = "when", today: date | None = None) -> str:
    """``value`` for a reader speaking ``locale`` in time zone ``zone`` (see the module's docstring)."""
    if value is None:
        return ""
    moment = parse(value)
    if moment is None:
        return str(value)
    try:
        return _format(moment, locale, zone, default_zone, part, today)
    except (OverflowError, ValueError):  # at the very edge of the calendar: as it came
        return str(value)


def _format(moment: datetime | date, locale: str | None, zone: str | None, default_zone: str | None, part: Part,
            today: date | None) -> str:
    from babel.dates import format_date, format_skeleton, format_time, get_datetime_format

    loc = _locale(locale)
    if isinstance(moment, datetime):
        moment = _local(moment, zone, default_zone)
        day: date = moment.date()
    else:
        day = moment
    if part == "time":
        if not isinstance(moment, datetime):
            return ""
        return str(format_time(moment, "short", locale=loc)).translate(_SPACES)
    now = today or datetime.now(moment.tzinfo if isinstance(moment, datetime) and moment.tzinfo else UTC).date()
    shown = (format_date(day, "long", locale=loc) if _with_year(day, now)
             else format_skeleton("MMMMd", day, locale=loc))
    if part == "when" and isinstance(moment, datetime):
        clock = format_time(moment, "short", locale=loc)
        shown = str(get_datetime_format("medium", locale=loc)).replace("{1}", shown).replace("{0}", clock)
    return str(shown).translate(_SPACES)


__all__ = ["Part", "format_moment", "parse"]
