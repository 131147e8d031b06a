"""Randomization in a real browser: the statistician seals the list, the investigator randomizes, the
pharmacist prepares the dose, and the investigator performs an emergency unblinding; the coordinator
never sees the arm, and the DSMB sees the unblinding log."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from tests.browser.test_pages import _sign_in
from tests.spec.eligibility.test_first_trial_criteria import ELIGIBLE
from tests.trialfixtures import PASSWORD, Trial, screener
from trialwright.domain.roles import Role
from trialwright.services.screening import enrol, record_consent, screen

WRITES_ON_BOTH_DATABASES = True  # what the pages write is written and read back on SQLite and PostgreSQL

pytestmark = pytest.mark.browser
ARM_NAMES = ("hUCMSC-Exos + standard care", "Placebo (PBS) + standard care")


def _enrolled(trial: Trial) -> str:
    admin = screener(trial.engine)  # screening is a coordinator's (docs/roles.md)
    values = {k: v for k, v in ELIGIBLE.items() if k != "informed_consent"}
    s = screen(trial.engine, admin, site="RAZ", screened_on=dt.datetime.now(dt.UTC).date(), values=values)
    now = dt.datetime.now(dt.UTC)
    record_consent(
        trial.engine, admin, s.id, form_version="1.0", given_by="participant", obtained_by="K", obtained_at=now
    )
    participant = enrol(trial.engine, admin, s.id).participant
    assert participant is not None
    return participant.participant_id


def _as(page, base: str, role: Role) -> None:  # type: ignore[no-untyped-def]
    page.context.clear_cookies()
    _sign_in(page, base, role)


def test_randomize_prepare_and_unblind(page, live_server: str, live_trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = _enrolled(live_trial)

    _as(page, live_server, Role.UNBLINDED_STATISTICIAN)
    page.get_by_role("link", name="Allocation list").click()
    page.get_by_role("button", name="Generate and seal").click()
    expect(page.get_by_test_id("list-record")).to_have_count(1)
    page.shot("list-sealed")

    _as(page, live_server, Role.INVESTIGATOR)
    page.get_by_role("link", name="Participants", exact=True).click()
    page.get_by_role("link", name=pid).click()
    expect(page.locator("main")).to_contain_text("Not yet randomized.")
    page.get_by_role("button", name="Randomize").click()
    expect(page.get_by_test_id("what-will-happen")).to_contain_text("cannot be undone")
    page.get_by_role("button", name="Confirm").click()
    number = page.get_by_test_id("randomization-number").inner_text()
    code = page.get_by_test_id("preparation-code").inner_text()
    assert number.isdigit() and code.startswith("P-") and page.get_by_test_id("arm").inner_text() == "masked"
    assert not any(name in page.content() for name in ARM_NAMES)
    page.shot("randomized-investigator")

    _as(page, live_server, Role.UNBLINDED_PHARMACIST)
    page.get_by_role("link", name="Pharmacy").click()
    page.get_by_role("link", name=code).click()
    arm = page.get_by_test_id("prepare-arm").inner_text()
    assert arm in ARM_NAMES
    page.get_by_label("Product lot").fill("EXO-2021-07")
    page.get_by_label("Volume drawn up (mL)").fill("3")
    if arm == "hUCMSC-Exos + standard care":  # the particle count is the exosome arm's alone
        page.get_by_label("Particle count (particles)").fill("5e10")
    page.get_by_role("button", name="Record preparation").click()
    expect(page.get_by_test_id("prepared")).to_be_visible()
    page.shot("prepared")

    _as(page, live_server, Role.STUDY_COORDINATOR)
    page.goto(f"{live_server}/participants/{pid}")
    assert page.get_by_test_id("arm").inner_text() == "masked" and code in page.inner_text("main")
    assert not any(name in page.content() for name in ARM_NAMES)

    _as(page, live_server, Role.INVESTIGATOR)
    page.goto(f"{live_server}/participants/{pid}")
    page.get_by_role("link", name="Emergency unblinding").click()
    page.get_by_label("Reason").fill("Suspected anaphylaxis; treatment depends on the product")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Your password, to confirm").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    assert arm in page.get_by_test_id("revealed-arm").inner_text()
    page.shot("unblinded")
    page.goto(f"{live_server}/participants/{pid}")
    expect(page.get_by_test_id("unblinded-flag")).to_be_visible()

    _as(page, live_server, Role.DSMB_MEMBER)
    expect(page.locator("main")).to_contain_text(f"Emergency unblinding of {pid}")
    page.get_by_role("link", name="Unblinding log").click()
    assert "Suspected anaphylaxis" in page.get_by_test_id("unblinding").inner_text()
    page.shot("unblinding-log")
