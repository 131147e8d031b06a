"""The REST API: bearer tokens with the user's role and scope; revoked tokens refused; use audited."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.trialfixtures import Trial, username
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.users import issue_token


def _bearer(trial: Trial, role: Role) -> dict[str, str]:
    token, _ = issue_token(trial.engine, username(role), name="test", actor="test")
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.covers("REG-4")
def test_no_token_no_answer(client: TestClient, trial: Trial) -> None:
    for path in ("/api/v1/me", "/api/v1/trial", "/api/v1/users", "/api/v1/tokens"):
        response = client.get(path)
        assert response.status_code == 401 and response.json()["rule"] == "a valid API token is required"
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer tw_forged"}).status_code == 401
    # Audited in aggregate: the first refusal from an address at once, the window's count when it closes.
    refused = audit.entries(trial.engine, action_prefix="api.token_refused")
    assert len(refused) == 1 and "tw_forged" not in str(refused)
    client.app.state.limits.refusal_tally.flush(trial.engine)  # type: ignore[attr-defined]
    (total,) = audit.entries(trial.engine, action_prefix="api.token_refusals")
    assert '"refusals":5' in (total.detail or "") and "tw_forged" not in str(total)


def test_me_and_trial(client: TestClient, trial: Trial) -> None:
    headers = _bearer(trial, Role.INVESTIGATOR)
    me = client.get("/api/v1/me", headers=headers).json()
    assert me["role"] == "investigator" and me["sites"] == ["RAZ"]
    summary = client.get("/api/v1/trial", headers=headers).json()
    assert summary["trial_id"] == "IRCT20190101042197N2" and summary["target_sample_size"] == 30
    assert summary["arms"] == [{"label": "masked", "code": None, "name": None, "role": None, "ratio": None}] * 2
    assert audit.entries(trial.engine, action_prefix="api.token_used")[0].actor == username(Role.INVESTIGATOR)


def test_unblinded_roles_see_the_arms(client: TestClient, trial: Trial) -> None:
    arms = client.get("/api/v1/trial", headers=_bearer(trial, Role.UNBLINDED_STATISTICIAN)).json()["arms"]
    assert [a["code"] for a in arms] == ["EXO", "PBO"]


@pytest.mark.covers("REG-4")
def test_users_list_is_for_administrators(client: TestClient, trial: Trial) -> None:
    assert client.get("/api/v1/users", headers=_bearer(trial, Role.MONITOR)).status_code == 403
    users = client.get("/api/v1/users", headers=_bearer(trial, Role.ADMINISTRATOR)).json()
    assert len(users) == len(Role) and all("password" not in str(u) for u in users)


@pytest.mark.covers("REG-3")
def test_tokens_can_be_created_and_revoked(client: TestClient, trial: Trial) -> None:
    headers = _bearer(trial, Role.DATA_MANAGER)
    created = client.post("/api/v1/tokens", headers=headers, json={"name": "lab interface"})
    assert created.status_code == 201 and created.json()["token"].startswith("tw_")
    new = {"Authorization": f"Bearer {created.json()['token']}"}
    assert client.get("/api/v1/me", headers=new).status_code == 200
    listed = client.get("/api/v1/tokens", headers=headers).json()
    assert [t["name"] for t in listed] == ["test", "lab interface"] and "token" not in listed[1]
    assert client.delete(f"/api/v1/tokens/{created.json()['id']}", headers=headers).status_code == 204
    assert client.get("/api/v1/me", headers=new).status_code == 401
    assert client.delete(f"/api/v1/tokens/{created.json()['id']}", headers=headers).status_code == 404
    assert audit.entries(trial.engine, action_prefix="api.token_revoked")


def test_another_users_token_cannot_be_revoked(client: TestClient, trial: Trial) -> None:
    _, other = issue_token(trial.engine, username(Role.MONITOR), name="m", actor="test")
    response = client.delete(f"/api/v1/tokens/{other.id}", headers=_bearer(trial, Role.DATA_MANAGER))
    assert response.status_code == 404


def test_bad_input_gets_a_clear_error(client: TestClient, trial: Trial) -> None:
    response = client.post("/api/v1/tokens", headers=_bearer(trial, Role.MONITOR), json={"name": ""})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "name"
    control = client.post("/api/v1/tokens", headers=_bearer(trial, Role.MONITOR), json={"name": "\x1flab"})
    assert control.status_code == 422  # the service's text rule, answered by name, never a server error
    assert control.json()["errors"][0]["field"] == "name" and "U+001F" in control.json()["errors"][0]["rule"]
