"""A web app on a fresh trial (both databases), and a browser-like client that can sign in."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.trialfixtures import PASSWORD, Trial, make_trial, username
from trialwright.domain.roles import Role
from trialwright.settings import Settings
from trialwright.web.app import create_app


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


@pytest.fixture
def app(trial: Trial):  # type: ignore[no-untyped-def]
    return create_app(Settings(database_url=trial.url, lockout_threshold=3))


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, follow_redirects=False) as c:
        yield c


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def confirm_of(html: str) -> str:
    """The confirmation step's token on a confirmation page (``web/confirm.py``)."""
    match = re.search(r'name="confirm" value="([^"]+)"', html)
    assert match, "page asks no confirmation"
    return match.group(1)


def sign_in(client: TestClient, role: Role | str, password: str = PASSWORD) -> TestClient:
    name = username(role) if isinstance(role, Role) else role
    form = client.get("/sign-in")
    response = client.post("/sign-in", data={"username": name, "password": password, "csrf_token": csrf_of(form.text)})
    assert response.status_code == 303, response.text
    return client
