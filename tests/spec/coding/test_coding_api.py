"""The coding in the adverse event API (both databases): each event answers its MedDRA coding (LLT, PT, HLT, HLGT
and SOC codes and names, the release, the term it coded, who coded it and when) once coded, null before; a
follow-up that changes the term marks the coding stale. The safety tables' lines by SOC and PT are in the API too,
pooled for the team."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient

from tests.spec.coding.test_coding_service import ZORBIC_PATH, event  # noqa: F401  (the fixture)
from tests.spec.forms.conftest import NOW
from tests.trialfixtures import Trial, username, who
from trialwright.domain.roles import Role
from trialwright.services.coding import code_event
from trialwright.services.safety import follow_up
from trialwright.services.users import issue_token
from trialwright.settings import Settings
from trialwright.web.app import create_app


def test_the_adverse_event_api_answers_the_coding_or_null(trial: Trial, event: str) -> None:  # noqa: F811
    token, _ = issue_token(trial.engine, username(Role.MONITOR), name="t", actor="test")
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(Settings(database_url=trial.url))) as api:
        assert api.get(f"/api/v1/adverse-events/{event}", headers=headers).json()["coding"] is None
        before = dt.datetime.now(dt.UTC)
        code_event(trial.engine, who(trial, Role.CODER), event, 90000011)
        coding = api.get(f"/api/v1/adverse-events/{event}", headers=headers).json()["coding"]
        assert {k: coding[k] for k in ZORBIC_PATH} == ZORBIC_PATH
        assert (coding["dictionary"], coding["version"], coding["verbatim"], coding["stale"]) == (
            "MedDRA", "27.1", "Acute kidney injury", False)  # fmt: skip
        assert coding["coded_by"] == username(Role.CODER)
        assert before <= dt.datetime.fromisoformat(coding["coded_at"]) <= dt.datetime.now(dt.UTC)
        (listed,) = api.get("/api/v1/adverse-events", headers=headers).json()["items"]
        assert listed["coding"] == coding
        follow_up(trial.engine, who(trial, Role.INVESTIGATOR), event,
                  {"term": "Blorp creatinine high", "aware_at": NOW.isoformat()}, "lab review")  # fmt: skip
        assert api.get(f"/api/v1/adverse-events/{event}", headers=headers).json()["coding"]["stale"] is True
        terms = api.get("/api/v1/safety/tables", headers=headers).json()["terms"]
        assert terms == [{"level": "not_coded", "soc": None, "pt": None, "participants": {"All participants": 1},
                          "events": {"All participants": 1}, "totals": {"All participants": 1}}]  # fmt: skip
