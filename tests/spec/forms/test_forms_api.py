"""The forms API: the same rules as the service, answered as JSON naming each field and rule."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from tests.spec.forms.conftest import TODAY
from tests.trialfixtures import PASSWORD, Trial, username
from trialwright.domain.roles import Role
from trialwright.services.users import issue_token
from trialwright.settings import Settings
from trialwright.web.app import create_app

VITALS = {
    "assessed_at": f"{TODAY.isoformat()}T00:00+03:30", "resp_rate": 26, "spo2": 90, "on_oxygen": True,
    "systolic_bp": 105, "pulse": 115, "consciousness": "alert", "temperature": 38.5, "fio2": 0.5,
}  # fmt: skip


@pytest.mark.covers("REG-2")
def test_forms_through_the_api(trial: Trial, pid: str) -> None:
    def bearer(role: Role) -> dict[str, str]:
        token, _ = issue_token(trial.engine, username(role), name="t", actor="test")
        return {"Authorization": f"Bearer {token}"}

    url = f"/api/v1/participants/{pid}/visits/baseline/forms"
    coord, monitor, inv = bearer(Role.STUDY_COORDINATOR), bearer(Role.MONITOR), bearer(Role.INVESTIGATOR)
    with TestClient(create_app(Settings(database_url=trial.url))) as api:
        bad = api.post(f"{url}/vitals", headers=coord, json={"values": {"spo2": 101, "pulse": "x"}})
        # ``field`` and ``rule`` name the id (scripts read them); ``message`` says the field by its label.
        assert bad.status_code == 422 and bad.json()["errors"] == [
            {"field": "spo2", "rule": "spo2: 101 % is outside the accepted range 50-100 %",
             "message": "SpO2: 101 % is outside the accepted range 50-100 %"},
            {"field": "pulse", "rule": "pulse: must be a number, not 'x'",
             "message": "Pulse: must be a number, not 'x'"},
        ]  # fmt: skip
        assert api.get(f"{url}/vitals", headers=coord).status_code == 404  # nothing saved
        assert api.post(f"{url}/vitals", headers=monitor, json={"values": {"spo2": 95}}).status_code == 403
        api.post(
            f"{url}/performance", headers=coord, json={"values": {"assessed_on": TODAY.isoformat(), "status": "3"}}
        )
        saved = api.post(f"{url}/vitals", headers=coord, json={"values": VITALS})
        assert saved.status_code == 200
        values = saved.json()["values"]
        # The worked example: NEWS2 12 (high); PRIEST 12 + age 45 (0) + male (1) + performance 3 (3) = 16.
        assert values["news2"]["value"] == 12 and values["news2_band"]["value"] == "high"
        assert values["news2"]["components"] == {
            "resp_rate": 3, "spo2": 3, "oxygen": 2, "systolic_bp": 1, "pulse": 2, "consciousness": 0, "temperature": 1,
        }  # fmt: skip
        assert values["priest_score"]["value"] == 16 and values["priest_band"]["value"] == "not low risk"
        assert values["priest_score"]["components"]["age"] == 0
        # Each canonical value says its unit (as typed: ``unit``; the field's, derived values too: ``value_unit``).
        assert values["spo2"]["value_unit"] == "%" and values["fio2"]["value_unit"] == "fraction"
        assert "value_unit" not in values["news2"] and "value_unit" not in values["consciousness"]  # no unit
        enrolled_on = (TODAY - dt.timedelta(days=10)).isoformat()
        demo = api.post(f"{url}/demographics", headers=coord,
                        json={"values": {"birth_date": "1970-03-21", "enrolled_on": enrolled_on}})  # fmt: skip
        assert demo.status_code == 200, demo.text
        age = demo.json()["values"]["age_at_enrolment"]
        assert age["status"] == "derived" and age["value_unit"] == "years" and "unit" not in age
        assert api.post(f"{url}/vitals/complete", headers=coord).json()["state"] == "complete"
        no_reason = api.post(f"{url}/vitals", headers=coord, json={"values": {"pulse": 100}})
        assert no_reason.status_code == 422 and "reason for change" in no_reason.json()["errors"][0]["rule"]
        changed = api.post(f"{url}/vitals", headers=coord, json={"values": {"pulse": 100}, "reason": "re-counted"})
        assert changed.json()["values"]["news2"]["value"] == 11  # pulse 100 scores 1, not 2
        assert api.post(f"{url}/vitals/verify", headers=monitor).json()["state"] == "verified"
        signed = api.post(f"{url}/vitals/sign", headers=inv, json={"password": PASSWORD})
        assert signed.json()["state"] == "signed" and signed.json()["signature_meaning"]
        imported = api.post(
            "/api/v1/forms/import",
            headers=coord,
            json={"rows": [{"participant": pid, "visit": "baseline", "form": "labs", "values": {"crp": 700}}]},
        )
        assert imported.json() == {
            "saved": 0,
            "rejected": [{"row": 1, "problems": ["crp: 700 mg/L is outside the accepted range 0-600 mg/L"]}],
        }
        raised = api.post(
            "/api/v1/queries", headers=monitor, json={"participant_id": pid, "text": "Temperature source?"}
        )
        assert raised.status_code == 201
        answered = api.post(f"/api/v1/queries/{raised.json()['id']}/answer", headers=coord, json={"answer": "Chart"})
        assert answered.json()["status"] == "answered"
        schedule = api.get(f"/api/v1/participants/{pid}/visits", headers=monitor).json()
        baseline = next(v for v in schedule["visits"] if v["visit_id"] == "baseline")
        assert baseline["forms"]["vitals"] == "signed" and baseline["forms"]["labs"] is None
        manager = bearer(Role.DATA_MANAGER)
        refused = api.post("/api/v1/trial/lock", headers=manager, json={"reason": "final"})
        assert refused.status_code == 409 and refused.json()["readiness"]["total"] > 0
        overridden = {"reason": "final", "password": PASSWORD}
        assert api.post("/api/v1/trial/lock", headers=manager, json=overridden).json()["locked"]
        locked = api.post(f"{url}/labs", headers=coord, json={"values": {"crp": 10}})
        assert locked.status_code == 422 and "locked" in locked.json()["errors"][0]["rule"]
