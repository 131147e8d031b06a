"""The analysis results through the REST API (issue 26 item 3): ``GET /api/v1/analysis`` answers the protocol's
analysis as ``results.json`` holds it (the same service, the same masking as the analysis page and ``trialwright
analyse``): blinded for the blinded statistician, refused to the rest of the team, unblinded only for the unblinded
statistician after the database lock. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.spec.web.test_analysis_pages import ARM_NAMES, _randomized
from tests.trialfixtures import PASSWORD, Trial, username, who
from trialwright.analysis.report import results_json
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.analysis import run_analysis
from trialwright.services.forms import lock_trial
from trialwright.services.users import issue_token


def _bearer(trial: Trial, role: Role) -> dict[str, str]:
    token, _ = issue_token(trial.engine, username(role), name="analysis", actor="test")
    return {"Authorization": f"Bearer {token}"}


def _same_run(body: dict[str, Any]) -> dict[str, Any]:
    """A run's results without what differs from one run of the same data to the next."""
    return {k: v for k, v in body.items() if k not in {"taken_at", "audit_seq"}}


def test_the_blinded_statistician_gets_the_blinded_results_as_results_json(client: TestClient, trial: Trial) -> None:
    _randomized(trial)
    answer = client.get("/api/v1/analysis", headers=_bearer(trial, Role.BLINDED_STATISTICIAN))
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["grouping"] == "pooled" and body["unblinded"] is False and len(body["outcome_ids"]) == 9
    assert body["consort"]["randomized"] == 1 and body["consort"]["assessed"] == 1
    assert not any(name in answer.text for name in ARM_NAMES)
    expected = results_json(run_analysis(trial.engine, who(trial, Role.BLINDED_STATISTICIAN)).report)
    assert _same_run(body) == _same_run(json.loads(json.dumps(expected)))
    runs = audit.entries(trial.engine, action_prefix="analysis.run", actor=username(Role.BLINDED_STATISTICIAN))
    assert len(runs) == 2  # the API's run and the comparison's: each run audited by the service


def test_the_blinded_statistician_may_not_ask_for_the_unblinded_results(client: TestClient, trial: Trial) -> None:
    refused = client.get("/api/v1/analysis?unblinded=true", headers=_bearer(trial, Role.BLINDED_STATISTICIAN))
    assert refused.status_code == 403
    rule = ("a blinded statistician is masked in this trial (masking.blinding: double) and may not see the arms; only "
            "an unblinded statistician may run the unblinded analysis")
    assert (refused.json()["field"], refused.json()["rule"]) == ("unblinded", rule)


@pytest.mark.covers("REG-4")
@pytest.mark.parametrize("role", [Role.INVESTIGATOR, Role.DATA_MANAGER, Role.DSMB_MEMBER, Role.ADMINISTRATOR])
def test_the_rest_of_the_team_may_not_run_the_analysis(client: TestClient, trial: Trial, role: Role) -> None:
    assert client.get("/api/v1/analysis", headers=_bearer(trial, role)).status_code == 403


def test_the_unblinded_results_wait_for_the_lock(client: TestClient, trial: Trial) -> None:
    _randomized(trial)
    headers = _bearer(trial, Role.UNBLINDED_STATISTICIAN)
    refused = client.get("/api/v1/analysis?unblinded=true", headers=headers)
    assert refused.status_code == 409  # the trial's state refuses it now; the role may
    assert refused.json()["rule"] == "the unblinded analysis runs only after the database lock"
    lock_trial(trial.engine, who(trial, Role.DATA_MANAGER), "final analysis", password=PASSWORD)
    answer = client.get("/api/v1/analysis?unblinded=true", headers=headers)
    assert answer.status_code == 200
    assert answer.json()["unblinded"] is True and answer.json()["grouping"] == "by_arm"
    assert any(name in answer.text for name in ARM_NAMES)
    assert audit.entries(trial.engine, action_prefix="analysis.unblinded_run")
