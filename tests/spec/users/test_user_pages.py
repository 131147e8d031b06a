"""The Users and Account requests pages: no page shows a password; a guarded account waits for a second
administrator, who cannot be the requester; the set-password link works once."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import PASSWORD, Trial, make_trial, username
from trialwright.domain.roles import Role
from trialwright.services.users import get_user
from trialwright.settings import Settings
from trialwright.store.approval_tables import account_requests
from trialwright.store.engine import session_scope
from trialwright.web.app import create_app


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


def _client(trial: Trial) -> TestClient:
    return TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False)


def _add(client: TestClient, name: str, role: str, sites: list[str] | None = None):  # type: ignore[no-untyped-def]
    csrf = csrf_of(client.get("/admin/users").text)
    return client.post("/admin/users", data={"csrf_token": csrf, "username": name, "role": role, "sites": sites or []})


def _set_password(trial: Trial, link: str, password: str) -> int:
    with _client(trial) as anyone:
        form = anyone.get(link.split("testserver", 1)[1])
        assert form.status_code == 200
        token = re.search(r'name="token" value="([^"]+)"', form.text)
        assert token
        return anyone.post(
            "/set-password",
            data={"csrf_token": csrf_of(form.text), "token": token.group(1), "password": password, "repeat": password},
        ).status_code


def test_no_page_shows_a_password_and_the_link_works_once(trial: Trial) -> None:
    with _client(trial) as admin:
        sign_in(admin, Role.ADMINISTRATOR)
        page = _add(admin, "newmonitor", "monitor", ["RAZ"])
        assert page.status_code == 200
        shown = re.findall(r"<code[^>]*>([^<]+)</code>", page.text)
        [link] = [s for s in shown if "/set-password?token=" in s]
        csrf = csrf_of(admin.get("/admin/users").text)
        for value in shown:  # nothing shown is a password that signs in
            attempt = admin.post("/sign-in", data={"username": "newmonitor", "password": value, "csrf_token": csrf})
            assert attempt.status_code != 303
    assert _set_password(trial, link, "Chosen-by-holder-9") == 303
    with _client(trial) as again:
        assert again.get(link.split("testserver", 1)[1]).status_code == 404
        sign_in(again, "newmonitor", "Chosen-by-holder-9")


def test_a_guarded_account_waits_for_a_second_administrator(trial: Trial) -> None:
    with _client(trial) as admin:
        sign_in(admin, Role.ADMINISTRATOR)
        second = _add(admin, "admin2", "administrator")  # setting up: the second approver, at once
        [link] = re.findall(r'data-testid="set-password-link">([^<]+)<', second.text)
        pending = _add(admin, "stat2", "unblinded_statistician")
        assert 'data-testid="request-pending"' in pending.text and "set-password-link" not in pending.text
        assert get_user(trial.engine, "stat2") is None
        work = admin.get("/admin/users/requests")
        request_id = re.search(r'data-testid="request-(\d+)"', work.text)
        assert request_id
        own = admin.post(
            f"/admin/users/requests/{request_id.group(1)}/approve", data={"csrf_token": csrf_of(work.text)}
        )
        assert own.status_code == 400 and "two-person rule" in own.text and "yourself" in own.text
        assert get_user(trial.engine, "stat2") is None
    assert _set_password(trial, link, PASSWORD + "x") == 303
    with _client(trial) as admin2:
        sign_in(admin2, "admin2", PASSWORD + "x")
        work = admin2.get("/admin/users/requests")
        done = admin2.post(
            f"/admin/users/requests/{request_id.group(1)}/approve", data={"csrf_token": csrf_of(work.text)}
        )
        assert done.status_code == 200 and 'data-testid="set-password-link"' in done.text
    assert get_user(trial.engine, "stat2") is not None


def test_an_administrator_cannot_take_over_the_unblinded_statistician(trial: Trial) -> None:
    """The issue's scenario: reset the statistician's password, sign in, download the list."""
    with _client(trial) as admin:
        sign_in(admin, Role.ADMINISTRATOR)
        csrf = csrf_of(admin.get("/admin/users").text)
        reset = admin.post(
            f"/admin/users/{username(Role.UNBLINDED_STATISTICIAN)}/reset-password", data={"csrf_token": csrf}
        )
        assert 'data-testid="request-pending"' in reset.text and "set-password-link" not in reset.text
        assert admin.get("/randomization/list.csv").status_code == 403
    with _client(trial) as statistician:  # the holder's own password still works: nothing changed
        sign_in(statistician, Role.UNBLINDED_STATISTICIAN)


def test_the_account_requests_list_is_paged_by_keyset(trial: Trial) -> None:
    """The approvers' list of requests waiting for a second person shows 50 a page, newest first, with "Showing
    1–50 of N" and a link to the rest; together the pages hold every pending request once (read here straight
    from the table) and no decided one."""
    now = dt.datetime.now(dt.UTC)
    with session_scope(trial.engine) as session:
        for n in range(57):
            session.execute(insert(account_requests).values(
                kind="create", username=f"person{n}", role="dsmb_member", sites="", requested_by="administrator",
                requested_at=now, reason="needed", state="pending" if n % 10 else "approved",
            ))  # fmt: skip
        pending = {r for (r,) in session.execute(
            select(account_requests.c.id).where(account_requests.c.state == "pending")).all()}  # fmt: skip
    assert len(pending) == 51
    client = _client(trial)
    sign_in(client, Role.ADMINISTRATOR)
    first = client.get("/admin/users/requests").text
    shown = [int(i) for i in re.findall(r'data-testid="request-(\d+)"', first)]
    assert len(shown) == 50 and shown == sorted(shown, reverse=True)  # newest first
    assert "Showing 1–50 of 51" in first
    more = re.search(r'data-testid="page-next" href="([^"]+)"', first)
    assert more
    second = client.get(more.group(1).replace("&amp;", "&")).text
    rest = [int(i) for i in re.findall(r'data-testid="request-(\d+)"', second)]
    assert set(shown) | set(rest) == pending and len(shown) + len(rest) == len(pending)
    assert "Showing 51–51 of 51" in second
