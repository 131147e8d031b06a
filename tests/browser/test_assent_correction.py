"""The screening page in a real browser, under a protocol that declares a child's assent (from 18 years): an age
corrected from 17 to 19 after a representative's consent without assent is refused, then saved with the consent
recorded again with the child's assent in the values form (the consent recorded again with the correction)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.browser.test_pages import _sign_in
from tests.spec.protocol.conftest import mutated_text
from tests.spec.screening.assent_fixtures import with_assent
from tests.spec.screening.test_screening_consent_enrolment import TODAY, TYPED
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol_text
from trialwright.services.screening import record_consent, screen

WRITES_ON_BOTH_DATABASES = True  # what the pages write is written and read back on SQLite and PostgreSQL

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live_trial(live_database: str) -> Trial:
    return make_trial(live_database, load_protocol_text(mutated_text(with_assent)))


def _site_time(minutes: int) -> str:
    tehran_now = dt.datetime.now(ZoneInfo("Asia/Tehran")).replace(tzinfo=None)
    # some minutes ago, but never before the site's midnight: the consent may not precede the screening date
    at = max(tehran_now - dt.timedelta(minutes=minutes), dt.datetime.combine(tehran_now.date(), dt.time(0, 0)))
    return at.strftime("%Y-%m-%dT%H:%M")


def test_correct_the_age_with_the_consent_recorded_again(page, live_server: str, live_trial: Trial) -> None:  # type: ignore[no-untyped-def]
    sid = screen(live_trial.engine, who(live_trial, Role.STUDY_COORDINATOR), site="RAZ", screened_on=TODAY,
                 values={**TYPED, "age": 17}).id  # fmt: skip
    at = dt.datetime.fromisoformat(_site_time(30)).replace(tzinfo=ZoneInfo("Asia/Tehran"))
    record_consent(live_trial.engine, who(live_trial, Role.INVESTIGATOR), sid, form_version="1.0",
                   given_by="representative", representative_name="Maryam Ahmadi", representative_relationship="mother",
                   obtained_by="Dr K", obtained_at=at)  # fmt: skip
    _sign_in(page, live_server, Role.INVESTIGATOR)
    page.goto(f"{live_server}/screening/{sid}")
    page.fill("#f-age", "19")
    page.fill("#reason", "typed wrong")
    page.get_by_role("button", name="Save values").click()
    expect(page.locator("main")).to_contain_text("no longer meets the assent rule")
    page.shot("correction-refused")

    page.get_by_test_id("correction-consent").locator("summary").click()
    page.check("#with_consent")
    page.select_option("#again_form_version", "1.0")  # nothing in the folded re-consent is pre-selected
    page.select_option("#again_given_by", "representative")
    page.fill("#again_representative_name", "Maryam Ahmadi")
    page.fill("#again_representative_relationship", "mother")
    page.fill("#again_obtained_by", "Dr K")
    page.fill("#again_obtained_at", _site_time(5))
    page.select_option("#again_assent", "given")
    page.fill("#again_assent_obtained_by", "Dr K")
    page.fill("#again_assent_obtained_at", _site_time(5))
    page.select_option("#again_assent_form_version", "A1")
    page.shot("correction-with-consent")
    page.get_by_role("button", name="Save values").click()
    expect(page.get_by_test_id("consent-2")).to_contain_text("assent given")
    expect(page.get_by_test_id("assent-2")).to_contain_text("Dr K")
    page.shot("correction-saved")
