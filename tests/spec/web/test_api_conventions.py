"""The REST API's conventions (docs/api.md "Conventions"), for every route under /api/, including routes a module
adds later without doing anything for them: every body a model, the bearer scheme, RFC 9457 problem details for
every error, and readable operation ids derived from the function names."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.testclient import TestClient
from pydantic import BaseModel

from tests.trialfixtures import Trial, username
from trialwright.domain.roles import Role
from trialwright.services.users import issue_token
from trialwright.settings import Settings
from trialwright.web.app import create_app
from trialwright.web.deps import ApiUser

PROBLEM = "application/problem+json"
JSON = ("application/json", PROBLEM)
ERRORS = {"400", "401", "403", "404", "409", "422", "429"}
#: Model members that are a protocol-defined mapping (field id -> value as the protocol declares it).
PROTOCOL_DEFINED = {("ScreeningOut", "values"), ("FailedCriterionOut", "values")}


#: The operation ids scripts and generated clients use: none changes unless the test says so (more may be added).
OPERATION_IDS = {
    "answerQuery",
    "deleteExport",
    "downloadExport",
    "getAnalysisResults",
    "getExportJob",
    "listExportJobs",
    "requestExport",
    "changeScreeningValues",
    "closeQuery",
    "completeForm",
    "createScreening",
    "createToken",
    "deleteToken",
    "enrolParticipant",
    "exportAllocationList",
    "exportSafetyListing",
    "extendAllocationList",
    "generateAllocationList",
    "getAdverseEvent",
    "getAllocationBalance",
    "getAllocationStatus",
    "getCasebook",
    "getForm",
    "getLockReadiness",
    "getLockState",
    "getMe",
    "getRandomization",
    "getRecruitmentForecast",
    "getRecruitmentStatus",
    "getRegistryUpdate",
    "getSafetyPause",
    "getSafetyTables",
    "getScreening",
    "getTrial",
    "importForms",
    "listAccountRequests",
    "listAdverseEvents",
    "listAllocationRecords",
    "listAuditEntries",
    "listParticipants",
    "listQueries",
    "listScreenings",
    "listSoftLocks",
    "listTokens",
    "listUnblindings",
    "listUserTokens",
    "listUsers",
    "listVisits",
    "lockForm",
    "lockTrial",
    "raiseQuery",
    "randomizeParticipant",
    "recordConsent",
    "recordDsmbDecision",
    "recordNonEnrolment",
    "recordPreparation",
    "recordSubmission",
    "reportAdverseEvent",
    "reportFollowUp",
    "revokeUserToken",
    "saveForm",
    "signCasebook",
    "signForm",
    "softLock",
    "softUnlock",
    "unblindParticipant",
    "unlockForm",
    "unlockTrial",
    "verifyCasebook",
    "verifyForm",
    "whatToPrepare",
    "withdrawParticipant",
}


def _bearer(trial: Trial, role: Role) -> dict[str, str]:
    token, _ = issue_token(trial.engine, username(role), name="test", actor="test")
    return {"Authorization": f"Bearer {token}"}


def _api_operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in document["paths"].items()
        if path.startswith("/api/")
        for method, operation in operations.items()
    ]


def _untyped(document: dict[str, Any], kind: str, schema: dict[str, Any], where: str) -> list[str]:
    """What is untyped in a body's schema: a JSON body that is not a model (or a list of models), and, in every
    model it reaches, a model open to any member or a member that is an untyped object. A body of another media
    type is a file in its own standard's format (CSV, ODM XML, ...), declared as a string."""
    components = document["components"]["schemas"]
    if kind not in JSON:
        return [] if schema.get("type") == "string" else [f"{where}: a file not declared as a string: {schema}"]
    if schema.get("type") == "array":
        schema = schema.get("items", {})
    if "$ref" not in schema:
        return [f"{where}: not a model: {schema}"]
    problems: list[str] = []
    seen: set[str] = set()
    todo = [schema["$ref"].rsplit("/", 1)[-1]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        model = components[name]
        if name != schema["$ref"].rsplit("/", 1)[-1] and model.get("type") == "string" and model.get("enum"):
            continue  # a member's closed list of words (e.g. an export format) is typed
        if model.get("type") != "object" or "properties" not in model:
            problems.append(f"{where}: {name} is not an object with members")
        if model.get("additionalProperties") not in (None, False):
            problems.append(f"{where}: {name} takes any member")
        for member, spec in model.get("properties", {}).items():
            for part in _parts(spec):
                if part.get("type") == "object" and "properties" not in part:
                    extra = part.get("additionalProperties")
                    if extra in (None, True, {}) and (name, member) not in PROTOCOL_DEFINED:
                        problems.append(f"{where}: {name}.{member} is an untyped object")
                todo.extend(ref.rsplit("/", 1)[-1] for ref in re.findall(r"'\$ref': '([^']+)'", str(part)))
    return problems


def _parts(spec: dict[str, Any]) -> list[dict[str, Any]]:
    parts = [spec]
    for key in ("anyOf", "oneOf", "allOf"):
        for inner in spec.get(key, []):
            parts.extend(_parts(inner))
    if spec.get("type") == "array" and isinstance(spec.get("items"), dict):
        parts.extend(_parts(spec["items"]))
    return parts


def test_every_request_and_response_body_is_a_model(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    problems: list[str] = []
    bodies = 0
    for method, path, operation in _api_operations(document):
        for kind, spec in operation.get("requestBody", {}).get("content", {}).items():
            bodies += 1
            problems += _untyped(document, kind, spec.get("schema", {}), f"{method} {path} request ({kind})")
        for status, response in operation["responses"].items():
            for kind, spec in response.get("content", {}).items():
                bodies += 1
                problems += _untyped(document, kind, spec.get("schema", {}), f"{method} {path} {status} ({kind})")
            if status.startswith("2") and status != "204" and "content" not in response:
                problems.append(f"{method} {path} {status}: no body documented")
    assert problems == []
    assert bodies > 60 * 8  # every operation's errors, and its own bodies


def test_bearer_scheme_declared_and_applied(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    unguarded = [f"{m} {p}" for m, p, op in _api_operations(document) if op.get("security") != [{"bearerAuth": []}]]
    assert unguarded == []


def test_every_api_operation_documents_its_errors_as_problem_details(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    problem_ref = {"$ref": "#/components/schemas/ProblemDetails"}
    for method, path, operation in _api_operations(document):
        errors = {s: r for s, r in operation["responses"].items() if s[0] in "45"}
        assert set(errors) == ERRORS, (method, path)
        assert all(r["content"] == {PROBLEM: {"schema": problem_ref}} for r in errors.values()), (method, path)
    assert "HTTPValidationError" not in str(document)
    problem = document["components"]["schemas"]["ProblemDetails"]
    assert {"type", "title", "status", "detail", "instance", "field", "rule", "errors"} <= set(problem["properties"])


def test_operation_ids_are_unique_readable_and_stable(app) -> None:  # type: ignore[no-untyped-def]
    document = app.openapi()
    ids = [operation["operationId"] for _, _, operation in _api_operations(document)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    # camelCase words, no path fragment (no slash, brace, underscore or "api_v1")
    assert [i for i in ids if not re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)*", i) or "apiV1" in i] == []
    assert set(ids) >= OPERATION_IDS, sorted(OPERATION_IDS - set(ids))


def test_errors_are_problem_details(client: TestClient, trial: Trial) -> None:
    coordinator = _bearer(trial, Role.STUDY_COORDINATOR)
    unauthorized = client.get("/api/v1/me")
    assert unauthorized.status_code == 401 and unauthorized.headers["content-type"] == PROBLEM
    assert unauthorized.json() == {
        "type": "about:blank",
        "title": "Unauthorized",
        "status": 401,
        "detail": "a valid API token is required",
        "instance": "/api/v1/me",
        "field": None,
        "rule": "a valid API token is required",
        "errors": [{"field": None, "rule": "a valid API token is required", "message": None}],
        "readiness": None,
    }
    forbidden = client.get("/api/v1/users", headers=coordinator)
    assert forbidden.status_code == 403 and forbidden.headers["content-type"] == PROBLEM
    assert forbidden.json()["rule"] == "your role may not do this"
    missing = client.get("/api/v1/screenings/999999", headers=coordinator)
    assert missing.status_code == 404 and missing.json()["title"] == "Not Found"
    # A validation error lists every value refused, each with its field and rule.
    invalid = client.post("/api/v1/tokens", headers=coordinator, json={"name": "", "days": 0, "colour": "red"})
    assert invalid.status_code == 422 and invalid.headers["content-type"] == PROBLEM
    body = invalid.json()
    assert [e["field"] for e in body["errors"]] == ["name", "days", "colour"]
    assert body["title"] == "Unprocessable Content"  # RFC 9110's name, whatever Python's version says
    assert body["field"] == "name" and body["rule"] == body["errors"][0]["rule"]
    assert body["detail"] == "; ".join(e["rule"] for e in body["errors"])
    # A body that is not JSON: the field is the body, not the character offset where parsing stopped.
    garbled = client.post(
        "/api/v1/tokens", headers={**coordinator, "Content-Type": "application/json"}, content=b"{not json"
    )
    assert garbled.status_code == 422 and garbled.json()["field"] == "body"
    # A rule of the trial refused: the field comes from the rule's own wording.
    refused = client.post(
        "/api/v1/screenings", headers=coordinator, json={"site": "GOL", "screened_on": "2024-01-01", "values": {}}
    )
    assert refused.status_code == 422 and refused.json()["field"] == "site"
    assert refused.json()["rule"].startswith("site: ")
    no_route = client.get("/api/v1/no-such-thing", headers=coordinator)
    assert no_route.status_code == 404 and no_route.headers["content-type"] == PROBLEM
    # Pages keep their HTML errors; the REDCap API keeps REDCap's.
    page = client.get("/no-such-page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    redcap = client.post("/redcap/api/", data={"token": "0" * 32, "content": "version"})
    assert redcap.status_code in {401, 403} and not redcap.headers["content-type"].startswith(PROBLEM)


class _ProbeOut(BaseModel):
    """What the route a module adds later answers."""

    seen: bool


def test_a_route_added_later_follows_the_conventions(trial: Trial) -> None:
    # A module adding a capability does nothing special: an APIRouter, ApiUser, HTTPException.
    router = APIRouter(prefix="/api/v1", tags=["later"])

    @router.get("/later/{thing}", response_model=_ProbeOut)
    def find_later_thing(thing: str, user: ApiUser) -> _ProbeOut:
        if thing != "here":
            raise HTTPException(status_code=404, detail="thing: there is no such thing")
        return _ProbeOut(seen=True)

    app = create_app(Settings(database_url=trial.url))
    app.include_router(router)
    document = app.openapi()
    operation = document["paths"]["/api/v1/later/{thing}"]["get"]
    assert operation["operationId"] == "findLaterThing" and operation["security"] == [{"bearerAuth": []}]
    assert {s for s in operation["responses"] if s[0] == "4"} == ERRORS
    with TestClient(app) as api:
        answer = api.get("/api/v1/later/elsewhere", headers=_bearer(trial, Role.MONITOR))
    assert answer.status_code == 404 and answer.headers["content-type"] == PROBLEM
    assert (answer.json()["field"], answer.json()["rule"]) == ("thing", "thing: there is no such thing")
