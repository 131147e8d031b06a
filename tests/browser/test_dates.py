"""Dates in the user's calendar, in a real browser: a coordinator and an investigator whose calendar is Solar
Hijri type a visit date and an adverse event's onset and awareness time in Persian digits; the trial stores
Gregorian ISO dates and the pages show them back in Solar Hijri. An impossible date is refused with the
field's label and the rule, and everything else typed stays."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.browser.test_randomization import _as, _enrolled
from tests.trialfixtures import Trial, who
from trialwright.domain.calendars import to_jalali
from trialwright.domain.roles import Role
from trialwright.services import forms, safety
from trialwright.services.users import set_preferences

WRITES_ON_BOTH_DATABASES = True  # what the pages write is written and read back on SQLite and PostgreSQL

pytestmark = pytest.mark.browser
TEHRAN = ZoneInfo("Asia/Tehran")
PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def test_a_solar_hijri_visit_date_typed_in_persian_digits(page, live_server: str, live_trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = _enrolled(live_trial)
    coordinator = who(live_trial, Role.STUDY_COORDINATOR)
    set_preferences(live_trial.engine, coordinator.username, calendar="jalali")
    today = dt.datetime.now(TEHRAN).date()

    _as(page, live_server, Role.STUDY_COORDINATOR)
    page.goto(f"{live_server}/participants/{pid}")
    page.get_by_text("Record a visit as missed, or an unscheduled visit").click()
    assert page.locator("#visit_date").get_attribute("placeholder") == "1400/01/30"
    page.locator("#visit_date").fill("۱۴۰۰/۱۳/۰۱")
    page.locator("#label").fill("fever review")
    page.get_by_role("button", name="Record visit").click()
    expect(page.locator("main")).to_contain_text(
        "Date held: \u2066۱۴۰۰/۱۳/۰۱\u2069 is not a date in the Solar Hijri calendar"  # typed: isolated, as typed
    )
    assert page.locator("#label").input_value() == "fever review"  # what else was typed stays
    assert page.locator("#visit_date").input_value() == "۱۴۰۰/۱۳/۰۱"  # the form stays open, as typed
    page.shot("visit-date-refused")
    page.locator("#visit_date").fill(to_jalali(today).translate(PERSIAN))
    page.get_by_role("button", name="Record visit").click()
    expect(page.locator("main")).to_contain_text("fever review")
    schedule = forms.participant_schedule(live_trial.engine, coordinator, pid)
    assert [day for _, _, day in schedule.unscheduled] == [today]  # stored as the Gregorian date
    expect(page.locator("main")).to_contain_text(to_jalali(today))  # shown back in Solar Hijri
    assert today.isoformat() not in page.locator("main").inner_text()
    page.shot("visit-date-jalali")


def test_a_solar_hijri_adverse_event_onset(page, live_server: str, live_trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = _enrolled(live_trial)
    investigator = who(live_trial, Role.INVESTIGATOR)
    set_preferences(live_trial.engine, investigator.username, calendar="jalali")
    aware = (dt.datetime.now(TEHRAN) - dt.timedelta(hours=1)).replace(second=0, microsecond=0)
    onset = aware.date()

    _as(page, live_server, Role.INVESTIGATOR)
    page.goto(f"{live_server}/participants/{pid}")
    page.get_by_role("link", name="Report an adverse event").first.click()
    page.locator("#term").fill("Headache")
    page.locator("#onset").fill("1402/12/30")  # 1402 is not a leap year: no 30 Esfand
    page.locator("#grade").select_option("1")
    page.get_by_role("radio", name="no").check()
    page.locator("#causality").select_option("unlikely")
    page.locator("#action_taken").select_option("dose_not_changed")
    page.locator("#outcome").select_option("recovering")
    page.locator("#aware_at").fill(f"{to_jalali(onset)} {aware:%H:%M}".translate(PERSIAN))
    page.locator("#narrative").fill("woke with it")
    page.get_by_role("button", name="Report adverse event").click()
    expect(page.get_by_test_id("error-onset")).to_contain_text(
        "Onset: \u20661402/12/30\u2069 is not a date in the Solar Hijri calendar"  # typed: isolated, as typed
    )
    assert page.locator("#term").input_value() == "Headache"
    assert page.locator("#narrative").input_value() == "woke with it"
    assert page.locator("#outcome").input_value() == "recovering"
    page.shot("onset-refused")
    page.locator("#onset").fill(to_jalali(onset).translate(PERSIAN))
    page.get_by_role("button", name="Report adverse event").click()
    expect(page.get_by_test_id("deadline-state-sae_to_sponsor")).to_have_count(0)
    page.wait_for_url(f"{live_server}/adverse-events/*")
    ae = page.url.rsplit("/", 1)[1]
    event = safety.get_event(live_trial.engine, investigator, ae)
    assert event.current.onset == onset and event.current.aware_at == aware.astimezone(dt.UTC)
    assert page.locator("#onset").input_value() == to_jalali(onset)  # the follow-up form, in Solar Hijri
    expect(page.locator("main")).to_contain_text(f"{to_jalali(onset)} {aware:%H:%M} +03:30 (Asia/Tehran)")
    page.shot("onset-jalali")
