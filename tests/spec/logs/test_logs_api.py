"""Log entries through the REST API (both databases): the same service, so the same refusals (422 naming the field
and the rule), reasons and audit; a monitor reads, only data entry roles write."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.spec.logs.test_log_entries import HEPARIN
from tests.trialfixtures import Trial, username
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.users import issue_token
from trialwright.settings import Settings
from trialwright.web.app import create_app


def test_log_entries_through_the_api(trial: Trial, pid: str) -> None:
    def bearer(role: Role) -> dict[str, str]:
        token, _ = issue_token(trial.engine, username(role), name="t", actor="test")
        return {"Authorization": f"Bearer {token}"}

    url = f"/api/v1/participants/{pid}/logs/conmeds"
    coord, monitor = bearer(Role.STUDY_COORDINATOR), bearer(Role.MONITOR)
    with TestClient(create_app(Settings(database_url=trial.url))) as api:
        bad = api.post(url, headers=coord, json={"values": {**HEPARIN, "route": "NASAL", "dose": -1}})
        assert bad.status_code == 422
        assert [e["field"] for e in bad.json()["errors"]] == ["dose", "route"]
        assert api.post(url, headers=monitor, json={"values": HEPARIN}).status_code == 403
        added = api.post(url, headers=coord, json={"values": HEPARIN})
        assert added.status_code == 201, added.text
        assert (added.json()["sequence"], added.json()["values"]["dose"]["value"]) == (1, 40)
        assert added.json()["values"]["dose"].get("value_unit") is None  # its unit is the dose_unit field's choice
        unexplained = api.post(f"{url}/1", headers=coord, json={"values": {"dose": 60}})
        assert unexplained.status_code == 422  # the reason is required by the body's schema
        amended = api.post(f"{url}/1", headers=coord, json={"values": {"dose": 60}, "reason": "chart says 60",
                                                           "version": 1})  # fmt: skip
        assert amended.status_code == 200 and amended.json()["version"] == 2
        removed = api.post(f"{url}/1/remove", headers=coord, json={"reason": "duplicate", "version": 2})
        assert removed.json()["state"] == "removed" and removed.json()["removed_reason"] == "duplicate"
        listed = api.get(url, headers=monitor)
        assert [(e["sequence"], e["state"]) for e in listed.json()] == [(1, "removed")]
    (change,) = audit.entries(trial.engine, action_prefix="log.value_changed")
    assert (change.actor, change.field, change.reason) == (username(Role.STUDY_COORDINATOR), "dose", "chart says 60")
