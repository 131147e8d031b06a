"""Data entry in a real browser: day-7 laboratory values with a soft-limit CRP, the automatic query
answered by the coordinator, the form completed, verified by the monitor and signed by the investigator."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from tests.browser.test_randomization import _as, _enrolled
from tests.trialfixtures import PASSWORD, Trial, who
from trialwright.domain.roles import Role
from trialwright.services.forms import record_visit
from trialwright.store.engine import session_scope
from trialwright.store.screening_tables import consents, participants

WRITES_ON_BOTH_DATABASES = True  # what the pages write is written and read back on SQLite and PostgreSQL

pytestmark = pytest.mark.browser
LABS = {
    "tnf_alpha": "35", "il6": "80", "ddimer": "1.8", "lymphocytes": "700", "cd3_abs": "450", "cd3_pct": "64",
    "cd4_abs": "280", "cd4_pct": "40", "cd8_abs": "150", "cd8_pct": "21",
}  # fmt: skip


def test_day7_labs_query_verify_sign(page, live_server: str, live_trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = _enrolled(live_trial)
    now = dt.datetime.now(dt.UTC)
    tehran_today = (now + dt.timedelta(hours=3, minutes=30)).date()
    with session_scope(live_trial.engine) as session:  # consented and enrolled ten days ago, infused seven days ago
        session.execute(
            update(participants)
            .where(participants.c.participant_id == pid)
            .values(enrolled_at=now - dt.timedelta(days=10))
        )
        screening = select(participants.c.screening_id).where(participants.c.participant_id == pid)
        session.execute(update(consents).where(consents.c.screening_id == screening.scalar_subquery())
                        .values(obtained_at=now - dt.timedelta(days=10, hours=1)))  # fmt: skip
    record_visit(
        live_trial.engine, who(live_trial, Role.STUDY_COORDINATOR), pid, "infusion", tehran_today - dt.timedelta(days=7)
    )

    _as(page, live_server, Role.STUDY_COORDINATOR)
    page.goto(f"{live_server}/participants/{pid}")
    assert page.get_by_test_id("visit-status-day7").inner_text() == "due"
    page.get_by_test_id("visit-day7").get_by_role("link", name="Laboratory: not started").click()
    page.fill("#v-sampled_at", f"{tehran_today.isoformat()}T00:00")
    page.fill("#v-crp", "450")
    for name, value in LABS.items():
        page.fill(f"#v-{name}", value)
    page.get_by_role("button", name="Save", exact=True).click()
    assert page.get_by_test_id("form-state").inner_text() == "draft"
    query = page.get_by_test_id("query")
    # the query beside its field, said in words (not "crp:"), once: the queries section leads to the field
    said = "C-reactive protein 450 mg/L is outside the expected range 0-400 mg/L"
    assert said in page.get_by_test_id("field-query-crp").inner_text()
    assert said not in query.inner_text() and page.get_by_text(said).count() == 1
    page.shot("soft-limit-query")
    query.get_by_label("Answer").fill("Confirmed against the laboratory report")
    query.get_by_role("button", name="Answer query").click()
    assert "Confirmed against the laboratory report" in page.get_by_test_id("query").inner_text()
    page.get_by_role("button", name="Mark complete").click()
    assert page.get_by_test_id("form-state").inner_text() == "complete"
    url = page.url

    _as(page, live_server, Role.MONITOR)
    page.goto(url)
    page.get_by_role("button", name="Close query").click()
    page.get_by_role("button", name="Source data verified").click()
    assert page.get_by_test_id("form-state").inner_text() == "verified"

    _as(page, live_server, Role.INVESTIGATOR)
    page.goto(url)
    assert "legally binding" in page.get_by_test_id("meaning").inner_text()
    page.get_by_label("Your password, to sign").fill(PASSWORD)
    page.get_by_role("button", name="Sign", exact=True).click()
    assert page.get_by_test_id("form-state").inner_text() == "signed"
    page.shot("signed")
    page.goto(f"{live_server}/participants/{pid}")
    assert "Laboratory: signed" in page.get_by_test_id("visit-day7").inner_text()
    page.shot("timeline")
