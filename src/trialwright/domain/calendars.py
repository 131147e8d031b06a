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

Dates are typed in the person's calendar too: ``entered_date`` is the one reading of a date (or a date and
time) typed on a page, in Solar Hijri or Gregorian, with Persian, Arabic-Indic or Latin digits, into the
Gregorian ISO text every service takes. What it cannot read as exactly one date it refuses, naming the field
and the rule; it never guesses a calendar or an order. ``entry_text`` writes a stored date back into an input
the way that person types it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import jdatetime

__all__ = [
    "DATE_RULES",
    "GREGORIAN_YEARS",
    "JALALI_YEARS",
    "CalendarPreference",
    "DateEntryError",
    "NaiveTimeError",
    "aware",
    "entered_date",
    "entry_examples",
    "entry_text",
    "format_date",
    "format_datetime",
    "from_jalali",
    "local_date",
    "offset_text",
    "on_site_clock",
    "parse_moment",
    "site_zone",
    "to_jalali",
    "trial_calendars",
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


def trial_calendars(declared: Sequence[str] | None) -> tuple[CalendarPreference, ...]:
    """The calendar preferences a trial allows, its default first, from the protocol's ``calendars``.

    Absent (``None``): both calendars by default and any preference allowed, as before the key existed. One
    calendar declared: only that one. Both declared: both by default, either alone allowed too."""
    names = set(declared) if declared is not None else {"gregorian", "solar_hijri"}
    if names == {"gregorian"}:
        return (CalendarPreference.GREGORIAN,)
    if names == {"solar_hijri"}:
        return (CalendarPreference.JALALI,)
    return (CalendarPreference.BOTH, CalendarPreference.GREGORIAN, CalendarPreference.JALALI)


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
    """Render an aware date-time in ``tz`` (UTC when not given) with its date in the preferred calendar(s)
    and its zone named: the zone's abbreviation (``AEST``, ``UTC``), and where a zone has none but an offset
    (Tehran's), the offset with its colon and the zone's name, ``+03:30 (Asia/Tehran)``."""
    if moment.tzinfo is None:
        raise ValueError("a naive date-time cannot be shown: trialwright stores aware times only")
    local = moment.astimezone(tz or dt.UTC)
    name = local.tzname() or ""
    if name[:1] in {"+", "-"}:
        name = offset_text(local) + (f" ({tz.key})" if isinstance(tz, ZoneInfo) else "")
    return f"{format_date(local.date(), preference)} {local:%H:%M} {name}"


def offset_text(moment: dt.datetime) -> str:
    """An aware moment's offset from UTC as ISO 8601 writes it with its colon: ``+03:30``, ``-05:00``, ``+00:00``."""
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError("a naive date-time has no offset")
    minutes = int(offset.total_seconds()) // 60
    sign, minutes = ("-", -minutes) if minutes < 0 else ("+", minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


class DateEntryError(ValueError):
    """A typed date that is not exactly one date; the message names the field, what was typed and the rule.

    A page says it in its own language from its parts: ``label``, ``typed`` (exactly as typed, never converted),
    ``rule`` (which rule: a key of ``DATE_RULES``) and ``params`` (the rule's numbers and examples)."""

    def __init__(self, label: str, typed: str, rule: str, params: dict[str, Any], text: str) -> None:
        super().__init__(f"{label}: {typed} {text}")
        self.label, self.typed, self.rule, self.params = label, typed, rule, dict(params)


#: The rules a typed date is refused by, in English (``%(name)s``: ``DateEntryError.params``; ``examples`` is a
#: tuple of example dates, said joined by "or").
DATE_RULES: dict[str, str] = {
    "form": "is not a date written year first, e.g. %(examples)s",
    "ambiguous": "is ambiguous: write the year first, as 4 digits, e.g. %(examples)s",
    "jalali_day": "is not a date in the Solar Hijri calendar (months 1-12; months 1-6 have 31 days, 7-11 have 30, "
    "and 12 has 29, or 30 in a leap year)",
    "jalali_leap": "is not a date in the Solar Hijri calendar (months 1-12; months 1-6 have 31 days, 7-11 have 30, "
    "and 12 has 29, or 30 in a leap year; %(year)s is not a leap year)",
    "gregorian_day": "is not a date in the Gregorian calendar",
    "jalali_year": "is not a Solar Hijri date: the year must be %(first)s-%(last)s, e.g. %(examples)s (your calendar "
    "is Solar Hijri; change it on your profile)",
    "gregorian_year": "is not a Gregorian date: the year must be %(first)s or later, e.g. %(examples)s",
    "gregorian_year_jalali": "is not a Gregorian date: the year must be %(first)s or later, e.g. %(examples)s (your "
    "calendar is Gregorian; change it on your profile)",
    "neither": "is in neither calendar: a Solar Hijri year is %(first)s-%(last)s, a Gregorian one %(gfirst)s or later",
    "date_with_time": "is a date and time where a date alone is asked for, e.g. %(examples)s",
    "needs_time": "needs a time after the date, as HH:MM, e.g. %(examples)s",
    "not_time": "is not a time of day (hours 0-23, minutes and seconds 0-59)",
}


#: The Solar Hijri years a typed date may be in (Gregorian 1821 to 2221): a person, a visit or an event.
JALALI_YEARS = range(1200, 1600)
#: The Gregorian years a typed date may be in. The gap between the two ranges is what lets a person who
#: reads both calendars type either: the year alone says which calendar a date is in, never a guess.
GREGORIAN_YEARS = range(1800, 10000)

_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
#: Marks that right-to-left text carries invisibly (and pasting brings along): not part of a date.
_MARKS = dict.fromkeys(map(ord, "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))
_DATE = re.compile(r"(\d{4})([/-])(\d{1,2})\2(\d{1,2})", re.ASCII)
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?", re.ASCII)
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?", re.ASCII)
_YEAR_LAST = re.compile(r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}", re.ASCII)


def _jalali_days(year: int, month: int) -> int:
    if month < 12:
        return 31 if month <= 6 else 30
    return 30 if jdatetime.date(year, 1, 1).isleap() else 29


def _examples(preference: CalendarPreference, time: bool) -> str:
    jalali, gregorian = ("1400/01/30 14:30", "2021-04-19 14:30") if time else ("1400/01/30", "2021-04-19")
    if preference is CalendarPreference.JALALI:
        return jalali
    if preference is CalendarPreference.GREGORIAN:
        return gregorian
    return f"{jalali} or {gregorian}"


def entry_examples(preference: CalendarPreference | str, time: bool = False) -> tuple[str, ...]:
    """What an input shows before anything is typed: the form(s) it reads, e.g. ``("1400/01/30",)``."""
    return tuple(_examples(CalendarPreference(preference), time).split(" or "))


def entered_date(text: str, preference: CalendarPreference | str, label: str, *, time: bool = False) -> str:
    """A date (``time``: a date and time) typed by a person whose calendar is ``preference``, as Gregorian
    ISO text (``2021-04-19``; with a time ``2021-04-19T14:30``, with its offset only if one was typed).

    Persian and Arabic-Indic digits read as Latin ones; the year comes first, then month and day, separated
    by ``/`` or ``-``; a time follows after a space or ``T`` as ``HH:MM`` (``:SS`` and an offset optional).
    A ``jalali`` person types Solar Hijri dates, a ``gregorian`` one Gregorian dates, and a person who reads
    ``both`` either: the year says which (``JALALI_YEARS``, ``GREGORIAN_YEARS``). Empty text stays empty (the
    rule that needs the date says so). Anything else is refused with ``DateEntryError`` naming ``label``."""
    pref = CalendarPreference(preference)
    typed = text.strip()
    if typed == "":
        return ""
    clean = typed.translate(_MARKS).translate(_DIGITS).strip()
    date_part, _, time_part = clean.replace("T", " ", 1).partition(" ")
    time_part = time_part.strip()

    examples = entry_examples(pref, time)
    years = {"first": JALALI_YEARS.start, "last": JALALI_YEARS.stop - 1}

    def refuse(rule: str, **params: Any) -> DateEntryError:
        params = {"examples": examples, **params}
        english = {k: " or ".join(v) if isinstance(v, tuple) else v for k, v in params.items()}
        return DateEntryError(label, typed, rule, params, DATE_RULES[rule] % english)

    match = _DATE.fullmatch(date_part)
    if match is None:
        raise refuse("ambiguous" if _YEAR_LAST.fullmatch(date_part) else "form")
    year, month, day = int(match[1]), int(match[3]), int(match[4])
    if year in JALALI_YEARS and pref is not CalendarPreference.GREGORIAN:
        if not (1 <= month <= 12 and 1 <= day <= _jalali_days(year, month)):
            raise refuse("jalali_leap", year=year) if month == 12 and day == 30 else refuse("jalali_day")
        gregorian: dt.date = jdatetime.date(year, month, day).togregorian()
    elif year in GREGORIAN_YEARS and pref is not CalendarPreference.JALALI:
        try:
            gregorian = dt.date(year, month, day)
        except ValueError:
            raise refuse("gregorian_day") from None
    elif pref is CalendarPreference.JALALI:
        raise refuse("jalali_year", **years, examples=entry_examples(pref, False))
    elif pref is CalendarPreference.GREGORIAN:
        rule = "gregorian_year_jalali" if year in JALALI_YEARS else "gregorian_year"
        raise refuse(rule, first=GREGORIAN_YEARS.start, examples=entry_examples(pref, False))
    else:
        raise refuse("neither", **years, gfirst=GREGORIAN_YEARS.start)
    if not time:
        if time_part:
            raise refuse("date_with_time")
        return gregorian.isoformat()
    clock = _TIME.fullmatch(time_part)
    if clock is None:
        raise refuse("needs_time")
    hour, minute, second = int(clock[1]), int(clock[2]), int(clock[3] or 0)
    if not (hour <= 23 and minute <= 59 and second <= 59):
        raise refuse("not_time")
    seconds = f":{second:02d}{clock[4] or ''}" if clock[3] else ""
    offset = "+00:00" if clock[5] == "Z" else (clock[5] or "")
    return f"{gregorian.isoformat()}T{hour:02d}:{minute:02d}{seconds}{offset}"


def entry_text(value: dt.date | str | None, preference: CalendarPreference | str, time: bool = False) -> str:
    """A date (a date and time, or their ISO text) written back into an input the way this person types it:
    Solar Hijri for ``jalali`` and ``both``, Gregorian ISO for ``gregorian`` (a native date input wants
    exactly that). Text that is not ISO (what the person typed, say a refused date) is given back as typed,
    so nothing typed is lost."""
    pref = CalendarPreference(preference)
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        text = value.isoformat(timespec="minutes")
    elif isinstance(value, dt.date):
        text = value.isoformat()
    else:
        text = value.strip()
    if not _ISO.fullmatch(text):
        return value if isinstance(value, str) else text
    try:
        day = dt.date.fromisoformat(text[:10])
    except ValueError:
        return text
    if pref is CalendarPreference.GREGORIAN or day.year not in GREGORIAN_YEARS:
        return text
    rest = text[10:].lstrip("T ")
    return f"{to_jalali(day)} {rest}" if rest else to_jalali(day)
