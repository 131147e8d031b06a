"""Messages in the words on the page, in a real browser, in English and Persian: a refused CRF value names its field
by its label, and the audit page shows the change as a row (the field's label, old value, new value), never JSON.

The trial runs the first protocol with a Persian label for the laboratory form and its CRP field.
"""

from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po
from playwright.sync_api import expect

from tests.browser.conftest import SHOTS
from tests.spec.forms.conftest import enrolled_ten_days_ago
from tests.spec.wording.test_messages_in_words import CRP_FA, LABS_FA, TEXT
from tests.trialfixtures import PASSWORD, Trial, make_trial, username
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol_text
from trialwright.services.users import set_preferences
from trialwright.web.i18n import catalog_path

pytestmark = pytest.mark.browser

with catalog_path("fa").open("rb") as _handle:
    _CATALOG = {m.id: m.string for m in read_po(_handle, locale="fa")}
_RANGE_FA = _CATALOG["%(value)s is outside the accepted range %(range)s"]
_FSI, _PDI = "\u2068", "\u2069"  # a Persian page isolates the label and each value (``web/wording.py``)
RANGE = {
    "en": "C-reactive protein: 900 mg/L is outside the accepted range 0-600 mg/L",
    "fa": f"{_FSI}{CRP_FA}{_PDI}: "
    + _RANGE_FA % {"value": f"{_FSI}900 mg/L{_PDI}", "range": f"{_FSI}0-600 mg/L{_PDI}"},
}


@pytest.fixture(scope="module")
def live_trial(tmp_path_factory: pytest.TempPathFactory) -> Trial:  # the live server runs this trial
    return make_trial(f"sqlite:///{tmp_path_factory.mktemp('words') / 'trial.db'}", load_protocol_text(TEXT))


def _signed_in(browser, base: str, role: Role):  # type: ignore[no-untyped-def]
    page = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base}/sign-in")
    page.get_by_label("Username").fill(username(role))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")
    return page


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"test_wording-{name}.png"), full_page=True)


@pytest.mark.parametrize(
    ("lang", "save", "crp", "audit_label"),
    [
        ("en", "Save", "C-reactive protein", "C-reactive protein (Laboratory)"),
        ("fa", "ذخیره", CRP_FA, f"{CRP_FA} ({LABS_FA})"),
    ],
    ids=["en", "fa"],
)
def test_a_crf_error_and_the_audit_diff_in_words(  # type: ignore[no-untyped-def]
    browser, live_server: str, live_trial: Trial, lang: str, save: str, crp: str, audit_label: str
) -> None:
    pid = enrolled_ten_days_ago(live_trial)
    for role in (Role.STUDY_COORDINATOR, Role.DATA_MANAGER):
        set_preferences(live_trial.engine, username(role), language=lang)
    url = f"{live_server}/participants/{pid}/visits/baseline/forms/labs"
    coord = _signed_in(browser, live_server, Role.STUDY_COORDINATOR)
    coord.goto(url)
    coord.locator("#v-crp").fill("900")
    coord.get_by_role("button", name=save, exact=True).click()
    error = coord.get_by_test_id("error-crp")
    expect(error).to_have_text(RANGE[lang])  # the rule in the page's language (the catalog's Persian)
    expect(coord.locator("#v-crp")).to_have_value("900")  # what was typed is kept
    _shot(coord, f"{lang}-crf-error")
    for value in ("45", "38"):
        coord.locator("#v-crp").fill(value)
        coord.get_by_role("button", name=save, exact=True).click()
        coord.wait_for_url(url)
    coord.context.close()
    manager = _signed_in(browser, live_server, Role.DATA_MANAGER)
    manager.goto(f"{live_server}/admin/audit?action=form.value_changed&participant={pid}")
    diff = manager.locator("table.diff").first
    expect(diff.locator("tbody th")).to_have_text([audit_label])
    # in the reader's digits; the value exactly as stored in the title (issue 24)
    old, new = ("۴۵ mg/L", "۳۸ mg/L") if lang == "fa" else ("45 mg/L", "38 mg/L")
    expect(diff.locator("td.old")).to_have_text([old])
    expect(diff.locator("td.new")).to_have_text([new])
    if lang == "fa":
        assert diff.locator("td.old .stored").get_attribute("title") == "45 mg/L"
    assert not re.search(r'\{"(value|entered)"', manager.inner_text("body"))  # no raw JSON on the page
    assert manager.locator("html").get_attribute("dir") == ("rtl" if lang == "fa" else "ltr")
    _shot(manager, f"{lang}-audit-diff")
    manager.context.close()
