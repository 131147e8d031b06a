"""Safety in a real browser: an investigator reports a related SAE and sees it masked on their pages; the
pause stops the next randomization; the DSMB sees it by arm, resumes, and randomization works again."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.browser.test_randomization import ARM_NAMES, _as, _enrolled
from tests.trialfixtures import PASSWORD, Trial, who
from trialwright.domain.roles import Role
from trialwright.services.randomization import generate_list, randomize

WRITES_ON_BOTH_DATABASES = True  # what the pages write is written and read back on SQLite and PostgreSQL

pytestmark = pytest.mark.browser


def test_report_an_sae_masked_for_the_team_by_arm_for_the_dsmb_and_the_pause(  # type: ignore[no-untyped-def]
    page, live_server: str, live_trial: Trial
) -> None:
    generate_list(live_trial.engine, who(live_trial, Role.UNBLINDED_STATISTICIAN), seed=9)
    first, second = _enrolled(live_trial), _enrolled(live_trial)
    randomize(live_trial.engine, who(live_trial, Role.INVESTIGATOR), first)
    now = dt.datetime.now(ZoneInfo("Asia/Tehran"))

    _as(page, live_server, Role.INVESTIGATOR)
    page.goto(f"{live_server}/participants/{first}")
    page.get_by_role("link", name="Report an adverse event").click()
    page.locator("#term").fill("Anaphylaxis")
    page.locator("#onset").fill(now.date().isoformat())
    page.locator("#grade").select_option("4")
    page.get_by_role("radio", name="yes").check()
    page.get_by_role("button", name="Report adverse event").click()
    # Refused: no seriousness criterion and no causality; the page says which field and keeps the term.
    expect(page.locator("main")).to_contain_text("a serious adverse event needs at least one ICH E2A criterion")
    assert page.locator("#term").input_value() == "Anaphylaxis"
    page.get_by_role("radio", name="yes").check()
    page.get_by_role("checkbox", name="life threatening").check()
    page.locator("#causality").select_option("probable")
    page.locator("#action_taken").select_option("infusion_stopped")
    page.locator("#outcome").select_option("recovering")
    page.locator("#aware_at").fill(now.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Report adverse event").click()
    expect(page.get_by_test_id("susar")).to_be_visible()
    assert page.get_by_test_id("deadline-state-sae_to_sponsor").inner_text() == "pending"
    assert not any(name in page.content() for name in ARM_NAMES)
    page.shot("sae-reported")
    page.get_by_role("link", name="Safety", exact=True).click()
    expect(page.locator("main")).to_contain_text("All randomized participants, pooled")
    assert "Randomization is paused" in page.get_by_test_id("pause-state").inner_text()
    assert not any(name in page.content() for name in ARM_NAMES)
    page.shot("safety-masked")
    page.goto(f"{live_server}/participants/{second}")
    expect(page.get_by_test_id("pause")).to_be_visible()
    page.get_by_role("button", name="Randomize").click()
    expect(page.locator("main")).to_contain_text("paused by the protocol's safety rule")
    expect(page.locator("main")).to_contain_text("Not yet randomized.")

    _as(page, live_server, Role.DSMB_MEMBER)
    page.get_by_role("link", name="DSMB safety review").click()
    table = page.get_by_test_id("safety-table").inner_text()
    assert all(name in table for name in ARM_NAMES)
    assert "Anaphylaxis" in page.get_by_test_id("listing").inner_text()
    page.shot("dsmb-by-arm")
    page.locator("#decision").select_option("resume")
    page.locator("#reason").fill("Reviewed by arm: anaphylaxis treated, no further risk signal")
    page.get_by_role("button", name="Record decision").click()
    expect(page.get_by_test_id("what-will-happen")).to_contain_text("Randomization reopens at every site")
    page.locator("#password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    assert page.get_by_test_id("pause-state").inner_text().startswith("Randomization is open.")
    expect(page.get_by_test_id("decision")).to_have_count(1)

    _as(page, live_server, Role.INVESTIGATOR)
    page.goto(f"{live_server}/participants/{second}")
    page.get_by_role("button", name="Randomize").click()
    page.get_by_role("button", name="Confirm").click()
    assert page.get_by_test_id("randomization-number").inner_text() == "2"
    assert page.get_by_test_id("arm").inner_text() == "masked"
