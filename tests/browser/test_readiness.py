"""Lock readiness in a real browser: the data manager reads what blocks the lock, per site and participant,
tries to lock and is refused with the blockers named, then locks with a reason and their password (the
override), and the page shows the banner every report from that lock will carry."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from tests.browser.test_randomization import _as, _enrolled
from tests.trialfixtures import PASSWORD, Trial, who
from trialwright.domain.roles import Role
from trialwright.services.forms import raise_query

pytestmark = pytest.mark.browser


def test_the_readiness_page_and_the_override(page, live_server: str, live_trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = _enrolled(live_trial)
    raise_query(live_trial.engine, who(live_trial, Role.MONITOR), pid, "Please confirm the screening age.")

    _as(page, live_server, Role.DATA_MANAGER)
    page.goto(f"{live_server}/data-management/readiness")
    summary = page.get_by_test_id("readiness-summary").inner_text()
    assert "Open blockers: 1" in summary and "Forms must be signed" in summary
    assert page.get_by_test_id("count-query").inner_text() == "1"
    assert "Please confirm the screening age." in page.get_by_test_id(f"blockers-{pid}").inner_text()
    page.shot("readiness")

    page.goto(f"{live_server}/data-management")
    page.fill("#lock-reason", "Final analysis")
    page.get_by_role("button", name="Lock the database").click()
    expect(page.get_by_test_id("override")).to_contain_text("Open blockers: 1")  # the confirmation says so
    page.get_by_role("button", name="Confirm").click()  # without the password: refused, nothing locked
    refused = page.locator("p.error").first.inner_text()
    assert refused.startswith("1 blocker (1 open query) blocks the lock; resolve it, or override"), refused
    page.shot("lock-refused")

    page.fill("#lock-reason", "Final analysis: the open query is about a screening value, not an outcome")
    page.fill("#lock-password", PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    banner = page.get_by_test_id("lock-banner").inner_text()
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert banner.startswith("Locked with 1 open blocker by data-manager on " + today), banner
    page.shot("locked-with-override")
