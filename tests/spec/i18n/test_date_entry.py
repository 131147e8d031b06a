"""Dates typed in the person's calendar (``trialwright.domain.calendars.entered_date``): what each calendar
preference reads, into the Gregorian ISO text every service takes, and what it refuses, naming the field.

| calendar  | typed                  | read as            | why                                             |
|-----------|------------------------|--------------------|-------------------------------------------------|
| jalali    | 1400/01/30             | 2021-04-19         | the registration date, as the record prints it  |
| jalali    | ۱۴۰۰/۰۱/۳۰             | 2021-04-19         | Persian digits                                  |
| jalali    | ١٤٠٠-١-٣٠              | 2021-04-19         | Arabic-Indic digits, dashes, no leading zeros   |
| jalali    | 1403/12/30             | 2025-03-20         | 1403 is a leap year (jdatetime says so)         |
| jalali    | 1402/12/30             | refused            | 1402 is not                                     |
| jalali    | 1400/13/01             | refused            | no 13th month                                   |
| jalali    | 2021-04-19             | refused            | not a Solar Hijri year; never taken as Gregorian |
| both      | 2021-04-19 / 1400/01/30| 2021-04-19         | the year says which calendar                    |
| both      | 1700-01-01             | refused            | a year of neither                               |
| gregorian | 2021-04-19             | 2021-04-19         |                                                 |
| gregorian | 1400-01-30             | refused            | a Solar Hijri year where Gregorian is set       |
| any       | 30/01/1400             | refused            | year last: day and month order is a guess       |
| jalali    | 1400/01/30 14:30       | 2021-04-19T14:30   | a date and time (site time: the page adds the offset) |

Conversions are checked against the record's printed pairs and against jdatetime, which converts them
independently of the typed text's reading.
"""

from __future__ import annotations

import datetime as dt

import jdatetime
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trialwright.domain.calendars import (
    JALALI_YEARS,
    DateEntryError,
    entered_date,
    entry_examples,
    entry_text,
)

PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")

# Pairs the registry record IRCT20190101042197N2 prints in both calendars.
RECORD = [
    ("2021-04-19", "1400/01/30"),  # registration
    ("2025-08-30", "1404/06/08"),  # last update
    ("2021-03-17", "1399/12/27"),  # ethics approval
    ("2021-03-21", "1400/01/01"),  # Nowruz 1400
]


@pytest.mark.parametrize(("gregorian", "jalali"), RECORD)
@pytest.mark.parametrize("digits", [None, PERSIAN, ARABIC_INDIC], ids=["latin", "persian", "arabic-indic"])
def test_the_record_s_dates_typed_in_solar_hijri(gregorian: str, jalali: str, digits: dict[int, str] | None) -> None:
    typed = jalali.translate(digits) if digits else jalali
    assert entered_date(typed, "jalali", "Visit date") == gregorian
    assert entered_date(typed, "both", "Visit date") == gregorian
    assert entered_date(typed.replace("/", "-"), "jalali", "Visit date") == gregorian
    assert entered_date(gregorian, "both", "Visit date") == gregorian  # "both" reads Gregorian too
    assert entered_date(gregorian, "gregorian", "Visit date") == gregorian


@st.composite
def jalali_days(draw: st.DrawFn) -> tuple[dt.date, jdatetime.date]:
    day = draw(st.dates(min_value=dt.date(1822, 1, 1), max_value=dt.date(2220, 12, 31)))
    return day, jdatetime.date.fromgregorian(date=day)


@given(jalali_days(), st.sampled_from([None, PERSIAN, ARABIC_INDIC]), st.booleans(), st.sampled_from("/-"))
def test_any_solar_hijri_date_reads_as_jdatetime_converts_it(
    pair: tuple[dt.date, jdatetime.date], digits: dict[int, str] | None, padded: bool, sep: str
) -> None:
    day, j = pair
    typed = f"{j.year}{sep}{j.month:02d}{sep}{j.day:02d}" if padded else f"{j.year}{sep}{j.month}{sep}{j.day}"
    typed = typed.translate(digits) if digits else typed
    assert entered_date(typed, "jalali", "Date of onset") == day.isoformat()
    # ... and a date written back into an input for that person reads as the same date.
    assert entered_date(entry_text(day, "jalali"), "jalali", "Date of onset") == day.isoformat()
    assert entered_date(entry_text(day, "both"), "both", "Date of onset") == day.isoformat()
    assert entered_date(entry_text(day, "gregorian"), "gregorian", "Date of onset") == day.isoformat()


@given(st.integers(JALALI_YEARS.start, JALALI_YEARS.stop - 1))
def test_the_last_day_of_esfand_exists_in_leap_years_only(year: int) -> None:
    """Esfand 30 is a date exactly when jdatetime holds it to be one (its leap years, not assumed here)."""
    try:
        expected = jdatetime.date(year, 12, 30).togregorian().isoformat()
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(DateEntryError, match=rf"^Date of onset: {year}/12/30 is not a date in the Solar Hijri "
                                                 rf"calendar \(.*; {year} is not a leap year\)$"):  # fmt: skip
            entered_date(f"{year}/12/30", "jalali", "Date of onset")
    else:
        assert entered_date(f"{year}/12/30", "jalali", "Date of onset") == expected


def test_known_leap_years() -> None:
    assert jdatetime.date(1403, 1, 1).isleap() and not jdatetime.date(1402, 1, 1).isleap()
    assert entered_date("1403/12/30", "jalali", "Visit date") == "2025-03-20"
    assert entered_date("1403/12/30", "jalali", "Visit date") == jdatetime.date(1403, 12, 30).togregorian().isoformat()
    with pytest.raises(DateEntryError, match="1402 is not a leap year"):
        entered_date("1402/12/30", "jalali", "Visit date")


@pytest.mark.parametrize(
    ("calendar", "typed", "message"),
    [
        ("jalali", "1400/13/01", "Date of onset: 1400/13/01 is not a date in the Solar Hijri calendar (months 1-12;"),
        ("jalali", "۱۴۰۰/۱۳/۰۱", "Date of onset: ۱۴۰۰/۱۳/۰۱ is not a date in the Solar Hijri calendar"),
        ("jalali", "1400/07/31", "Date of onset: 1400/07/31 is not a date in the Solar Hijri calendar"),
        ("jalali", "1400/00/10", "Date of onset: 1400/00/10 is not a date in the Solar Hijri calendar"),
        ("jalali", "2021-04-19", "Date of onset: 2021-04-19 is not a Solar Hijri date: the year must be 1200-1599"),
        ("gregorian", "1400-01-30", "Date of onset: 1400-01-30 is not a Gregorian date: the year must be 1800"),
        ("gregorian", "2021-02-29", "Date of onset: 2021-02-29 is not a date in the Gregorian calendar"),
        ("both", "1700-01-01", "Date of onset: 1700-01-01 is in neither calendar"),
        ("both", "30/01/1400", "Date of onset: 30/01/1400 is ambiguous: write the year first"),
        ("jalali", "01/30/00", "Date of onset: 01/30/00 is ambiguous: write the year first"),
        ("gregorian", "19.04.2021", "Date of onset: 19.04.2021 is ambiguous: write the year first"),
        ("both", "yesterday", "Date of onset: yesterday is not a date written year first"),
        ("jalali", "1400/01/30 14:30", "Date of onset: 1400/01/30 14:30 is a date and time where a date alone"),
    ],
)
def test_what_is_not_exactly_one_date_is_refused_naming_the_field(calendar: str, typed: str, message: str) -> None:
    with pytest.raises(DateEntryError) as refused:
        entered_date(typed, calendar, "Date of onset")
    assert str(refused.value).startswith(message)


@pytest.mark.parametrize(
    ("calendar", "typed", "read"),
    [
        ("jalali", "1400/01/30 14:30", "2021-04-19T14:30"),
        ("jalali", "۱۴۰۰/۰۱/۳۰ ۰۹:۰۵", "2021-04-19T09:05"),
        ("jalali", "1400/01/30T14:30:15", "2021-04-19T14:30:15"),
        ("jalali", "1400/01/30 14:30+04:30", "2021-04-19T14:30+04:30"),  # an offset typed is kept
        ("both", "2021-04-19 14:30Z", "2021-04-19T14:30+00:00"),
        ("gregorian", "2021-04-19T14:30", "2021-04-19T14:30"),  # what a native input sends
    ],
)
def test_dates_and_times(calendar: str, typed: str, read: str) -> None:
    assert entered_date(typed, calendar, "Aware at", time=True) == read


@pytest.mark.parametrize(
    ("typed", "message"),
    [("1400/01/30", "needs a time after the date"), ("1400/01/30 24:00", "is not a time of day"),
     ("1400/01/30 9h", "needs a time after the date")],
)  # fmt: skip
def test_a_date_and_time_needs_a_time(typed: str, message: str) -> None:
    with pytest.raises(DateEntryError, match=f"^Aware at: {typed} {message}"):
        entered_date(typed, "jalali", "Aware at", time=True)


def test_empty_stays_empty_and_marks_are_ignored() -> None:
    assert entered_date("  ", "jalali", "End") == ""  # the rule that needs the date says so
    assert entered_date("\u200f۱۴۰۰/۰۱/۳۰\u200f", "jalali", "End") == "2021-04-19"  # pasted from right-to-left text


def test_inputs_are_written_back_in_the_person_s_calendar() -> None:
    assert entry_text(dt.date(2021, 4, 19), "jalali") == "1400/01/30"
    assert entry_text("2021-04-19", "both") == "1400/01/30"
    assert entry_text("2021-04-19", "gregorian") == "2021-04-19"  # a native date input wants ISO
    assert entry_text("2021-04-19T14:30", "jalali", time=True) == "1400/01/30 14:30"
    assert entry_text("2021-04-19T14:30", "gregorian", time=True) == "2021-04-19T14:30"
    assert entry_text("1400/13/01", "jalali") == "1400/13/01"  # a refused date comes back as typed
    assert entry_text("۱۴۰۰/۰۱/۳۰", "jalali") == "۱۴۰۰/۰۱/۳۰"
    assert entry_text(None, "jalali") == ""
    assert entry_examples("jalali") == ("1400/01/30",)
    assert entry_examples("both", time=True) == ("1400/01/30 14:30", "2021-04-19 14:30")
