"""Forms that keep their input and warn early, in a real browser, in English and in Persian (issue 24 item 5): a
refused consent keeps what was typed; the CRF's one reason box appears only once a saved value changes; a value
outside its soft limits is warned about while typing, with the range; an open query sits on its field; the
screening form's "none of these apply" answers the exclusions no and the P/F ratio is shown as it is typed; Consent
and Enrol are not offered for an ineligible patient."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.browser.test_randomization import _as, _enrolled
from tests.spec.eligibility.test_first_trial_criteria import ELIGIBLE
from tests.trialfixtures import Trial, username, who
from trialwright.domain.roles import Role
from trialwright.services import forms
from trialwright.services.screening import screen
from trialwright.services.users import set_preferences

WRITES_ON_BOTH_DATABASES = True  # what the pages write is written and read back on SQLite and PostgreSQL

pytestmark = pytest.mark.browser
TEHRAN = ZoneInfo("Asia/Tehran")
LANGUAGES = pytest.mark.parametrize("lang", ["en", "fa"])


def _signed_in(page, base: str, trial: Trial, role: Role, lang: str) -> None:  # type: ignore[no-untyped-def]
    set_preferences(trial.engine, username(role), language=lang, calendar="gregorian")
    _as(page, base, role)


def _ten_minutes_ago() -> str:
    """A consent time at the site, ten minutes ago but never before its midnight (the screening date)."""
    now = dt.datetime.now(TEHRAN).replace(tzinfo=None)
    at = max(now - dt.timedelta(minutes=10), dt.datetime.combine(now.date(), dt.time(0, 0)))
    return at.strftime("%Y-%m-%dT%H:%M")


def _screened(trial: Trial, **changes: object) -> int:
    values = {k: v for k, v in ELIGIBLE.items() if k != "informed_consent"}
    today = dt.datetime.now(TEHRAN).date()
    return screen(
        trial.engine, who(trial, Role.STUDY_COORDINATOR), site="RAZ", screened_on=today, values={**values, **changes}
    ).id


@LANGUAGES
def test_a_refused_consent_keeps_what_was_typed(page, live_server: str, live_trial: Trial, lang: str) -> None:  # type: ignore[no-untyped-def]
    sid = _screened(live_trial)
    _signed_in(page, live_server, live_trial, Role.INVESTIGATOR, lang)
    page.goto(f"{live_server}/screening/{sid}")
    form = page.get_by_test_id("consent-form")
    form.locator("#form_version").select_option("1.0")  # nothing in the consent form is pre-selected (walk 4, F6)
    form.locator("#given_by").select_option("representative")
    form.locator("#decision").select_option("consent")
    form.locator("#obtained_at").fill(_ten_minutes_ago())
    form.locator("#representative_name").fill("Maryam Ahmadi")
    form.locator("#witness").fill("Nurse Karimi")
    form.locator("#obtained_by").fill("Dr Khedri")
    form.locator("button[type=submit]").click()  # the relationship is missing
    expect(page.locator("p.error")).to_have_count(1)
    assert page.locator("#representative_name").input_value() == "Maryam Ahmadi"
    assert page.locator("#witness").input_value() == "Nurse Karimi"
    assert page.locator("#obtained_by").input_value() == "Dr Khedri"
    assert page.locator("#given_by").input_value() == "representative"
    page.shot(f"consent-refused-{lang}")


@LANGUAGES
def test_consent_and_enrol_are_not_offered_for_an_ineligible_patient(
    page, live_server: str, live_trial: Trial, lang: str
) -> None:  # type: ignore[no-untyped-def]
    sid = _screened(live_trial, age=70)
    _signed_in(page, live_server, live_trial, Role.STUDY_COORDINATOR, lang)
    page.goto(f"{live_server}/screening/{sid}")
    expect(page.get_by_test_id("no-consent")).to_be_visible()
    expect(page.get_by_test_id("no-enrol")).to_be_visible()
    expect(page.get_by_test_id("consent-form")).to_have_count(0)
    expect(page.locator(f'form[action="/screening/{sid}/enrol"]')).to_have_count(0)
    page.shot(f"ineligible-{lang}")


@LANGUAGES
def test_the_screening_form_none_apply_and_the_derived_ratio(
    page, live_server: str, live_trial: Trial, lang: str
) -> None:  # type: ignore[no-untyped-def]
    _signed_in(page, live_server, live_trial, Role.STUDY_COORDINATOR, lang)
    page.goto(f"{live_server}/screening/new")
    expect(page.get_by_test_id("criterion-I3")).to_contain_text("I3")
    page.locator("#f-pao2_mmhg").fill("120")
    page.locator("#f-fio2").fill("0.6")
    page.locator("#f-fio2").dispatch_event("change")
    expect(page.get_by_test_id("derived-pf_ratio")).to_have_text("200.0")  # 120 / 0.6, at the protocol's 1 place
    page.get_by_test_id("none-apply").check()
    for name in ("malignancy", "active_epilepsy", "concurrent_trial"):
        assert page.locator(f"#f-{name}").input_value() == "no"
    assert page.locator("#f-pcr_positive").input_value() == ""  # an inclusion question is left as it was
    page.shot(f"screening-none-apply-{lang}")


@LANGUAGES
def test_the_reason_box_appears_only_when_a_saved_value_changes(
    page, live_server: str, live_trial: Trial, lang: str
) -> None:  # type: ignore[no-untyped-def]
    pid = _enrolled(live_trial)
    coordinator = who(live_trial, Role.STUDY_COORDINATOR)
    today = dt.datetime.now(TEHRAN).date().isoformat()
    forms.save_form(
        live_trial.engine, coordinator, pid, "baseline", "performance", {"assessed_on": today, "status": "2"}
    )
    forms.complete_form(live_trial.engine, coordinator, pid, "baseline", "performance")
    _signed_in(page, live_server, live_trial, Role.STUDY_COORDINATOR, lang)
    page.goto(f"{live_server}/participants/{pid}/visits/baseline/forms/performance")
    expect(page.get_by_test_id("reason-box")).to_be_hidden()
    page.locator("#v-status").select_option("3")
    expect(page.get_by_test_id("reason-box")).to_be_visible()
    page.locator("form.crf button[type=submit]").click()
    expect(page.get_by_test_id("error-reason")).to_be_visible()  # refused, naming the field, under the box
    assert page.locator("#v-status").input_value() == "3"
    page.shot(f"reason-box-{lang}")


@LANGUAGES
def test_a_soft_limit_warns_while_typing_and_a_query_sits_on_its_field(
    page, live_server: str, live_trial: Trial, lang: str
) -> None:  # type: ignore[no-untyped-def]
    pid = _enrolled(live_trial)
    forms.save_form(live_trial.engine, who(live_trial, Role.STUDY_COORDINATOR), pid, "baseline", "labs", {"crp": 45})
    forms.raise_query(
        live_trial.engine,
        who(live_trial, Role.MONITOR),
        pid,
        "Was this the admission sample?",
        visit_id="baseline",
        form_id="labs",
        field_id="crp",
    )
    _signed_in(page, live_server, live_trial, Role.STUDY_COORDINATOR, lang)
    page.goto(f"{live_server}/participants/{pid}/visits/baseline/forms/labs")
    expect(page.get_by_test_id("row-crp")).to_have_class(re.compile(r"\bhas-query\b"))
    expect(page.get_by_test_id("field-query-crp")).to_contain_text("Was this the admission sample?")
    expect(page.get_by_text("Was this the admission sample?")).to_have_count(1)  # once, beside its field
    warning = page.get_by_test_id("warn-crp")
    expect(warning).to_be_hidden()
    page.locator("#v-crp").fill("450")  # soft limits 0-400 mg/L
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("0-400 mg/L" if lang == "en" else "۰-۴۰۰ mg/L")  # Persian digits in Persian
    page.locator("#v-crp").fill("45")
    expect(warning).to_be_hidden()
    page.locator('select[name="u-crp"]').select_option("mg/dL")  # 45 mg/dL is 450 mg/L
    expect(warning).to_be_visible()
    page.shot(f"soft-limit-warning-{lang}")


def test_the_screening_reason_box_appears_only_when_a_saved_value_changes(
    page, live_server: str, live_trial: Trial
) -> None:  # type: ignore[no-untyped-def]
    sid = _screened(live_trial, age=None)
    _signed_in(page, live_server, live_trial, Role.STUDY_COORDINATOR, "en")
    page.goto(f"{live_server}/screening/{sid}")
    box = page.get_by_test_id("reason-box")
    expect(box).to_be_hidden()
    page.locator("#f-age").fill("50")  # no saved value: no reason asked
    page.locator("#f-age").blur()
    expect(box).to_be_hidden()
    page.locator("#f-spo2_on_oxygen").fill("91")  # a saved value changes
    expect(box).to_be_visible()
