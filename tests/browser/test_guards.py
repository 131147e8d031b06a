"""Guards on what cannot be undone, in a real browser, on a trial whose target sample size is 2: randomizing asks
first (cancelling changes nothing), warns past the target (in English and in Persian), the emergency unblinding
and the database lock ask first, and the pharmacist's list is by state with who and when."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.test_accessibility import violations
from tests.browser.test_randomization import ARM_NAMES, _as, _enrolled
from tests.spec.protocol.conftest import mutated_text
from tests.trialfixtures import PASSWORD, Trial, make_trial, username, who
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol_text
from trialwright.services import audit, clock
from trialwright.services.randomization import allocation_of, generate_list, prepare, randomize, what_to_prepare

WRITES_ON_BOTH_DATABASES = True  # what the pages write is written and read back on SQLite and PostgreSQL

pytestmark = pytest.mark.browser


def _small_target(doc: Any) -> None:
    doc["sample_size"]["target"] = 2
    doc["sample_size"]["per_arm"] = {"EXO": 1, "PBO": 1}


@pytest.fixture(scope="module")
def live_trial(live_database: str) -> Trial:
    """This module's trial: the first protocol with a target of 2, so the third randomization goes past it."""
    trial = make_trial(live_database, load_protocol_text(mutated_text(_small_target)))
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=11)
    return trial


def _randomized(trial: Trial) -> int:
    audit.chain_pending(trial.engine)  # on PostgreSQL, any entry another process's pass has yet to chain
    return len(audit.entries(trial.engine, action_prefix="participant.randomized"))


def test_randomize_asks_first_and_cancel_changes_nothing(page, live_server: str, live_trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = _enrolled(live_trial)
    _as(page, live_server, Role.STUDY_COORDINATOR)
    page.goto(f"{live_server}/participants/{pid}")
    page.get_by_role("button", name="Randomize").click()
    what = page.get_by_test_id("what-will-happen")
    expect(what).to_contain_text(f"Participant {pid} (site Razi hospital) is given the next concealed allocation")
    expect(page.get_by_test_id("target")).to_have_text(
        "This participant would be number 1 of the protocol's target of 2."
    )
    assert not any(name in page.content() for name in ARM_NAMES)
    assert violations(page) == []  # WCAG 2.2 A/AA by axe-core, as the main pages (test_accessibility.py)
    page.shot("randomize-asked")
    page.get_by_role("link", name="Cancel: change nothing").click()
    expect(page.locator("main")).to_contain_text("Not yet randomized.")
    assert (
        _randomized(live_trial) == 0
        and allocation_of(live_trial.engine, who(live_trial, Role.STUDY_COORDINATOR), pid) is None
    )
    page.shot("randomize-cancelled")
    page.get_by_role("button", name="Randomize").click()
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_test_id("randomization-number")).to_have_text("1")
    assert page.get_by_test_id("arm").inner_text() == "masked" and _randomized(live_trial) == 1


def test_past_the_target_in_english_and_in_persian(page, live_server: str, live_trial: Trial) -> None:  # type: ignore[no-untyped-def]
    randomize(live_trial.engine, who(live_trial, Role.INVESTIGATOR), _enrolled(live_trial))  # 2 of 2
    before = _randomized(live_trial)
    assert before == 2
    english, persian = _enrolled(live_trial), _enrolled(live_trial)

    _as(page, live_server, Role.INVESTIGATOR)
    page.goto(f"{live_server}/participants/{english}")
    page.get_by_role("button", name="Randomize").click()
    warning = page.get_by_test_id("past-target")
    expect(warning).to_contain_text("Past the target sample size.")
    expect(warning).to_contain_text(
        "2 participants are randomized in the trial and the protocol's target is 2: this participant would be number 3."
    )
    expect(warning).to_contain_text("you may go on")
    page.shot("past-target")
    page.get_by_role("button", name="Confirm").click()  # allowed: the protocol sets no ceiling
    expect(page.get_by_test_id("randomization-number")).to_have_text("3")

    _as(page, live_server, Role.STUDY_COORDINATOR)
    page.get_by_label("Language").select_option("fa")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_load_state()
    page.goto(f"{live_server}/participants/{persian}")
    page.get_by_role("button", name="تصادفی‌سازی کن").click()
    assert page.locator("html").get_attribute("dir") == "rtl"
    warning = page.get_by_test_id("past-target")
    expect(warning).to_contain_text("فراتر از حجم نمونهٔ هدف.")
    expect(warning).to_contain_text("۳ شرکت‌کننده در کارآزمایی تصادفی‌سازی شده‌اند و هدف پروتکل ۲ است")  # Persian digits
    expect(warning).to_contain_text("این شرکت‌کننده نفر ۴ خواهد بود")
    assert not any(name in page.content() for name in ARM_NAMES)
    assert violations(page) == []
    page.shot("past-target-persian")
    page.get_by_role("link", name="انصراف: هیچ تغییری داده نشود").click()  # cancelled: nothing changes
    assert _randomized(live_trial) == 3
    page.get_by_label("زبان").select_option("en")
    page.get_by_role("button", name="اعمال").click()
    page.wait_for_load_state()


def test_unblinding_asks_first(page, live_server: str, live_trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = _enrolled(live_trial)
    randomize(live_trial.engine, who(live_trial, Role.INVESTIGATOR), pid)
    _as(page, live_server, Role.INVESTIGATOR)
    page.goto(f"{live_server}/participants/{pid}")
    page.get_by_role("link", name="Emergency unblinding").click()
    page.get_by_label("Reason").fill("Severe reaction; the antidote depends on the product")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_test_id("what-will-happen")).to_contain_text(f"The arm of participant {pid} is shown to you")
    expect(page.get_by_test_id("notified")).to_contain_text("Unblinded statistician, DSMB member")
    assert not any(name in page.content() for name in ARM_NAMES)
    assert not audit.entries(live_trial.engine, action_prefix="participant.unblinded")
    assert violations(page) == []
    page.shot("unblind-asked")
    page.get_by_label("Your password, to confirm").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    assert any(name in page.get_by_test_id("revealed-arm").inner_text() for name in ARM_NAMES)
    page.shot("unblinded")


def _prepare(trial: Trial, code: str) -> None:
    pharmacist = who(trial, Role.UNBLINDED_PHARMACIST)
    values = {"product_lot": "L1", "volume_ml": 3, "particles": 5e10}
    declared = [a.id for a in what_to_prepare(trial.engine, pharmacist, code).attributes]
    prepare(trial.engine, pharmacist, code, {k: values[k] for k in declared})


def test_the_pharmacy_list_by_state(page, live_server: str, live_trial: Trial) -> None:  # type: ignore[no-untyped-def]
    investigator = who(live_trial, Role.INVESTIGATOR)
    earlier = randomize(live_trial.engine, investigator, _enrolled(live_trial)).preparation_code
    with clock.simulated_time(dt.datetime.now(dt.UTC) - dt.timedelta(days=2)):
        _prepare(live_trial, earlier)  # two days ago: done on an earlier day
    fresh = randomize(live_trial.engine, investigator, _enrolled(live_trial)).preparation_code

    _as(page, live_server, Role.UNBLINDED_PHARMACIST)
    page.get_by_role("link", name="Pharmacy").click()
    expect(page.get_by_test_id("tab-to_prepare")).to_have_attribute("aria-current", "page")
    row = page.get_by_test_id(f"code-{fresh}")
    expect(row).to_contain_text(username(Role.INVESTIGATOR))  # who randomized
    expect(row).to_contain_text("+03:30")  # when, on the site's clock
    expect(page.get_by_test_id("zones")).to_contain_text("Razi hospital Asia/Tehran")  # the site by its name
    expect(page.get_by_test_id(f"code-{earlier}")).to_have_count(0)
    page.shot("pharmacy-to-prepare")
    row.get_by_role("link", name=fresh).click()
    page.get_by_label("Product lot").fill("LOT-7")
    page.get_by_label("Volume drawn up (mL)").fill("3")
    if page.get_by_label("Particle count (particles)").count():
        page.get_by_label("Particle count (particles)").fill("5e10")
    page.get_by_role("button", name="Record preparation").click()
    expect(page.get_by_test_id("prepared")).to_be_visible()

    page.get_by_role("link", name="Pharmacy").click()
    page.get_by_test_id("tab-prepared_today").click()
    today = page.get_by_test_id(f"code-{fresh}")
    expect(today).to_contain_text(username(Role.UNBLINDED_PHARMACIST))  # who prepared
    expect(page.get_by_test_id(f"code-{earlier}")).to_have_count(0)
    page.shot("pharmacy-prepared-today")
    page.get_by_test_id("tab-done").click()
    expect(page.get_by_test_id(f"code-{earlier}")).to_contain_text(username(Role.UNBLINDED_PHARMACIST))
    expect(page.get_by_test_id(f"code-{fresh}")).to_have_count(0)
    page.shot("pharmacy-done")

    page.get_by_label("Language").select_option("fa")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_load_state()
    expect(page.get_by_test_id("tab-done")).to_contain_text("انجام‌شده (روزهای پیشین)")
    expect(page.get_by_test_id("zones")).to_contain_text("زمان‌ها به وقت محلی هر مرکز است")
    page.shot("pharmacy-persian")
    page.get_by_label("زبان").select_option("en")
    page.get_by_role("button", name="اعمال").click()
    page.wait_for_load_state()


def test_the_lock_asks_first(page, live_server: str, live_trial: Trial) -> None:  # type: ignore[no-untyped-def]
    """Last in this module: it locks the trial."""
    _as(page, live_server, Role.DATA_MANAGER)
    page.goto(f"{live_server}/data-management")
    page.fill("#lock-reason", "Final analysis")
    page.get_by_role("button", name="Lock the database").click()
    expect(page.get_by_test_id("what-will-happen")).to_contain_text("The whole trial database is locked")
    assert violations(page) == []
    page.shot("lock-asked")
    page.get_by_role("link", name="Cancel: change nothing").click()
    expect(page.locator("main")).to_contain_text("The trial database is open")
    page.fill("#lock-reason", "Final analysis")
    page.get_by_role("button", name="Lock the database").click()
    if page.get_by_test_id("override").count():  # visits and forms of the participants above block it
        page.fill("#lock-password", PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("main")).to_contain_text("The trial database is locked")
    page.shot("locked")
