"""Accounts in a real browser: an administrator adds a user and sees a set-password link, never a password;
the new user opens the link in their own browser, chooses a password and signs in."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.trialfixtures import PASSWORD, username
from trialwright.domain.roles import Role

WRITES_ON_BOTH_DATABASES = True  # what the pages write is written and read back on SQLite and PostgreSQL

pytestmark = pytest.mark.browser


def test_a_new_user_sets_their_own_password(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{live_server}/sign-in")
    page.get_by_label("Username").fill(username(Role.ADMINISTRATOR))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server}/")
    page.goto(f"{live_server}/admin/users")
    page.get_by_label("Username").fill("browser-monitor")
    page.get_by_label("Role").select_option("monitor")
    page.get_by_label("RAZ").check()
    page.get_by_role("button", name="Add user").click()
    link = page.get_by_test_id("set-password-link")
    expect(link).to_contain_text("/set-password?token=sp_")
    page.shot("link-shown")
    url = link.inner_text()
    holder = page.context.browser.new_context().new_page()
    holder.goto(url)
    expect(holder.get_by_test_id("holder")).to_have_text("browser-monitor")
    holder.get_by_label("New password").fill("Holder-chosen-42")
    holder.get_by_label("Repeat the password").fill("Holder-chosen-42")
    holder.get_by_role("button", name="Set password").click()
    holder.wait_for_url(f"{live_server}/sign-in")
    holder.get_by_label("Username").fill("browser-monitor")
    holder.get_by_label("Password").fill("Holder-chosen-42")
    holder.get_by_role("button", name="Sign in").click()
    holder.wait_for_url(f"{live_server}/")
    expect(holder.get_by_role("button", name="Sign out")).to_be_visible()
    holder.goto(url)  # the link works once
    expect(holder.get_by_role("alert")).to_contain_text("unknown, already used or expired")
    holder.context.close()
