"""Sites anywhere: every date rule compares the SITE's local dates, whatever UTC offset a time arrives with.

For sites from UTC-12 to UTC+14 (real IANA zones), the same instant written with any offset gets the same
decision, and that decision is the one the site's own calendar gives: a consent at 23:30 local on the
screening date is on that date; at 00:30 local the next day it is on the next date. Every expected date
is worked out independently of the code under test: each example starts from a wall-clock time on a
known local date at the site and builds the instant from it, so the site's date of the instant is the date
the example started from.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from tests.spec.protocol.conftest import mutated_text
from trialwright.domain.calendars import NaiveTimeError, local_date
from trialwright.domain.forms import FormValueError, validate_entries
from trialwright.domain.roles import Role
from trialwright.domain.safety import SafetyInputError, validate_report
from trialwright.protocol import load_protocol
from trialwright.services import clock
from trialwright.services.screening import ScreeningError, record_consent, screen
from trialwright.services.trial import init_trial
from trialwright.services.users import UserView, create_user, get_user
from trialwright.store.engine import make_engine

#: Real zones from UTC-12 to UTC+14, with half-hour and 45-minute offsets and summer time both sides.
ZONES = [
    "Pacific/Kiritimati",  # UTC+14
    "Pacific/Chatham",  # UTC+12:45 / +13:45
    "Pacific/Auckland",  # UTC+12 / +13
    "Australia/Sydney",  # UTC+10 / +11
    "Asia/Tokyo",  # UTC+9
    "Australia/Perth",  # UTC+8
    "Asia/Kolkata",  # UTC+5:30
    "America/Los_Angeles",  # UTC-8 / -7
    "Pacific/Pago_Pago",  # UTC-11
    "Etc/GMT+12",  # UTC-12 (POSIX sign: GMT+12 is twelve hours behind)
]
#: Any offset a client may write a time with, UTC-12:00 to UTC+14:00 in quarter hours.
OFFSETS = st.integers(-12 * 4, 14 * 4).map(lambda q: dt.timezone(dt.timedelta(minutes=15 * q)))
DAYS = st.dates(dt.date(2022, 1, 2), dt.date(2030, 12, 30))
#: Wall-clock times, with the two edges of the local day always among them.
TIMES = st.one_of(st.sampled_from([dt.time(0, 30), dt.time(23, 30), dt.time(0, 0), dt.time(23, 59)]),
                  st.times().map(lambda t: t.replace(second=0, microsecond=0)))  # fmt: skip
PROTOCOL = load_protocol("protocols/IRCT20190101042197N2.yaml").protocol


def on_the_site_clock(day: dt.date, wall: dt.time, zone: str) -> dt.datetime:
    """The instant the site's clock shows ``wall`` on ``day`` (examples where the clock skipped or repeated
    that time, at a summer-time change, are left out: they name no single instant)."""
    tz = ZoneInfo(zone)
    first = dt.datetime.combine(day, wall, tzinfo=tz)
    second = first.replace(fold=1)
    assume(first.utcoffset() == second.utcoffset())
    assume(first.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) == dt.datetime.combine(day, wall))
    return first.astimezone(dt.UTC)


# --- the helper every rule uses ----------------------------------------------------------------------


@given(zone=st.sampled_from(ZONES), day=DAYS, wall=TIMES, offset=OFFSETS)
def test_the_same_instant_with_any_offset_has_the_sites_date(
    zone: str, day: dt.date, wall: dt.time, offset: dt.timezone
) -> None:
    instant = on_the_site_clock(day, wall, zone)
    written = instant.astimezone(offset)
    assert written == instant
    assert local_date(written, zone) == local_date(instant, zone) == day


def test_a_time_without_an_offset_is_refused_naming_the_field() -> None:
    with pytest.raises(NaiveTimeError, match=r"^obtained_at: 2024-05-01T23:30:00 has no UTC offset"):
        local_date(dt.datetime(2024, 5, 1, 23, 30), "Australia/Sydney", "obtained_at")  # noqa: DTZ001


# --- the domain's rules: safety reports and form values ----------------------------------------------

SAE: dict[str, Any] = {
    "term": "Anaphylaxis", "grade": 4, "serious": True, "seriousness_criteria": ["life_threatening"],
    "causality": "possible", "action_taken": "infusion_stopped", "outcome": "recovering",
}  # fmt: skip


def _report(raw: dict[str, Any], zone: str, now: dt.datetime) -> Any:
    try:
        return validate_report(raw, PROTOCOL.safety, ZoneInfo(zone), now)
    except SafetyInputError as exc:
        return exc.problems


@given(zone=st.sampled_from(ZONES), onset=DAYS, lag=st.sampled_from([-1, 0, 1]), wall=TIMES, offset=OFFSETS)
def test_awareness_is_compared_with_the_onset_on_the_sites_calendar(
    zone: str, onset: dt.date, lag: int, wall: dt.time, offset: dt.timezone
) -> None:
    aware = on_the_site_clock(onset + dt.timedelta(days=lag), wall, zone)
    now = aware + dt.timedelta(days=3)
    raw = {**SAE, "onset": onset.isoformat()}
    as_utc = _report({**raw, "aware_at": aware.isoformat()}, zone, now)
    as_written = _report({**raw, "aware_at": aware.astimezone(offset).isoformat()}, zone, now)
    assert as_utc == as_written  # the same instant, the same decision
    if lag < 0:  # the day before the onset at the site
        assert as_written == (("aware_at", f"is before the onset {onset.isoformat()}"),)
    else:
        assert as_written.aware_at == aware


@given(zone=st.sampled_from(ZONES), onset=DAYS, wall=TIMES, offset=OFFSETS)
def test_an_onset_is_in_the_future_only_after_the_sites_today(
    zone: str, onset: dt.date, wall: dt.time, offset: dt.timezone
) -> None:
    # "now" is on the onset's date at the site, or the day before it there; written with any offset.
    for lag, refused in ((0, False), (-1, True)):
        now = on_the_site_clock(onset + dt.timedelta(days=lag), wall, zone).astimezone(offset)
        raw = {**SAE, "onset": onset.isoformat(), "aware_at": now.isoformat()}
        found = _report(raw, zone, now)
        today = onset + dt.timedelta(days=lag)
        future = ("onset", f"{onset.isoformat()} is in the future (today is {today.isoformat()} at the site)")
        assert future in found if refused else found.onset == onset, found


@given(zone=st.sampled_from(ZONES), enrolled=DAYS, lag=st.sampled_from([-1, 0]), wall=TIMES, offset=OFFSETS)
def test_a_form_time_is_compared_with_enrolment_on_the_sites_calendar(
    zone: str, enrolled: dt.date, lag: int, wall: dt.time, offset: dt.timezone
) -> None:
    sampled = on_the_site_clock(enrolled + dt.timedelta(days=lag), wall, zone)
    today = enrolled + dt.timedelta(days=5)

    def entered(text: str) -> Any:
        try:
            got = validate_entries(PROTOCOL.form("labs"), {"sampled_at": text}, today=today, enrolled_on=enrolled,
                                   timezone=zone)  # fmt: skip
        except FormValueError as exc:
            return exc.problems
        return got.values["sampled_at"].value

    as_utc, as_written = entered(sampled.isoformat()), entered(sampled.astimezone(offset).isoformat())
    assert as_utc == as_written
    if lag < 0:
        day = enrolled - dt.timedelta(days=1)
        assert as_written == (f"sampled_at: {day.isoformat()} is before enrolment on {enrolled.isoformat()}",)
    else:  # stored as the UTC instant, to the minute
        assert as_written == sampled.isoformat(timespec="minutes")


# --- through the service and the store: consent against the screening date -------------------------

_TRIALS: dict[str, tuple[Engine, UserView]] = {}


def _trial(zone: str, folder: Path) -> tuple[Engine, UserView]:
    """A SQLite trial whose site RAZ keeps ``zone``'s clock, with a study coordinator (made once per zone)."""
    if zone not in _TRIALS:

        def move(document: Any) -> None:
            document["sites"][0]["timezone"] = zone

        path = folder / f"{zone.replace('/', '_')}.yaml"
        path.write_text(mutated_text(move), encoding="utf-8")
        engine = make_engine(f"sqlite:///{folder / path.stem}.db")
        init_trial(engine, load_protocol(path))
        create_user(engine, username="coordinator", password="Correct-horse-7", role=Role.STUDY_COORDINATOR,
                    sites=["RAZ"], full_name="Coordinator", actor="test")  # fmt: skip
        user = get_user(engine, "coordinator")
        assert user is not None
        _TRIALS[zone] = (engine, user)
    return _TRIALS[zone]


def _consent(engine: Engine, user: UserView, screened_on: dt.date, at: dt.datetime, now: dt.datetime) -> str:
    """Screen a patient on ``screened_on`` and record a consent obtained ``at``: "accepted", or the refusal."""
    with clock.simulated_time(now):
        s = screen(engine, user, site="RAZ", screened_on=screened_on, values={})
        try:
            record_consent(engine, user, s.id, form_version="1.0", given_by="participant", obtained_by="Dr Sim",
                           obtained_at=at)  # fmt: skip
        except ScreeningError as exc:
            return str(exc)
    return "accepted"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    zone=st.sampled_from(ZONES),
    screened_on=DAYS,
    lag=st.sampled_from([-1, 0, 1]),
    wall=TIMES,
    offset=OFFSETS,
)
def test_a_consent_is_on_or_after_the_screening_date_on_the_sites_calendar(
    tmp_path_factory: pytest.TempPathFactory,
    zone: str,
    screened_on: dt.date,
    lag: int,
    wall: dt.time,
    offset: dt.timezone,
) -> None:
    engine, user = _trial(zone, tmp_path_factory.getbasetemp())
    at = on_the_site_clock(screened_on + dt.timedelta(days=lag), wall, zone)
    now = on_the_site_clock(screened_on + dt.timedelta(days=2), dt.time(12, 0), zone)
    as_utc = _consent(engine, user, screened_on, at, now)
    as_written = _consent(engine, user, screened_on, at.astimezone(offset), now)
    assert as_utc == as_written  # the same instant, the same decision, whatever its offset
    if lag < 0:
        day = screened_on - dt.timedelta(days=1)
        assert as_written == (f"obtained_at: {day.isoformat()} at the site is before the screening date "
                              f"{screened_on.isoformat()}")  # fmt: skip
    else:
        assert as_written == "accepted"
