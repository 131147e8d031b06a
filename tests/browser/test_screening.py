"""Screening in a real browser: one eligible and one ineligible patient, the eligible one enrolled after
consent by a legally authorised representative; the live eligibility summary updates as values change."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.browser.test_pages import _sign_in
from trialwright.domain.roles import Role

WRITES_ON_BOTH_DATABASES = True  # what the pages write is written and read back on SQLite and PostgreSQL

pytestmark = pytest.mark.browser

YES = ["pcr_positive", "on_oxygen", "bilateral_infiltrates"]
NO = [
    "malignancy", "hepatic_failure", "renal_failure", "lung_transplant", "lung_surgery", "bone_marrow_transplant",
    "autoimmune_disease", "metabolic_disease", "dialysis", "contagious_infection", "active_epilepsy",
    "coagulopathy", "trauma", "concurrent_trial",
]  # fmt: skip


def _fill(page, age: int) -> None:  # type: ignore[no-untyped-def]
    page.select_option("#site", "RAZ")
    page.fill("#f-age", str(age))
    page.select_option("#f-sex", "male")
    page.fill("#f-pao2_mmhg", "90")
    page.fill("#f-fio2", "60")
    page.select_option("select[name=fio2__unit]", "%")
    page.fill("#f-spo2_on_oxygen", "88")
    for name in YES:
        page.select_option(f"#f-{name}", "yes")
    for name in NO:
        page.select_option(f"#f-{name}", "no")


def test_screen_two_patients_and_enrol_the_eligible_one(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    _sign_in(page, live_server, Role.STUDY_COORDINATOR)
    page.get_by_role("link", name="Screening").click()
    page.get_by_role("link", name="Screen a patient").click()
    _fill(page, age=70)
    page.wait_for_selector("#live[data-decision=not_eligible]")
    assert "I1" in page.inner_text("#live")
    page.shot("ineligible-live")
    page.get_by_role("button", name="Save screening").click()
    assert page.get_by_test_id("decision").inner_text() == "not eligible"
    page.shot("ineligible-saved")

    page.goto(f"{live_server}/screening/new")
    _fill(page, age=45)
    page.wait_for_selector("#live[data-decision=incomplete]")  # consent still missing
    page.get_by_role("button", name="Save screening").click()
    assert page.get_by_test_id("decision").inner_text() == "incomplete"
    page.select_option("#form_version", "1.0")  # nothing in the consent form is pre-selected (walk 4, F6)
    page.select_option("#given_by", "representative")
    page.select_option("#decision", "consent")
    page.fill("#representative_name", "Maryam Ahmadi")
    page.fill("#representative_relationship", "daughter")
    page.fill("#witness", "Nurse Karimi")
    page.fill("#obtained_by", "Dr Khedri")
    tehran_now = dt.datetime.now(ZoneInfo("Asia/Tehran")).replace(tzinfo=None)
    # ten minutes ago, but never before the site's midnight: the consent may not precede the screening date
    obtained = max(tehran_now - dt.timedelta(minutes=10), dt.datetime.combine(tehran_now.date(), dt.time(0, 0)))
    page.fill("#obtained_at", obtained.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Record consent").click()
    assert page.get_by_test_id("decision").inner_text() == "eligible"
    expect(page.locator("main")).to_contain_text("Maryam Ahmadi (daughter)")
    page.shot("consented")
    page.get_by_role("button", name="Enrol").click()
    assert page.get_by_test_id("participant-id").inner_text() == "enrolled: RAZ-001"
    page.shot("enrolled")

    page.goto(f"{live_server}/screening")
    log = page.inner_text("table")
    assert "RAZ-S0001" in log and "RAZ-S0002" in log and "RAZ-001" in log and "by a representative" in log
    page.shot("log")
