"""API tokens expire, and their owner and an administrator (no one else) can list and revoke them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.trialfixtures import Trial, make_trial, username, who
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.tokens import TokenAccessDenied, issue_token, list_tokens, resolve_token, revoke_token
from trialwright.services.users import UserError
from trialwright.settings import Settings
from trialwright.store.auth_tables import api_tokens
from trialwright.store.engine import session_scope
from trialwright.web.app import create_app

MONITOR, COORDINATOR, ADMIN = username(Role.MONITOR), username(Role.STUDY_COORDINATOR), username(Role.ADMINISTRATOR)


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


@pytest.fixture
def client(trial: Trial) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=trial.url, api_token_days=30)), follow_redirects=False) as c:
        yield c


def _bearer(trial: Trial, name: str) -> dict[str, str]:
    token, _ = issue_token(trial.engine, name, name="test", actor="test")
    return {"Authorization": f"Bearer {token}"}


def _expire(trial: Trial, token_id: int) -> None:
    """Move a token's expiry into the past (as if its days had gone by)."""
    with session_scope(trial.engine) as session:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        session.execute(api_tokens.update().where(api_tokens.c.id == token_id).values(expires_at=past))


def test_a_token_lives_ninety_days_by_default_or_less_when_asked(trial: Trial) -> None:
    _, default = issue_token(trial.engine, MONITOR, name="default", actor="test")
    _, week = issue_token(trial.engine, MONITOR, name="week", actor="test", days=7)
    assert default.expires_at - default.created_at == dt.timedelta(days=90)
    assert week.expires_at - week.created_at == dt.timedelta(days=7)
    for days in (0, 91):
        with pytest.raises(UserError, match="days: a token lives 1 to 90 days"):
            issue_token(trial.engine, MONITOR, name="bad", actor="test", days=days)
    assert '"expires_at"' in (audit.entries(trial.engine, action_prefix="api.token_issued")[0].new_value or "")


def test_an_expired_token_answers_401_like_an_unknown_one(trial: Trial, client: TestClient) -> None:
    token, view = issue_token(trial.engine, MONITOR, name="old", actor="test", days=1)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    _expire(trial, view.id)
    assert resolve_token(trial.engine, token) is None
    expired = client.get("/api/v1/me", headers=headers)
    unknown = client.get("/api/v1/me", headers={"Authorization": "Bearer tw_unknown"})
    assert expired.status_code == unknown.status_code == 401 and expired.json() == unknown.json()
    assert [t.state() for t in list_tokens(trial.engine, MONITOR)] == ["expired"]


def test_the_api_issues_tokens_within_the_setting(trial: Trial, client: TestClient) -> None:
    headers = _bearer(trial, MONITOR)
    made = client.post("/api/v1/tokens", json={"name": "script", "days": 7}, headers=headers)
    assert made.status_code == 201 and made.json()["state"] == "live"
    life = dt.datetime.fromisoformat(made.json()["expires_at"]) - dt.datetime.fromisoformat(made.json()["created_at"])
    assert life == dt.timedelta(days=7)
    too_long = client.post("/api/v1/tokens", json={"name": "script", "days": 31}, headers=headers)
    assert too_long.status_code == 422 and "1 to 30 days" in too_long.text  # api_token_days=30 in this app


def test_owner_and_administrator_list_and_revoke_others_cannot(trial: Trial, client: TestClient) -> None:
    _, target = issue_token(trial.engine, MONITOR, name="target", actor="test")
    path = f"/api/v1/users/{MONITOR}/tokens"
    owner, admin, other = _bearer(trial, MONITOR), _bearer(trial, ADMIN), _bearer(trial, COORDINATOR)
    assert target.id in [t["id"] for t in client.get(path, headers=owner).json()]
    assert target.id in [t["id"] for t in client.get(path, headers=admin).json()]
    assert client.get(path, headers=other).status_code == 403
    assert client.delete(f"{path}/{target.id}", headers=other).status_code == 403
    assert client.get("/api/v1/users/nobody/tokens", headers=other).status_code == 403  # existence not revealed
    # The other user's own revoke endpoint does not reach someone else's token either.
    assert client.delete(f"/api/v1/tokens/{target.id}", headers=other).status_code == 404
    assert [e.actor for e in audit.entries(trial.engine, action_prefix="access.denied")] == [COORDINATOR] * 3
    assert client.delete(f"{path}/{target.id}", headers=admin).status_code == 204
    assert client.delete(f"{path}/{target.id}", headers=owner).status_code == 404  # already revoked
    (revoked,) = audit.entries(trial.engine, action_prefix="api.token_revoked")
    assert revoked.actor == ADMIN and f'"token_id":{target.id}' in (revoked.detail or "")
    _, own = issue_token(trial.engine, MONITOR, name="own", actor="test")
    assert client.delete(f"{path}/{own.id}", headers=owner).status_code == 204


def test_the_service_refuses_anyone_but_owner_and_administrator(trial: Trial) -> None:
    _, view = issue_token(trial.engine, MONITOR, name="t", actor="test")
    with pytest.raises(TokenAccessDenied):
        list_tokens(trial.engine, MONITOR, viewer=who(trial, Role.STUDY_COORDINATOR))
    with pytest.raises(TokenAccessDenied):
        revoke_token(trial.engine, view.id, actor=COORDINATOR, owner=MONITOR, viewer=who(trial, Role.STUDY_COORDINATOR))
    assert list_tokens(trial.engine, MONITOR, viewer=who(trial, Role.MONITOR))[0].state() == "live"
    assert revoke_token(trial.engine, view.id, actor=ADMIN, owner=MONITOR, viewer=who(trial, Role.ADMINISTRATOR))


def test_administrator_pages_list_and_revoke_a_users_tokens(trial: Trial, client: TestClient) -> None:
    from tests.spec.web.conftest import csrf_of, sign_in

    _, view = issue_token(trial.engine, MONITOR, name="on-the-page", actor="test")
    sign_in(client, Role.STUDY_COORDINATOR)
    assert client.get(f"/admin/users/{MONITOR}/tokens").status_code == 403
    client.cookies.clear()
    sign_in(client, Role.ADMINISTRATOR)
    page = client.get(f"/admin/users/{MONITOR}/tokens")
    assert page.status_code == 200 and "on-the-page" in page.text and f'data-token="{view.id}"' in page.text
    assert f'action="/admin/users/{MONITOR}/tokens/{view.id}/revoke"' in page.text
    done = client.post(f"/admin/users/{MONITOR}/tokens/{view.id}/revoke", data={"csrf_token": csrf_of(page.text)})
    assert done.status_code == 303
    assert [t.state() for t in list_tokens(trial.engine, MONITOR)] == ["revoked"]


def test_the_cli_lists_and_revokes_tokens(trial: Trial) -> None:
    runner = CliRunner()
    made = runner.invoke(cli, ["user", "token", MONITOR, "--name", "nightly", "--days", "5", "--database", trial.url])
    assert made.exit_code == 0, made.output
    (view,) = list_tokens(trial.engine, MONITOR)
    assert view.expires_at - view.created_at == dt.timedelta(days=5)
    listed = runner.invoke(cli, ["user", "tokens", MONITOR, "--database", trial.url])
    assert listed.exit_code == 0 and "nightly" in listed.output and "live" in listed.output
    revoked = runner.invoke(cli, ["user", "revoke-token", MONITOR, str(view.id), "--database", trial.url])
    assert revoked.exit_code == 0 and resolve_token(trial.engine, made.output.strip()) is None
    again = runner.invoke(cli, ["user", "revoke-token", MONITOR, str(view.id), "--database", trial.url])
    assert again.exit_code == 3 and "no unrevoked token" in again.output
