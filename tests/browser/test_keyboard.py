"""A visit's form completed with the keyboard alone, with the focus visible at every step.

The coordinator signs in, reaches the participant from the navigation, opens the baseline demographics form,
fills it, saves it and marks it complete, pressing only Tab, Shift+Tab, Enter, Space and typing (no mouse,
no script that clicks or fills). Every element the focus lands on must show it: a focus outline at least
2 px wide, or a ring drawn as a box shadow (WCAG 2.4.7). Done in English and in Persian (right to left)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.browser.test_randomization import _enrolled
from tests.trialfixtures import PASSWORD, Trial, username
from trialwright.domain.roles import Role
from trialwright.services.users import set_preferences

WRITES_ON_BOTH_DATABASES = True  # what the pages write is written and read back on SQLite and PostgreSQL

pytestmark = pytest.mark.browser

FOCUS_STYLE = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const s = getComputedStyle(el);
  return {tag: el.tagName.toLowerCase(), id: el.id, text: (el.innerText || el.value || '').trim().slice(0, 40),
          outline: s.outlineStyle === 'none' ? 0 : parseFloat(s.outlineWidth), shadow: s.boxShadow};
}"""


def _focus_is_visible(page: Any) -> dict[str, Any] | None:
    """What has the focus now; fails unless it is drawn with an outline or a focus ring."""
    focused: dict[str, Any] | None = page.evaluate(FOCUS_STYLE)
    if focused is not None:
        assert focused["outline"] >= 2 or focused["shadow"] not in ("", "none"), f"focus not visible on {focused}"
    return focused


def tab_to(page: Any, matches: str, *, backwards: bool = False, limit: int = 150) -> None:
    """Press Tab (or Shift+Tab) until the focused element matches the CSS selector, checking each stop."""
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        _focus_is_visible(page)
        if page.evaluate("(sel) => document.activeElement && document.activeElement.matches(sel)", matches):
            return
    raise AssertionError(f"{matches} was not reached with the keyboard in {limit} presses")


def _activate(page: Any, matches: str, key: str = "Enter", *, backwards: bool = False) -> None:
    tab_to(page, matches, backwards=backwards)
    with page.expect_navigation():
        page.keyboard.press(key)


@pytest.mark.parametrize("lang", ["en", "fa"])
def test_a_visit_form_completed_with_the_keyboard_alone(  # type: ignore[no-untyped-def]
    page, live_server: str, live_trial: Trial, lang: str
) -> None:
    pid = _enrolled(live_trial)
    set_preferences(live_trial.engine, username(Role.STUDY_COORDINATOR), language=lang, calendar="both")
    page.context.clear_cookies()
    page.goto(f"{live_server}/sign-in")
    tab_to(page, "#username")
    page.keyboard.type(username(Role.STUDY_COORDINATOR))
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("html").get_attribute("dir") == ("rtl" if lang == "fa" else "ltr")

    # The skip link comes first and takes the focus past the header and the navigation
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.matches('a.skip')")
    _focus_is_visible(page)
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    _activate(page, "nav a[href='/participants']", backwards=True)  # back up from the page into the navigation
    _activate(page, f"main a[href='/participants/{pid}']")
    _activate(page, f"main a[href='/participants/{pid}/visits/baseline/forms/demographics']")
    page.shot("form-opened")
    assert page.get_by_test_id("form-state").inner_text() in ("not started", "شروع نشده")

    today = dt.datetime.now(ZoneInfo("Asia/Tehran")).date().isoformat()  # the site's date: Tehran is ahead of UTC
    tab_to(page, "#v-birth_date")
    page.keyboard.type("1970-03-21")
    tab_to(page, "#v-enrolled_on")
    page.keyboard.press("Control+A")
    page.keyboard.type(today)
    tab_to(page, "#v-sex")
    page.keyboard.press("ArrowDown")  # the first choice after the blank one
    tab_to(page, "#v-weight")
    page.keyboard.type("82.5")
    tab_to(page, "#v-height")
    page.keyboard.type("175")
    page.shot("form-filled")
    _activate(page, "form.crf button[type=submit]")
    assert page.get_by_test_id("form-state").inner_text() in ("draft", "پیش‌نویس")
    assert page.locator("#v-weight").input_value() == "82.5"

    _activate(page, "form[action$='/forms/demographics/complete'] button", key="Space")
    page.shot("form-complete")
    state = page.get_by_test_id("form-state").inner_text()
    assert state in ("complete", "کامل"), (state, page.locator("main").inner_text()[:600])
