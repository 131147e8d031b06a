"""The web app in a real browser: sign in, the home page, calendars, Persian right-to-left, a refused
page, sign out, keyboard-only use and phone width."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.trialfixtures import PASSWORD, username
from trialwright.domain.roles import Role

pytestmark = pytest.mark.browser


def _sign_in(page, base: str, role: Role) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/sign-in")
    page.get_by_label("Username").fill(username(role))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")


def test_coordinator_day(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    _sign_in(page, live_server, Role.STUDY_COORDINATOR)
    page.shot("home")
    assert "IRCT20190101042197N2" in page.content()
    assert page.get_by_test_id("registration-date").inner_text() == "2021-04-19, 1400/01/30"
    # Only Solar Hijri dates
    page.get_by_label("Calendar").select_option("jalali")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("registration-date").inner_text() == "1400/01/30"
    page.shot("jalali")
    # Persian: the page turns right-to-left
    page.get_by_label("Language").select_option("fa")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.locator("html").get_attribute("lang") == "fa"
    expect(page.get_by_role("link", name="خانه")).to_be_visible()
    page.shot("persian")
    # Another role's page is refused, readably
    response = page.goto(f"{live_server}/admin/audit")
    assert response is not None and response.status == 403
    assert "نقش شما اجازهٔ دسترسی" in page.content()
    page.shot("refused")
    # Sign out
    page.goto(f"{live_server}/")
    page.get_by_role("button", name="خروج").click()
    page.wait_for_url(f"{live_server}/sign-in")
    page.shot("signed-out")
    page.goto(f"{live_server}/")
    assert page.url.startswith(f"{live_server}/sign-in")


def test_keyboard_only_sign_in(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{live_server}/sign-in")
    page.focus("#username")
    page.keyboard.type(username(Role.MONITOR))
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server}/")
    page.shot("signed-in")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_phone_width_has_no_sideways_scroll(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": 360, "height": 740})
    _sign_in(page, live_server, Role.ADMINISTRATOR)
    for path in ("/", "/profile", "/admin/users"):
        page.goto(f"{live_server}{path}")
        page.shot(path.strip("/").replace("/", "-") or "home")
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, (path, overflow)


def test_blinded_pages_show_no_arm_in_the_browser(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    _sign_in(page, live_server, Role.INVESTIGATOR)
    text = page.inner_text("body")
    assert "EXO" not in text and "PBO" not in text and "Placebo (PBS)" not in text
    assert "masked" in text
