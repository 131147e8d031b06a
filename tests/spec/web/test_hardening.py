"""Web hardening: security headers on every answer, Secure cookies over HTTPS, a sign-in refusal that names
no account, ids the database cannot hold refused with 422, and no CDN-loaded API docs unless asked for."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import PASSWORD, Trial, username
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.users import disable_user, issue_token
from trialwright.settings import Settings
from trialwright.web.app import create_app

TEMPLATES = Path(__file__).resolve().parents[3] / "src" / "trialwright" / "web" / "templates"
PG_INT_MAX = 2**31 - 1  # PostgreSQL integer; SQLite's limit, 2**63 - 1, is larger


def _bearer(trial: Trial, role: Role) -> dict[str, str]:
    token, _ = issue_token(trial.engine, username(role), name="test", actor="test")
    return {"Authorization": f"Bearer {token}"}


def _directives(csp: str) -> dict[str, list[str]]:
    parts = (d.split() for d in csp.split(";") if d.strip())
    return {p[0]: p[1:] for p in parts}


def _assert_hardened(response, *, cached: bool = False) -> None:  # type: ignore[no-untyped-def]
    h = response.headers
    csp = _directives(h["content-security-policy"])
    assert csp["script-src"] == ["'self'"]  # no 'unsafe-inline', no other origin
    assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"]
    assert csp["default-src"] == ["'self'"]
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "no-referrer"
    assert {"camera=()", "microphone=()", "geolocation=()"} <= {p.strip() for p in h["permissions-policy"].split(",")}
    assert "strict-transport-security" not in h  # plain http here
    assert (h.get("cache-control") == "no-store") is not cached


@pytest.fixture
def https(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        yield c


def test_every_kind_of_answer_carries_the_headers(client: TestClient, trial: Trial) -> None:
    _assert_hardened(client.get("/sign-in"))  # a page before sign-in
    sign_in(client, Role.DATA_MANAGER)
    _assert_hardened(client.get("/participants"))  # a page with participant data
    _assert_hardened(client.get("/no-such-page"))  # an error page (404)
    _assert_hardened(client.get("/api/v1/trial", headers=_bearer(trial, Role.MONITOR)))  # an API answer
    _assert_hardened(client.get("/api/v1/trial"))  # an API refusal (401)
    _assert_hardened(client.get("/openapi.json"))
    _assert_hardened(client.get("/static/trialwright.css"), cached=True)  # static files may be cached


def test_an_unexpected_error_carries_the_headers_too(app: FastAPI) -> None:
    def boom() -> None:
        raise RuntimeError("internal detail 4711")

    app.add_api_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        response = c.get("/boom")
    assert response.status_code == 500 and "4711" not in response.text
    _assert_hardened(response)


def test_hsts_only_over_https(client: TestClient, https: TestClient) -> None:
    assert "strict-transport-security" not in client.get("/sign-in").headers
    hsts = https.get("/sign-in").headers["strict-transport-security"]
    assert re.fullmatch(r"max-age=(\d+); includeSubDomains", hsts) and int(hsts.split("=")[1].split(";")[0]) >= 31536000


def _cookie_flags(response, name: str) -> set[str]:  # type: ignore[no-untyped-def]
    [header] = [v for v in response.headers.get_list("set-cookie") if v.startswith(name + "=")]
    return {part.strip().lower() for part in header.split(";")[1:]}


def test_cookies_are_secure_over_https(client: TestClient, https: TestClient) -> None:
    assert "secure" not in _cookie_flags(client.get("/sign-in"), "trialwright_csrf")
    form = https.get("/sign-in")
    assert "secure" in _cookie_flags(form, "trialwright_csrf")
    chosen = https.post("/profile/preferences", data={"language": "fa", "csrf_token": csrf_of(form.text)})
    assert chosen.status_code == 303 and "secure" in _cookie_flags(chosen, "trialwright_lang")
    data = {"username": username(Role.MONITOR), "password": PASSWORD, "csrf_token": csrf_of(form.text)}
    signed_in = https.post("/sign-in", data=data)
    assert signed_in.status_code == 303
    assert {"secure", "httponly", "samesite=lax"} <= _cookie_flags(signed_in, "trialwright_session")
    out = https.post("/sign-out", data={"csrf_token": csrf_of(https.get("/").text)})
    assert out.status_code == 303 and "secure" in _cookie_flags(out, "trialwright_session")


def test_the_setting_forces_secure_cookies_over_plain_http(trial: Trial) -> None:
    app = create_app(Settings(database_url=trial.url, secure_cookies=True))
    with TestClient(app, follow_redirects=False) as c:
        assert "secure" in _cookie_flags(c.get("/sign-in"), "trialwright_csrf")


def _refusal(client: TestClient, name: str, password: str) -> str:
    form = client.get("/sign-in")
    response = client.post("/sign-in", data={"username": name, "password": password, "csrf_token": csrf_of(form.text)})
    assert response.status_code == 401
    message = re.search(r'<p class="error"[^>]*>(.*?)</p>', response.text, re.DOTALL)
    assert message, response.text
    return message.group(1).strip()


def test_unknown_locked_and_disabled_accounts_get_the_same_answer(client: TestClient, trial: Trial) -> None:
    locked, disabled = username(Role.INVESTIGATOR), username(Role.MONITOR)
    for _ in range(3):  # the app under test locks after 3 failures
        _refusal(client, locked, "not-the-password-1")
    disable_user(trial.engine, disabled, actor="admin")
    answers = {
        "unknown": _refusal(client, "nobody-here", PASSWORD),
        "wrong password": _refusal(client, username(Role.DATA_MANAGER), "not-the-password-1"),
        "locked, right password": _refusal(client, locked, PASSWORD),
        "locked, wrong password": _refusal(client, locked, "not-the-password-1"),
        "disabled, right password": _refusal(client, disabled, PASSWORD),
    }
    assert len(set(answers.values())) == 1, answers
    assert "wrong username or password" in answers["unknown"]
    # The audit trail still tells the administrator why.
    why = {e.detail for e in audit.entries(trial.engine, action_prefix="user.sign_in_refused")}
    assert any('"locked"' in str(d) for d in why) and any('"disabled"' in str(d) for d in why)


@pytest.mark.parametrize("huge", [PG_INT_MAX + 1, 2**63, 10**30])
def test_an_id_the_database_cannot_hold_is_refused_with_422(client: TestClient, trial: Trial, huge: int) -> None:
    coordinator = _bearer(trial, Role.STUDY_COORDINATOR)
    assert client.get(f"/api/v1/screenings/{huge}", headers=coordinator).status_code == 422
    assert client.post(f"/api/v1/screenings/{huge}/enrol", headers=coordinator).status_code == 422
    assert client.post(f"/api/v1/queries/{huge}/close", headers=coordinator, json={"note": ""}).status_code == 422
    assert client.delete(f"/api/v1/tokens/{huge}", headers=coordinator).status_code == 422
    sign_in(client, Role.DATA_MANAGER)
    page = client.get(f"/screening/{huge}")
    assert page.status_code == 422 and "screening_id" in page.text


def test_the_largest_id_the_database_holds_is_just_not_found(client: TestClient, trial: Trial) -> None:
    coordinator = _bearer(trial, Role.STUDY_COORDINATOR)
    assert client.get(f"/api/v1/screenings/{PG_INT_MAX}", headers=coordinator).status_code == 404
    assert client.get("/api/v1/screenings/0", headers=coordinator).status_code == 422


def test_interactive_api_docs_are_off_unless_asked_for_and_served_from_the_package(
    client: TestClient, trial: Trial
) -> None:
    assert client.get("/docs").status_code == 404
    assert client.get("/openapi.json").status_code == 200
    app = create_app(Settings(database_url=trial.url, api_docs=True))
    with TestClient(app) as c:
        docs = c.get("/docs")
        assert docs.status_code == 200
        # every script and style is a file of this site; nothing inline, nothing from a third party
        sources = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
        assert sources and all(s.startswith("/static/swagger/") for s in sources), sources
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", docs.text) == []
        for source in sources:
            asset = c.get(source)
            assert asset.status_code == 200 and len(asset.content) > 200, source
        assert "SwaggerUIBundle" in c.get("/static/swagger/swagger-ui-bundle.js").text
        csp = _directives(docs.headers["content-security-policy"])
        page_csp = _directives(c.get("/sign-in").headers["content-security-policy"])
        assert csp["script-src"] == ["'self'"] and csp == page_csp


@pytest.mark.parametrize("template", sorted(p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*.html")))
def test_templates_hold_no_inline_script(template: str) -> None:
    # The CSP refuses inline script: any in a template would silently not run.
    text = (TEMPLATES / template).read_text("utf-8")
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", text) == []
    assert re.findall(r"\son[a-z]+\s*=", text) == []
    assert "javascript:" not in text.lower()


def test_the_checker_catches_inline_script() -> None:
    bad = '<script>alert(1)</script><a href="#" onclick="x()">x</a>'
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", bad) == ["<script>"]
    assert re.findall(r"\son[a-z]+\s*=", bad) == [" onclick="]
