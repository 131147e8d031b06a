"""The database lock in Persian in a real browser (issue 24): the lock page and the lock confirmation list their
first blockers in the reader's words, the site by its Persian name (never its code), right to left."""

from __future__ import annotations

import re

import pytest
import yaml
from playwright.sync_api import expect

from tests.browser.test_randomization import _as, _enrolled
from tests.trialfixtures import FIRST_PROTOCOL, Trial, who
from trialwright.domain.roles import Role
from trialwright.services.forms import raise_query
from trialwright.services.users import set_preferences

pytestmark = pytest.mark.browser

RAZ = next(s for s in yaml.safe_load(FIRST_PROTOCOL.read_text(encoding="utf-8"))["sites"] if s["code"] == "RAZ")
ENGLISH = ("open query", "open:", "the lock policy needs", "not started", "neither done")


def test_the_persian_lock_pages_say_their_blockers_in_persian(page, live_server: str, live_trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = _enrolled(live_trial)
    raise_query(live_trial.engine, who(live_trial, Role.MONITOR), pid, "Please confirm the screening age.")
    manager = who(live_trial, Role.DATA_MANAGER).username
    set_preferences(live_trial.engine, manager, language="fa")
    try:
        _as(page, live_server, Role.DATA_MANAGER)
        page.goto(f"{live_server}/data-management")
        expect(page.locator("html")).to_have_attribute("dir", "rtl")
        for where in ("lock", "confirm"):
            if where == "confirm":
                page.fill("#lock-reason", "تحلیل نهایی")
                page.locator("form[action='/data-management/lock'] button[type=submit]").click()
                expect(page.get_by_test_id("override")).to_be_visible()
            listed = page.get_by_test_id("first-blockers").inner_text()
            lines = [line for line in listed.splitlines() if pid in line]
            assert lines, listed
            for line in lines:
                assert f"{pid} · {RAZ['translations']['fa']} · " in line, line
                assert not re.search(r"\bRAZ\b(?!-)", line) and not any(e in line for e in ENGLISH), line
            assert any("Please confirm the screening age." in line and "پرسش" in line for line in lines), lines
            page.shot(f"lock-first-blockers-fa-{where}")
    finally:
        set_preferences(live_trial.engine, manager, language="en")
