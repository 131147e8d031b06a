"""The work list on the home page and the status matrix, in a real browser, in English and in Persian (issue 24
item 1): the study coordinator's home page counts the visits overdue and due today and the forms to enter, links each
to where the work is done, and the status matrix shows their sites' participants by visit and form, searched by
participant id and filtered by visit and status, right to left in Persian.

Two participants at RAZ (the coordinator's site) whose infusion was held 8 and 3 days ago, one at GOL (never shown):
visits overdue are both participants' baseline and day 1 and the first's day 3 (5), due today the first's day 7 and
the second's day 3 (2); forms to enter the infusion's two forms of each (4).
"""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SHOTS
from tests.spec.forms.conftest import TODAY, enrolled_ten_days_ago
from tests.spec.randomization.test_randomize_service import enrolled
from tests.trialfixtures import PASSWORD, Trial, make_trial, username, who
from trialwright.domain.roles import Role
from trialwright.services.forms import record_visit
from trialwright.services.users import set_preferences

pytestmark = pytest.mark.browser

WORDS = {
    "en": {"overdue": "Visits overdue", "due": "Visits due today", "enter": "Forms to enter", "filter": "Filter",
           "none": "No participants match.", "matrix": "Status matrix"},
    "fa": {"overdue": "ویزیت‌های عقب‌افتاده", "due": "ویزیت‌های موعد امروز", "enter": "فرم‌هایی که باید وارد شوند",
           "filter": "پالایش", "none": "هیچ شرکت‌کننده‌ای با این جستجو یافت نشد.", "matrix": "ماتریس وضعیت"},
}  # fmt: skip


@pytest.fixture(scope="module")
def live_trial(tmp_path_factory: pytest.TempPathFactory) -> Trial:  # the live server runs this trial
    trial = make_trial(f"sqlite:///{tmp_path_factory.mktemp('worklists') / 'trial.db'}")
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    for days in (8, 3):
        pid = enrolled_ten_days_ago(trial)
        record_visit(trial.engine, coordinator, pid, "infusion", TODAY - dt.timedelta(days=days))
    enrolled(trial, "GOL")
    return trial


def _signed_in(browser, base: str, role: Role):  # type: ignore[no-untyped-def]
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base}/sign-in")
    page.get_by_label("Username").fill(username(role))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")
    return page


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"test_worklists-{name}.png"), full_page=True)


@pytest.mark.parametrize("lang", ["en", "fa"])
def test_home_work_list_and_status_matrix(browser, live_server: str, live_trial: Trial, lang: str) -> None:  # type: ignore[no-untyped-def]
    words = WORDS[lang]
    set_preferences(live_trial.engine, username(Role.STUDY_COORDINATOR), language=lang)
    page = _signed_in(browser, live_server, Role.STUDY_COORDINATOR)
    assert page.locator("html").get_attribute("dir") == ("rtl" if lang == "fa" else "ltr")
    work = page.get_by_test_id("worklist")
    # counts in the locale's digits
    n = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹") if lang == "fa" else str.maketrans("", "")
    expect(work.get_by_test_id("count-visits_overdue")).to_have_text(f"{words['overdue']}: {'5'.translate(n)}")
    expect(work.get_by_test_id("count-visits_due")).to_have_text(f"{words['due']}: {'2'.translate(n)}")
    expect(work.get_by_test_id("count-forms_to_enter")).to_have_text(f"{words['enter']}: {'4'.translate(n)}")
    expect(work.get_by_test_id("work-items-visits_overdue").get_by_test_id("work-item")).to_have_count(5)
    # the work list comes first, before the registry summary
    assert page.locator("main section.card").first.get_attribute("data-testid") == "worklist"
    _shot(page, f"{lang}-home")

    due = work.get_by_test_id("work-items-visits_due").get_by_test_id("work-item").first
    pid = due.locator("a").inner_text().split(" · ")[0]
    due.locator("a").click()
    page.wait_for_url(f"{live_server}/participants/{pid}#visits")

    page.goto(f"{live_server}/")
    page.get_by_test_id("matrix-link").click()
    page.wait_for_url(f"{live_server}/data/matrix")
    expect(page.locator("h1")).to_have_text(words["matrix"])
    rows = page.get_by_test_id("matrix-row")
    expect(rows).to_have_count(2)  # the coordinator's site only
    expect(rows.first.get_by_test_id("cell-infusion-administration")).to_have_attribute("data-state", "not_started")
    _shot(page, f"{lang}-matrix")

    page.locator("#m-participant").fill(pid)
    page.get_by_role("button", name=words["filter"]).click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-participant", pid)

    page.locator("#m-participant").fill("")
    page.locator("#m-visit").select_option("infusion")
    page.locator("#m-status").select_option("not_started")
    page.get_by_role("button", name=words["filter"]).click()
    expect(rows).to_have_count(2)
    expect(page.get_by_test_id("matrix").locator("thead th[scope=col].form-col")).to_have_count(2)  # the visit's forms
    _shot(page, f"{lang}-matrix-filtered")

    page.locator("#m-status").select_option("signed")
    page.get_by_role("button", name=words["filter"]).click()
    expect(rows).to_have_count(0)
    expect(page.get_by_test_id("matrix")).to_contain_text(words["none"])
    page.context.close()
