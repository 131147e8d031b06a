"""Dates in both calendars, checked against the registry record, which prints both."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trialwright.domain.calendars import CalendarPreference, format_date, format_datetime, from_jalali, to_jalali

# Every pair the registry record IRCT20190101042197N2 prints.
RECORD = [
    ("2021-04-19", "1400/01/30"),  # registration
    ("2025-08-30", "1404/06/08"),  # last update
    ("2021-05-20", "1400/02/30"),  # expected recruitment start
    ("2021-09-22", "1400/06/31"),  # expected recruitment end
    ("2021-03-17", "1399/12/27"),  # ethics approval
    ("2021-03-21", "1400/01/01"),  # Nowruz 1400 (first day of the Solar Hijri year)
]


@pytest.mark.parametrize(("gregorian", "jalali"), RECORD)
def test_the_record_s_dates(gregorian: str, jalali: str) -> None:
    day = dt.date.fromisoformat(gregorian)
    assert to_jalali(day) == jalali
    assert from_jalali(jalali) == day
    assert format_date(day) == f"{gregorian}, {jalali}"
    assert format_date(day, CalendarPreference.JALALI) == jalali
    assert format_date(day, "gregorian") == gregorian


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2200, 12, 31)))
def test_round_trip(day: dt.date) -> None:
    assert from_jalali(to_jalali(day)) == day


def test_datetimes_are_shown_in_the_site_s_zone() -> None:
    tehran = dt.timezone(dt.timedelta(hours=3, minutes=30), "+0330")
    moment = dt.datetime(2021, 3, 20, 21, 0, tzinfo=dt.UTC)  # already 21 March (Nowruz) in Tehran
    assert format_datetime(moment, "both", tehran) == "2021-03-21, 1400/01/01 00:30 +03:30"
    with pytest.raises(ValueError, match="naive"):
        format_datetime(dt.datetime(2021, 3, 20, 21, 0), "both")  # noqa: DTZ001


def test_bad_jalali_text() -> None:
    with pytest.raises(ValueError, match="YYYY/MM/DD"):
        from_jalali("1400-1")
