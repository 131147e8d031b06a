"""A child's dissent recorded with a re-consent after enrolment (ICH E11 2.6.3), on both databases.

The first protocol given ``eligibility.assent`` (from 18 years, so its 45-year-old patient is of assent age). A
dissent before enrolment stops the enrolment; after it, the participant is in the trial, so the dissent is a decision
the investigator records: withdraw, or continue with the ethics committee's reason.

| participant                                              | work list (investigator) | participant page | then        |
|----------------------------------------------------------|--------------------------|------------------|-------------|
| assent given, enrolled, re-consent with the dissent      | listed                   | says so (en, fa) | -           |
|   ... decision continue, the ethics committee's reason   | not listed               | says nothing     | audited     |
|   ... decision withdraw                                  | not listed               | says nothing     | withdrawn   |
| assent given, enrolled, re-consent with the assent given | not listed               | says nothing     | -           |
| the coordinator records the decision                     | refused (the investigator's decision)       | -           |
"""

from __future__ import annotations

import html
import json
from typing import Any

import pytest
from sqlalchemy import text

from tests.spec.forms.conftest import earlier_today
from tests.spec.screening.assent_fixtures import DISSENT, GIVEN, LAR
from tests.spec.screening.test_screening_consent_enrolment import TODAY, TYPED
from tests.spec.web.test_randomization_pages import as_role
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.screening import ScreeningError, enrol, record_consent, screen
from trialwright.services.screening.dissent import record_dissent_decision
from trialwright.services.users import set_preferences
from trialwright.services.worklist import work_list
from trialwright.settings import Settings
from trialwright.web.app import create_app


def _enrolled_then_reconsented(trial: Trial, **assent: Any) -> str:
    coordinator, investigator = who(trial, Role.STUDY_COORDINATOR), who(trial, Role.INVESTIGATOR)
    sid = screen(trial.engine, coordinator, site="RAZ", screened_on=TODAY, values=dict(TYPED)).id
    record_consent(trial.engine, investigator, sid, **LAR, obtained_at=earlier_today(60), **GIVEN,
                   assent_obtained_at=earlier_today(60))  # fmt: skip
    participant = enrol(trial.engine, coordinator, sid).participant
    assert participant is not None
    record_consent(trial.engine, investigator, sid, **LAR, kind="reconsent", obtained_at=earlier_today(1), **assent,
                   assent_obtained_at=earlier_today(1))  # fmt: skip
    return str(participant.participant_id)


def _listed(trial: Trial) -> list[str]:
    dissents = work_list(trial.engine, who(trial, Role.INVESTIGATOR)).dissents
    assert dissents is not None  # the investigator's work list has the list
    return [d.participant_id for d in dissents]


def _page(trial: Trial, pid: str, language: str = "en") -> str:
    if language == "fa":
        set_preferences(trial.engine, "investigator", language="fa")
    with as_role(create_app(Settings(database_url=trial.url, lockout_threshold=3)), Role.INVESTIGATOR) as inv:
        return html.unescape(inv.get(f"/participants/{pid}").text)


@pytest.mark.parametrize("language", ["en", "fa"])
def test_a_dissent_after_enrolment_is_on_the_work_list_and_the_participant_page(kids: Trial, language: str) -> None:
    pid = _enrolled_then_reconsented(kids, **DISSENT)
    assert _listed(kids) == [pid]
    assert work_list(kids.engine, who(kids, Role.STUDY_COORDINATOR)).dissents is None  # the investigator's decision
    page = _page(kids, pid, language)
    assert 'data-testid="dissent"' in page
    said = ("مخالفت خود شرکت‌کننده با رضایت مجدد" if language == "fa"
            else "The participant's own dissent was recorded with the re-consent of")  # fmt: skip
    assert said in page


def test_continuing_needs_the_ethics_committees_reason_and_is_audited(kids: Trial) -> None:
    pid = _enrolled_then_reconsented(kids, **DISSENT)
    investigator = who(kids, Role.INVESTIGATOR)
    with pytest.raises(ScreeningError, match=r"^reason: "):
        record_dissent_decision(kids.engine, investigator, pid, decision="continue", reason=" ")
    with pytest.raises(ScreeningError, match=r"^role: the investigator records"):
        record_dissent_decision(kids.engine, who(kids, Role.STUDY_COORDINATOR), pid, decision="continue",
                                reason="IEC 2026/14")  # fmt: skip
    assert _listed(kids) == [pid]
    record_dissent_decision(kids.engine, investigator, pid, decision="continue", reason="IEC 2026/14: no alternative")
    assert _listed(kids) == []
    assert 'data-testid="dissent"' not in _page(kids, pid)
    (entry,) = audit.entries(kids.engine, action_prefix="consent.dissent_continued")
    assert (entry.participant, entry.reason) == (pid, "IEC 2026/14: no alternative")
    assert json.loads(entry.new_value or "{}")["decision"] == "continue"


def test_withdrawing_on_the_dissent_withdraws_from_the_intervention(kids: Trial) -> None:
    pid = _enrolled_then_reconsented(kids, **DISSENT)
    record_dissent_decision(kids.engine, who(kids, Role.INVESTIGATOR), pid, decision="withdraw",
                            reason="the child's dissent respected")  # fmt: skip
    assert _listed(kids) == []
    with kids.engine.connect() as c:  # read from the table, not through the service
        rows = c.execute(text("SELECT scope, cause FROM withdrawals WHERE participant_id = :p"), {"p": pid}).all()
    assert [tuple(r) for r in rows] == [("intervention", "withdrew_consent")]


def test_a_reconsent_with_the_assent_given_asks_nothing(kids: Trial) -> None:
    pid = _enrolled_then_reconsented(kids, **GIVEN)
    assert _listed(kids) == []
    assert 'data-testid="dissent"' not in _page(kids, pid)
