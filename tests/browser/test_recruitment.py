"""Recruitment in a real browser, on a simulated trial (40 patients screened in 2021): the coordinator opens the
dashboard, sees the counts and the forecast with its plots and no arm, asks a what-if (as of a day in 2021, with
a new site and a later end) and gets the new forecast; the DSMB sees the same page by arm."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_pages import _sign_in
from tests.browser.test_randomization import ARM_NAMES, _as
from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.services.recruitment import recruitment_status
from trialwright.services.simulation import simulate

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live_trial(tmp_path_factory: pytest.TempPathFactory) -> Trial:
    """The live server's trial (this module's own): simulated through the services, one user per role."""
    trial = make_trial(f"sqlite:///{tmp_path_factory.mktemp('recruitment') / 'trial.db'}")
    simulate(trial.engine, FIRST_PROTOCOL, 40, seed=11)
    return trial


def test_the_dashboard_the_forecast_and_a_what_if(page, live_server: str, live_trial: Trial) -> None:  # type: ignore[no-untyped-def]
    t = recruitment_status(live_trial.engine, who(live_trial, Role.STUDY_COORDINATOR)).totals
    assert t.screened == 40 and 0 < t.randomized < 30  # the simulated trial fell short, as the real one did
    _sign_in(page, live_server, Role.STUDY_COORDINATOR)
    page.get_by_role("link", name="Recruitment", exact=True).click()
    page.wait_for_url(f"{live_server}/recruitment")
    assert page.get_by_test_id("screened").inner_text() == "40"
    assert page.get_by_test_id("randomized").inner_text() == f"{t.randomized} / 30 ({100 * t.randomized / 30:.0f}%)"
    expect(page.get_by_test_id("site-RAZ")).to_be_visible()
    expect(page.get_by_test_id("site-GOL")).to_be_visible()
    expect(page.locator("svg[data-plot=cumulative]")).to_be_visible()
    expect(page.locator("svg[data-plot=forecast]")).to_be_visible()
    # Today is years after the simulated recruitment: the forecast still comes, and says why to doubt it.
    assert page.get_by_test_id("median-date").inner_text()
    assert "has passed" in page.get_by_test_id("warnings").inner_text()
    registry = page.get_by_test_id("registry-text").input_value()
    assert f"{t.randomized} participants randomized against a target of 30" in registry
    assert not any(name in page.content() for name in ARM_NAMES)
    page.shot("dashboard")

    page.get_by_label("As of (a past date, to see the forecast as it was then)").fill("2021-07-01")
    page.get_by_label("A new site: participants randomized a month").fill("6")
    page.get_by_label("The new site opens on").fill("2021-07-15")
    page.get_by_label("A later end of recruitment").fill("2021-12-31")
    page.get_by_role("button", name="Update the forecast").click()
    page.wait_for_url("**/recruitment?*")
    assert page.get_by_test_id("as-of").inner_text() == "As of 2021-07-01, 1400/04/10"
    assert "6 randomized a month from 2021-07-15, 1400/04/24" in page.get_by_test_id("new-site").inner_text()
    assert page.get_by_test_id("probability-end-date").inner_text().endswith("%")
    assert page.get_by_test_id("median-date").inner_text().startswith("2021-")
    assert page.locator("#new_site_rate").input_value() == "6"  # the form keeps the question
    assert not any(name in page.content() for name in ARM_NAMES)
    page.shot("what-if")

    page.get_by_label("The new site opens on").fill("2021-06-01")
    page.get_by_role("button", name="Update the forecast").click()
    assert "new_site_opens: is in the past" in page.get_by_test_id("error-new_site_opens").inner_text()
    page.shot("what-if-refused")

    _as(page, live_server, Role.DSMB_MEMBER)
    page.goto(f"{live_server}/recruitment")
    table = page.get_by_test_id("by-arm").inner_text()
    assert all(name in table for name in ARM_NAMES)
    page.shot("by-arm")
