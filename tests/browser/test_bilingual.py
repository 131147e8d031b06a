"""Protocol texts in Persian in a real browser: a Persian coordinator's screening page and a form say the
protocol's fields and choices in Persian, right to left, with units isolated left to right; choosing a Persian
choice selects its stored code; the soft-limit warning while typing and the unit choice keep their units isolated
left to right."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_randomization import _as, _enrolled
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.services.users import set_preferences

pytestmark = pytest.mark.browser


def test_the_screening_page_and_a_form_in_persian(page, live_server: str, live_trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = _enrolled(live_trial)
    set_preferences(live_trial.engine, who(live_trial, Role.STUDY_COORDINATOR).username, language="fa")
    _as(page, live_server, Role.STUDY_COORDINATOR)

    page.goto(f"{live_server}/screening/new")
    assert page.locator("html").get_attribute("dir") == "rtl"
    page.locator("#f-respiratory_support").select_option(label="اکسیژن با جریان بالای بینی (HFNO)")
    assert page.locator("#f-respiratory_support").input_value() == "high_flow_nasal"  # the code is what is sent
    unit = page.locator('label[for="f-pao2_mmhg"] bdi')
    assert unit.inner_text() == "mmHg" and unit.get_attribute("dir") == "ltr"
    expect(page.locator("main")).to_contain_text("PCR مثبت SARS-CoV-2")
    page.shot("screening-persian")

    page.goto(f"{live_server}/participants/{pid}/visits/baseline/forms/vitals")
    expect(page.locator("h1")).to_have_text("علائم حیاتی و اکسیژن")
    page.locator("#v-oxygen_device").select_option(label="کانولای بینی")
    assert page.locator("#v-oxygen_device").input_value() == "nasal_cannula"
    expect(page.locator("main")).to_contain_text("پایه (پیش از انفوزیون)")
    # The soft-limit warning while typing: its range in Persian digits, isolated left to right (LRI ... PDI), so
    # "°C" never reads "C°"; the unit choice's options isolated the same way, their values the stored units.
    page.locator("#v-temperature").fill("42")
    warning = page.locator("#warn-temperature")
    expect(warning).to_be_visible()
    assert "\u2066۳۴-۴۱ °C\u2069" in warning.inner_text()
    page.locator('select[name="u-temperature"]').select_option(label="\u2066°F\u2069")
    assert page.locator('select[name="u-temperature"]').input_value() == "°F"
    page.shot("form-persian")
