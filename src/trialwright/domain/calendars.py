"""Dates in the Gregorian and the Solar Hijri (Jalali) calendars.

The registry record writes every date in both calendars, e.g. ``2021-04-19, 1400/01/30``. This module
owns that rendering; every page, report and command that shows a date to a person calls it, honouring
the person's calendar preference. Dates are always stored as Gregorian ISO dates; Jalali is display only.

It also owns the one rule for turning a moment into a date: every date rule of a trial (consent on or
after the screening date, visit windows, "not in the future", reporting days, cut-offs) compares the
SITE's local dates. ``local_date`` gives the calendar date of an aware moment on a site's clock, whatever
UTC offset the moment arrived with, so the same instant gets the same decision however it is written. A
moment without an offset is refused with the field's name (``aware``), never taken as UTC or as local
time; only a page whose input says "site time" may read a typed time on the site's clock (``on_site_clock``).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from zoneinfo import ZoneInfo

import jdatetime

__all__ = [
    "CalendarPreference",
    "NaiveTimeError",
    "aware",
    "format_date",
    "format_datetime",
    "from_jalali",
    "local_date",
    "on_site_clock",
    "parse_moment",
    "site_zone",
    "to_jalali",
]


class NaiveTimeError(ValueError):
    """A date and time without a UTC offset where an instant is needed; the message names the field."""


def site_zone(zone: str | dt.tzinfo) -> dt.tzinfo:
    """A site's zone from its IANA name (as the protocol declares it) or a zone already made."""
    return ZoneInfo(zone) if isinstance(zone, str) else zone


def aware(moment: dt.datetime, field: str) -> dt.datetime:
    """``moment`` itself when it carries a UTC offset; a naive one is refused, naming ``field``."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise NaiveTimeError(
            f"{field}: {moment.isoformat()} has no UTC offset; give the time with its offset, "
            "e.g. 2024-05-01T09:30+10:00 or 2024-04-30T23:30Z"
        )
    return moment


def parse_moment(text: str, field: str) -> dt.datetime:
    """An ISO 8601 date and time that must carry its UTC offset (``Z`` or ``+HH:MM``), as an aware datetime."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{field}: must be a date and time with its UTC offset, e.g. 2024-05-01T09:30+10:00, "
                         f"not {text!r}") from None  # fmt: skip
    return aware(moment, field)


def local_date(moment: dt.datetime, zone: str | dt.tzinfo, field: str = "time") -> dt.date:
    """The calendar date of an aware ``moment`` on the clock of a site in ``zone``; the same instant
    written with any offset gives the same date. A naive moment is refused, naming ``field``."""
    return aware(moment, field).astimezone(site_zone(zone)).date()


def on_site_clock(typed: str, zone: str | dt.tzinfo, field: str) -> str:
    """A date and time typed on a page whose input says "site time": the same wall-clock time with the
    site's offset on that day (ISO text). Text that already has an offset, or is not a date and time, is
    returned as typed (the rule that reads it then names the problem). A wall-clock time the site's clock
    skipped, or showed twice, when it changed is refused: only its offset can say which instant it was."""
    try:
        moment = dt.datetime.fromisoformat(typed.strip())
    except ValueError:
        return typed
    if moment.tzinfo is not None:
        return typed
    tz = site_zone(zone)
    first, second = moment.replace(tzinfo=tz, fold=0), moment.replace(tzinfo=tz, fold=1)
    if first.utcoffset() != second.utcoffset():
        if first.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) != moment:
            raise ValueError(f"{field}: {typed.strip()} did not happen on the site's clock ({tz}): the clocks "
                             "went forward then; give the time with its UTC offset")  # fmt: skip
        raise ValueError(f"{field}: {typed.strip()} happened twice on the site's clock ({tz}): the clocks went "
                         "back then; give the time with its UTC offset")  # fmt: skip
    return first.isoformat()


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
