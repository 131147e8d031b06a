"""Dates in the Gregorian and the Solar Hijri (Jalali) calendars.

The registry record writes every date in both calendars, e.g. ``2021-04-19, 1400/01/30``. This module
owns that rendering; every page, report and command that shows a date to a person calls it, honouring
the person's calendar preference. Dates are always stored as Gregorian ISO dates; Jalali is display only.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

import jdatetime

__all__ = ["CalendarPreference", "format_date", "format_datetime", "from_jalali", "to_jalali"]


class CalendarPreference(StrEnum):
    """Which calendar(s) a person wants dates shown in."""

    GREGORIAN = "gregorian"
    JALALI = "jalali"
    BOTH = "both"


def to_jalali(day: dt.date) -> str:
    """The Solar Hijri date as ``YYYY/MM/DD``, the way the Iranian registry writes it."""
    j = jdatetime.date.fromgregorian(date=day)
    return f"{j.year:04d}/{j.month:02d}/{j.day:02d}"


def from_jalali(text: str) -> dt.date:
    """Parse a Solar Hijri ``YYYY/MM/DD`` (or ``YYYY-MM-DD``) into the Gregorian date."""
    parts = text.replace("-", "/").split("/")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{text!r} is not a Solar Hijri date of the form YYYY/MM/DD")
    year, month, day = (int(p) for p in parts)
    gregorian: dt.date = jdatetime.date(year, month, day).togregorian()
    return gregorian


def format_date(day: dt.date, preference: CalendarPreference | str = CalendarPreference.BOTH) -> str:
    """Render a date in the preferred calendar(s); ``both`` gives ``2021-04-19, 1400/01/30``."""
    pref = CalendarPreference(preference)
    if isinstance(day, dt.datetime):
        day = day.date()
    if pref is CalendarPreference.GREGORIAN:
        return day.isoformat()
    if pref is CalendarPreference.JALALI:
        return to_jalali(day)
    return f"{day.isoformat()}, {to_jalali(day)}"


def format_datetime(
    moment: dt.datetime,
    preference: CalendarPreference | str = CalendarPreference.BOTH,
    tz: dt.tzinfo | None = None,
) -> str:
    """Render an aware date-time in ``tz`` (UTC when not given) with its date in the preferred calendar(s)."""
    if moment.tzinfo is None:
        raise ValueError("a naive date-time cannot be shown: trialwright stores aware times only")
    local = moment.astimezone(tz or dt.UTC)
    return f"{format_date(local.date(), preference)} {local:%H:%M} {local.tzname()}"
