"""The casebook in a real browser, in English and Persian: the monitor marks forms source-verified in one action
(two forms as a whole, the third field by field), then the investigator signs every ready form with one
password entry."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_randomization import _as
from tests.spec.forms.conftest import enrolled_ten_days_ago
from tests.spec.forms.test_casebook import READY, trial_protocol
from tests.trialfixtures import PASSWORD, Trial, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services import forms as svc

WRITES_ON_BOTH_DATABASES = True  # what the pages write is written and read back on SQLite and PostgreSQL

pytestmark = pytest.mark.browser
BUTTONS = {
    "en": ("Mark the chosen forms and fields source-verified", "Sign the chosen forms"),
    "fa": ("ثبت تطبیق فرم‌ها و فیلدهای انتخاب‌شده با منبع", "امضای فرم‌های انتخاب‌شده"),
}


def _in(page, base: str, role: Role, lang: str) -> None:  # type: ignore[no-untyped-def]
    _as(page, base, role)
    page.goto(f"{base}/")
    page.get_by_label("Language").select_option(lang)
    page.get_by_role("button", name="Apply").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == lang


@pytest.mark.parametrize("lang", ["en", "fa"])
def test_monitor_verifies_in_bulk_and_investigator_signs_the_casebook(  # type: ignore[no-untyped-def]
    page, live_server: str, live_trial: Trial, lang: str
) -> None:
    pid = enrolled_ten_days_ago(live_trial)
    coordinator = who(live_trial, Role.STUDY_COORDINATOR)
    for form_id, values in READY.items():
        svc.save_form(live_trial.engine, coordinator, pid, "baseline", form_id, values)
        svc.complete_form(live_trial.engine, coordinator, pid, "baseline", form_id)
    url = f"{live_server}/data/casebook/{pid}"
    verify_button, sign_button = BUTTONS[lang]

    _in(page, live_server, Role.MONITOR, lang)
    page.goto(url)
    for form_id in ("vitals", "performance"):
        page.get_by_test_id(f"choose-baseline-{form_id}").check()
    for field in svc.verification_fields(trial_protocol(live_trial), "blood_gas"):
        page.get_by_test_id(f"choose-field-baseline-blood_gas-{field}").check()
    page.shot(f"casebook-monitor-{lang}")
    page.get_by_role("button", name=verify_button).click()
    expect(page.get_by_test_id("done")).to_have_count(3)
    expect(page.get_by_test_id("excluded")).to_have_count(0)

    _in(page, live_server, Role.INVESTIGATOR, lang)
    page.goto(url)
    expect(page.locator('input[name="form"]:checked')).to_have_count(3)
    expect(page.get_by_test_id("meaning")).to_be_visible()
    page.fill("#sign-password", PASSWORD)
    page.shot(f"casebook-sign-{lang}")
    page.get_by_role("button", name=sign_button).click()
    expect(page.get_by_test_id("done")).to_have_count(3)
    expect(page.get_by_test_id("signature")).to_have_count(3)
    signed = [e for e in audit.entries(live_trial.engine, action_prefix="form.signed") if e.participant == pid]
    assert sorted(e.form or "" for e in signed) == sorted(READY)
