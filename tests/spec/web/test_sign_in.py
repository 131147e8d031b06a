"""Signing in and out, lockout, sessions, CSRF: clear refusals that reveal nothing, every one audited."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import PASSWORD, Trial, username
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.users import disable_user, get_user
from trialwright.store.auth_tables import web_sessions
from trialwright.store.engine import session_scope


def _attempt(client: TestClient, name: str, password: str):  # type: ignore[no-untyped-def]
    form = client.get("/sign-in")
    return client.post("/sign-in", data={"username": name, "password": password, "csrf_token": csrf_of(form.text)})


@pytest.mark.covers("REG-4")
def test_a_page_needs_sign_in(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 303 and response.headers["location"] == "/sign-in?next=/"


def test_sign_in_shows_home_and_sign_out_ends_the_session(client: TestClient, trial: Trial) -> None:
    sign_in(client, Role.STUDY_COORDINATOR)
    home = client.get("/")
    assert home.status_code == 200 and "IRCT20190101042197N2" in home.text
    assert "2021-04-19, 1400/01/30" in home.text
    out = client.post("/sign-out", data={"csrf_token": csrf_of(home.text)})
    assert out.status_code == 303 and out.headers["location"] == "/sign-in"
    assert client.get("/").status_code == 303
    actions = [e.action for e in audit.entries(trial.engine, actor=username(Role.STUDY_COORDINATOR))]
    assert actions[:2] == ["user.signed_out", "user.signed_in"]


def test_wrong_password_and_unknown_user_get_the_same_answer(client: TestClient, trial: Trial) -> None:
    wrong = _attempt(client, username(Role.MONITOR), "not-the-password-1")
    unknown = _attempt(client, "nobody", "not-the-password-1")
    assert wrong.status_code == unknown.status_code == 401
    assert "wrong username or password" in wrong.text and "wrong username or password" in unknown.text
    assert wrong.text.replace("nobody", "").count("wrong username") == unknown.text.count("wrong username")
    failed = audit.entries(trial.engine, action_prefix="user.sign_in_failed")
    assert len(failed) == 2


@pytest.mark.covers("REG-10")
def test_lockout_after_repeated_failures(client: TestClient, trial: Trial) -> None:
    name = username(Role.INVESTIGATOR)
    for _ in range(3):  # the app under test locks after 3
        assert _attempt(client, name, "not-the-password-1").status_code == 401
    locked = _attempt(client, name, PASSWORD)  # even the right password is refused while locked
    assert locked.status_code == 401 and "wrong username or password, or the account is locked" in locked.text
    assert audit.entries(trial.engine, action_prefix="user.locked_out")[0].actor == name
    user = get_user(trial.engine, name)
    assert user is not None and user.locked_until is not None


def test_a_disabled_user_is_refused_and_loses_the_session(client: TestClient, trial: Trial) -> None:
    sign_in(client, Role.MONITOR)
    disable_user(trial.engine, username(Role.MONITOR), actor="admin")
    assert client.get("/").status_code == 303
    refused = _attempt(client, username(Role.MONITOR), PASSWORD)
    assert refused.status_code == 401 and "or the account is locked or disabled" in refused.text
    assert "disabled" in str(audit.entries(trial.engine, action_prefix="user.sign_in_refused")[0].detail)


@pytest.mark.covers("REG-10")
def test_an_idle_or_expired_session_ends(client: TestClient, trial: Trial) -> None:
    sign_in(client, Role.DATA_MANAGER)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with session_scope(trial.engine) as s:
        s.execute(update(web_sessions).values(last_seen_at=long_ago))
    assert client.get("/").status_code == 303
    assert audit.entries(trial.engine, action_prefix="user.session_expired")


def test_forms_without_the_csrf_token_change_nothing(client: TestClient, trial: Trial) -> None:
    sign_in(client, Role.DATA_MANAGER)
    for token in ("", "forged"):
        response = client.post("/profile/preferences", data={"language": "fa", "csrf_token": token, "next": "/"})
        assert response.status_code == 403
    user = get_user(trial.engine, username(Role.DATA_MANAGER))
    assert user is not None and user.language == "en"
    assert client.post("/sign-out", data={}).status_code == 403
    refused = audit.entries(trial.engine, action_prefix="access.csrf_refused")
    assert len(refused) == 3 and {e.actor for e in refused} == {username(Role.DATA_MANAGER)}


def test_sign_in_itself_needs_the_csrf_cookie(client: TestClient) -> None:
    response = client.post("/sign-in", data={"username": "administrator", "password": PASSWORD, "csrf_token": "x"})
    assert response.status_code == 403


@pytest.mark.covers("REG-4")
def test_another_roles_page_is_refused_and_audited(client: TestClient, trial: Trial) -> None:
    sign_in(client, Role.STUDY_COORDINATOR)
    for path in ("/admin/audit", "/admin/users"):
        response = client.get(path)
        assert response.status_code == 403 and "Your role does not give access" in response.text
    denied = audit.entries(trial.engine, action_prefix="access.denied")
    assert {e.actor for e in denied} == {username(Role.STUDY_COORDINATOR)}


def test_redirect_after_sign_in_stays_on_this_site(client: TestClient) -> None:
    form = client.get("/sign-in")
    response = client.post(
        "/sign-in",
        data={
            "username": username(Role.MONITOR),
            "password": PASSWORD,
            "csrf_token": csrf_of(form.text),
            "next": "//evil.example/x",
        },
    )
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_preferences_change_language_and_calendar(client: TestClient, trial: Trial) -> None:
    sign_in(client, Role.OUTCOME_ASSESSOR)
    home = client.get("/")
    client.post(
        "/profile/preferences",
        data={"language": "fa", "calendar": "jalali", "next": "/", "csrf_token": csrf_of(home.text)},
    )
    persian = client.get("/")
    assert '<html lang="fa" dir="rtl">' in persian.text and "خانه" in persian.text
    assert "۱۴۰۰/۰۱/۳۰" in persian.text and "2021-04-19" not in persian.text  # Solar Hijri, Persian digits
    changed = audit.entries(trial.engine, action_prefix="user.preferences_changed")[0]
    assert changed.old_value == '{"calendar":"both","language":"en"}'


@pytest.mark.covers("REG-10")
def test_changing_the_password_needs_the_old_one(client: TestClient, trial: Trial) -> None:
    sign_in(client, Role.MONITOR)
    page = client.get("/profile")
    wrong = client.post(
        "/profile/password",
        data={
            "old_password": "nope",
            "new_password": "Another-pass-99",
            "confirm_password": "Another-pass-99",
            "csrf_token": csrf_of(page.text),
        },
    )
    assert wrong.status_code == 400 and "old_password" in wrong.text
    ok = client.post(
        "/profile/password",
        data={
            "old_password": PASSWORD,
            "new_password": "Another-pass-99",
            "confirm_password": "Another-pass-99",
            "csrf_token": csrf_of(page.text),
        },
    )
    assert ok.status_code == 303
    assert client.get("/").status_code == 303  # every session ends with a password change
    sign_in(client, Role.MONITOR, "Another-pass-99")


@pytest.mark.covers("REG-1")
def test_the_audit_page_says_the_trail_is_signed_and_agrees_with_the_data(client: TestClient, trial: Trial) -> None:
    """The data manager's audit page carries what `audit verify` checks: the keyed chain (checked from the last
    verification checkpoint, from which entry it is keyed) and the outcome of the last full verification, with the
    replay of the trail against the data tables (recorded by `audit verify`, never run by the page)."""
    from trialwright.services import audit
    from trialwright.services.audit_checkpoints import record_full_verify
    from trialwright.services.replay import replay

    sign_in(client, Role.DATA_MANAGER)
    page = client.get("/admin/audit")
    assert page.status_code == 200
    assert (
        "The hash chain is intact up to entry" in page.text and "Signed with the audit key from entry 1." in page.text
    )
    assert "No full verification recorded yet" in page.text
    record_full_verify(trial.engine, audit.verify(trial.engine), replay(trial.engine, limit=0), by="cli:test")
    page = client.get("/admin/audit")
    assert "Last full verification" in page.text and "cli:test" in page.text
    assert "the hash chain was intact" in page.text and "the data tables agreed with the audit trail" in page.text


def test_a_language_chosen_on_the_sign_in_page_is_kept_after_signing_in(client: TestClient, trial: Trial) -> None:
    """Choosing Persian and the Solar Hijri calendar on the sign-in page, then signing in, opens the home page in
    Persian: the choice becomes the person's own preference (audited), and the pre-sign-in cookies are cleared so
    the next person at this computer starts from their own preference."""
    before = get_user(trial.engine, username(Role.STUDY_COORDINATOR))
    assert before is not None and before.language == "en"
    page = client.get("/sign-in")
    chosen = client.post("/profile/preferences", data={"language": "fa", "calendar": "jalali", "next": "/sign-in",
                                                      "csrf_token": csrf_of(page.text)})  # fmt: skip
    assert chosen.status_code == 303
    assert 'lang="fa"' in client.get("/sign-in").text
    sign_in(client, Role.STUDY_COORDINATOR)
    assert 'lang="fa"' in client.get("/").text
    after = get_user(trial.engine, username(Role.STUDY_COORDINATOR))
    assert after is not None and (after.language, after.calendar) == ("fa", "jalali")
    assert audit.entries(trial.engine, action_prefix="user.preferences")
    assert "trialwright_lang" not in client.cookies and "trialwright_calendar" not in client.cookies
