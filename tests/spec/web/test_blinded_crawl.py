"""The masking leak test: as each blinded role, every page and every GET API route is read, and no arm
name, arm code or description appears. The same crawl as an unblinded role does find them, so the check
can fail. Routes are collected from the app, so pages added later are crawled automatically."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.spec.eligibility.test_first_trial_criteria import ELIGIBLE
from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import FIRST_PROTOCOL, Trial, username, who
from trialwright.domain.masking import UNBLINDED_ROLES
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol
from trialwright.services.forms import save_form
from trialwright.services.randomization import generate_list, list_status, randomize
from trialwright.services.safety import report_event
from trialwright.services.screening import enrol, record_consent, screen
from trialwright.services.users import get_user, issue_token

BLINDED = [r for r in Role if r not in UNBLINDED_ROLES]
RANDOMIZERS = {Role.INVESTIGATOR, Role.STUDY_COORDINATOR}
ARMS = load_protocol(FIRST_PROTOCOL).protocol.arms
SECRETS = [a.code for a in ARMS] + [a.name for a in ARMS] + [a.description.strip()[:60] for a in ARMS]


def _routes(routes, prefix: str = ""):  # type: ignore[no-untyped-def]
    # FastAPI wraps included routers; walk into them to reach every route.
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route.methods
        elif hasattr(route, "original_router"):
            yield from _routes(route.original_router.routes, prefix + route.include_context.prefix)


def _get_paths(app, ids: dict[str, str]) -> tuple[list[str], list[str]]:  # type: ignore[no-untyped-def]
    pages, api = [], []
    for path, methods in _routes(app.routes):
        for name, value in ids.items():
            path = path.replace("{" + name + "}", value)
        if "GET" in methods and "{" not in path:
            (api if path.startswith("/api/") else pages).append(path)
    assert "/" in pages and "/api/v1/trial" in api  # the walk reaches the routes
    return [*pages, "/docs", "/openapi.json", "/no-such-page"], api


def _enrolled_participant(trial: Trial, randomized: bool = True) -> dict[str, str]:
    """One enrolled participant at RAZ, so that pages about a participant are crawled too."""
    admin = get_user(trial.engine, username(Role.ADMINISTRATOR))
    assert admin is not None
    values = {**{k: v for k, v in ELIGIBLE.items() if k != "informed_consent"}}
    s = screen(trial.engine, admin, site="RAZ", screened_on=dt.datetime.now(dt.UTC).date(), values=values)
    record_consent(
        trial.engine,
        admin,
        s.id,
        form_version="1.0",
        given_by="participant",
        obtained_by="Dr K",
        obtained_at=dt.datetime.now(dt.UTC),
    )
    s = enrol(trial.engine, admin, s.id)
    assert s.participant is not None
    pid = s.participant.participant_id
    if not randomized:
        return {"participant_id": pid}
    if not list_status(trial.engine):
        generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=1)
    done = randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
    # A form with a soft-limit value, so that form pages, queries and the audit trail are crawled too.
    save_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", "labs", {"crp": 450})
    # A serious adverse event (judged unrelated, so the safety pause stays open), so that the safety pages,
    # the listing and the tables are crawled with something in them.
    event = report_event(trial.engine, who(trial, Role.INVESTIGATOR), pid, {
        "term": "Pneumothorax", "onset": dt.datetime.now(ZoneInfo("Asia/Tehran")).date().isoformat(), "grade": 3,
        "serious": True, "seriousness_criteria": ["hospitalisation"], "causality": "unlikely",
        "action_taken": "not_applicable", "outcome": "recovering", "aware_at": dt.datetime.now(dt.UTC).isoformat(),
    })  # fmt: skip
    return {
        "ae_number": event.ae_number,
        "screening_id": str(s.id),
        "participant_id": pid,
        "code": done.preparation_code,
        "visit_id": "baseline",
        "form_id": "labs",
    }


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if re.search(rf"(?<![\w-]){re.escape(s)}(?![\w-])", text)]


def _crawl(client: TestClient, app, trial: Trial, role: Role) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    sign_in(client, role)
    pages, api = _get_paths(app, _enrolled_participant(trial))
    token, _ = issue_token(trial.engine, username(role), name="crawl", actor="test")
    found: dict[str, list[str]] = {}
    for path in pages:
        response = client.get(path)
        assert response.status_code < 500, path
        found[path] = _leaks(response.text)
    for path in api:
        response = client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code < 500, path
        found[path] = _leaks(response.text)
    if role in RANDOMIZERS:  # the answers to randomizing, and to randomizing twice, show no arm either
        headers = {"Authorization": f"Bearer {token}"}
        fresh = _enrolled_participant(trial, randomized=False)["participant_id"]
        codes = []
        for attempt in ("first", "again"):
            response = client.post(f"/api/v1/participants/{fresh}/randomization", headers=headers)
            codes.append(response.status_code)
            found[f"POST /api/v1/participants/{{id}}/randomization ({attempt})"] = _leaks(response.text)
        assert codes == [201, 422]
        fresh = _enrolled_participant(trial, randomized=False)["participant_id"]
        form = {"csrf_token": csrf_of(client.get("/profile").text)}
        for attempt in ("first", "again"):
            page = client.post(f"/participants/{fresh}/randomize", data=form, follow_redirects=True)
            assert page.status_code == (200 if attempt == "first" else 422) and "masked" in page.text
            found[f"POST /participants/{{id}}/randomize ({attempt})"] = _leaks(page.text)
    return {p: leaks for p, leaks in found.items() if leaks}


@pytest.mark.covers("REG-5")
@pytest.mark.parametrize("role", BLINDED, ids=[r.value for r in BLINDED])
def test_no_blinded_role_sees_an_arm_anywhere(client: TestClient, app, trial: Trial, role: Role) -> None:  # type: ignore[no-untyped-def]
    assert _crawl(client, app, trial, role) == {}


@pytest.mark.covers("REG-5")
def test_the_crawl_would_catch_a_leak(client: TestClient, app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    leaks = _crawl(client, app, trial, Role.UNBLINDED_STATISTICIAN)
    assert "EXO" in leaks["/"] and "/api/v1/trial" in leaks
    # The statistician's own pages do show arms: the list export and the balance report.
    assert "/randomization/list.csv" in leaks and "/api/v1/randomization/list" in leaks
    assert "/api/v1/randomization/balance" in leaks and "/randomization" in leaks
    # And the safety review by arm.
    assert {"/dsmb", "/safety/listing.csv", "/api/v1/safety/tables", "/api/v1/safety/listing"} <= set(leaks)
    assert "/adverse-events/AE-0001" in leaks and "/api/v1/adverse-events" in leaks
