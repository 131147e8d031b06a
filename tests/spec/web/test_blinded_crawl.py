"""The masking leak test: as each blinded role, every page, every GET API route, the audit trail (page and
API, filtered to the entries that matter) and every export the role may download are read, and no arm name,
arm code or description appears, nor any preparation value that differs by arm (the lots, volumes and particle
counts the pharmacist recorded). The trial holds a recorded preparation for each arm, a serious adverse event
and an emergency unblinding whose reason names the lot, and its trail holds a ``dose.prepared`` entry with
the lot, as databases made before preparation attributes wrote it. The same crawl as an unblinded role finds
the arms (statistician) and the preparation values (pharmacist), and the audit page and API with the audit
masking switched off show the lots: so each check can fail. Routes are collected from the app, so
pages added later are crawled automatically. One trial per database for the whole module keeps it bounded.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.spec.eligibility.test_first_trial_criteria import ELIGIBLE
from tests.spec.masking.test_export_leaks import _export, _texts
from tests.spec.web.conftest import confirm_of, csrf_of, sign_in
from tests.trialfixtures import FIRST_PROTOCOL, PASSWORD, Trial, make_trial, screener, username, who
from trialwright.domain.masking import UNBLINDED_ROLES
from trialwright.domain.roles import Role
from trialwright.exports.registry import FORMATS
from trialwright.protocol import load_protocol
from trialwright.services import audit
from trialwright.services.exports import EXPORTERS
from trialwright.services.forms import save_form
from trialwright.services.randomization import (
    allocation_of,
    emergency_unblind,
    generate_list,
    prepare,
    randomize,
    what_to_prepare,
)
from trialwright.services.safety import report_event
from trialwright.services.screening import enrol, record_consent, screen
from trialwright.services.users import create_user, get_user, issue_token
from trialwright.settings import Settings
from trialwright.store.engine import session_scope
from trialwright.web.app import create_app

BLINDED = [r for r in Role if r not in UNBLINDED_ROLES]
RANDOMIZERS = {Role.INVESTIGATOR, Role.STUDY_COORDINATOR}
ARMS = load_protocol(FIRST_PROTOCOL).protocol.arms
ARM_SECRETS = [a.code for a in ARMS] + [a.name for a in ARMS] + [a.description.strip()[:60] for a in ARMS]
#: What the pharmacist records for each arm's dose: lots, volumes and a particle count that differ by arm.
PREPARED = {
    "EXO": {"product_lot": "LOT-EXO-7731", "volume_ml": 4.637, "particles": 4.17e11},
    "PBO": {"product_lot": "LOT-PBS-2290", "volume_ml": 2.713},
}
LEGACY_LOT = "LOT-EXO-0419"  # in a dose.prepared entry, as databases made before preparation attributes hold it
UNBLINDING_REASON = f"Anaphylaxis 20 minutes into the infusion; pharmacy to check lot {PREPARED['EXO']['product_lot']}"


def _renderings(value: object) -> set[str]:
    """How a recorded value may be written on a page, in JSON or in a file."""
    if isinstance(value, str):
        return {value}
    assert isinstance(value, int | float)
    shown = {f"{value:g}", str(value), repr(value)}
    return shown | ({str(int(value))} if float(value).is_integer() else set())


def _preparation_secrets(recorded: dict[str, dict[str, object]]) -> list[str]:
    """Each recorded value of an attribute whose values differ by arm (or that one arm alone records)."""
    found: set[str] = {LEGACY_LOT}
    ids = {k for values in recorded.values() for k in values}
    for attribute in ids:
        by_arm = {arm: values.get(attribute) for arm, values in recorded.items()}
        if len(set(map(repr, by_arm.values()))) > 1:
            for value in by_arm.values():
                if value is not None:
                    found |= _renderings(value)
    return sorted(found)


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


def _enrolled(trial: Trial) -> str:
    """One more participant enrolled at RAZ."""
    admin = screener(trial.engine)  # screening is a coordinator's (docs/roles.md)
    assert admin is not None
    values = {k: v for k, v in ELIGIBLE.items() if k != "informed_consent"}
    s = screen(trial.engine, admin, site="RAZ", screened_on=dt.datetime.now(dt.UTC).date(), values=values)
    record_consent(trial.engine, admin, s.id, form_version="1.0", given_by="participant", obtained_by="Dr K",
                   obtained_at=dt.datetime.now(dt.UTC))  # fmt: skip
    s = enrol(trial.engine, admin, s.id)
    assert s.participant is not None
    return s.participant.participant_id


def _dataset(trial: Trial) -> tuple[dict[str, str], list[str]]:
    """Participants at RAZ on each arm, each dose prepared, a form, an SAE and an emergency unblinding; returns
    the ids the crawl puts into routes and the secrets it looks for."""
    engine = trial.engine
    generate_list(engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=1)
    codes: dict[str, tuple[str, str]] = {}  # arm -> (participant, preparation code)
    while len(codes) < len(ARMS):
        pid = _enrolled(trial)
        code = randomize(engine, who(trial, Role.INVESTIGATOR), pid).preparation_code
        shown = allocation_of(engine, who(trial, Role.UNBLINDED_STATISTICIAN), pid)
        assert shown is not None
        codes.setdefault(shown.arm, (pid, code))
    pharmacist = who(trial, Role.UNBLINDED_PHARMACIST)
    recorded = {}
    for arm, (_pid, code) in codes.items():
        prepare(engine, pharmacist, code, PREPARED[arm])
        recorded[arm] = {v.id: v.value for v in what_to_prepare(engine, pharmacist, code).recorded}
    pid, code = codes["EXO"]
    with session_scope(engine) as session:
        audit.record(session, actor=username(Role.UNBLINDED_PHARMACIST), role="unblinded_pharmacist", site="RAZ",
                     participant=pid, action="dose.prepared",
                     new_value={"preparation_code": code, "product_lot": LEGACY_LOT, "volume_ml": "4.6"})  # fmt: skip
    # A form with a soft-limit value, so that form pages, queries and the audit trail are crawled too.
    save_form(engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", "labs", {"crp": 450})
    # A serious adverse event (judged unrelated, so the safety pause stays open), so that the safety pages,
    # the listing and the tables are crawled with something in them.
    event = report_event(engine, who(trial, Role.INVESTIGATOR), pid, {
        "term": "Pneumothorax", "onset": dt.datetime.now(ZoneInfo("Asia/Tehran")).date().isoformat(), "grade": 3,
        "serious": True, "seriousness_criteria": ["hospitalisation"], "causality": "unlikely",
        "action_taken": "not_applicable", "outcome": "recovering", "aware_at": dt.datetime.now(dt.UTC).isoformat(),
    })  # fmt: skip
    # Another investigator of RAZ unblinds; the crawled investigator stays blinded to everyone.
    create_user(engine, username="investigator-2", password=PASSWORD, role=Role.INVESTIGATOR, sites=["RAZ"],
                full_name="Second investigator", actor="test")  # fmt: skip
    emergency_unblind(engine, who_named(trial, "investigator-2"), pid, reason=UNBLINDING_REASON, password=PASSWORD)
    ids = {"ae_number": event.ae_number, "screening_id": "1", "participant_id": pid, "code": code,
           "visit_id": "baseline", "form_id": "labs"}  # fmt: skip
    return ids, ARM_SECRETS + _preparation_secrets(recorded)


def who_named(trial: Trial, name: str):  # type: ignore[no-untyped-def]
    user = get_user(trial.engine, name)
    assert user is not None
    return user


@pytest.fixture(scope="module")
def crawled(module_database_url: str) -> Iterator[tuple[Trial, dict[str, str], list[str]]]:
    trial = make_trial(module_database_url)
    ids, secrets = _dataset(trial)
    yield trial, ids, secrets
    trial.engine.dispose()


@pytest.fixture(scope="module")
def app(crawled):  # type: ignore[no-untyped-def]
    return create_app(Settings(database_url=crawled[0].url, lockout_threshold=3))


def _leaks(text: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets if re.search(rf"(?<![\w-]){re.escape(s)}(?![\w-])", text)]


def _audit_paths(ids: dict[str, str]) -> list[str]:
    """The audit trail filtered to what the dataset put there (the newest page fills up with the crawl's own
    refusals)."""
    pid = ids["participant_id"]
    return [
        f"/admin/audit?participant={pid}",
        "/admin/audit?action=dose.prepared",
        "/admin/audit?action=participant.unblinded",
        "/admin/audit?action=randomization.",
        f"/api/v1/audit?participant={pid}&limit=500",
        "/api/v1/audit?action=dose.prepared",
        "/api/v1/audit?action=participant.unblinded",
        "/api/v1/audit?action=randomization.",
    ]


def _crawl(client: TestClient, app, crawled, role: Role) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    trial, ids, secrets = crawled
    sign_in(client, role)
    pages, api = _get_paths(app, ids)
    audit_paths = _audit_paths(ids)
    pages += [p for p in audit_paths if not p.startswith("/api/")]
    api += [p for p in audit_paths if p.startswith("/api/")]
    token, _ = issue_token(trial.engine, username(role), name="crawl", actor="test")
    headers = {"Authorization": f"Bearer {token}"}
    found: dict[str, list[str]] = {}
    for path in pages:
        response = client.get(path)
        assert response.status_code < 500, path
        found[path] = _leaks(response.text, secrets)
    for path in api:
        response = client.get(path, headers=headers)
        assert response.status_code < 500, path
        found[path] = _leaks(response.text, secrets)
    if role in EXPORTERS and role in BLINDED:  # every format this role may download, file by file
        for fmt in sorted(FORMATS):
            response = _export(client, fmt)
            assert response.status_code == 200, (fmt, response.text[:300])
            for name, text in _texts(response.content):
                found[f"export {fmt}: {name}"] = _leaks(text, secrets)
    if role in RANDOMIZERS:  # the answers to randomizing, and to randomizing twice, show no arm either
        fresh = _enrolled(trial)
        statuses = []
        for attempt in ("first", "again"):
            response = client.post(f"/api/v1/participants/{fresh}/randomization", headers=headers)
            statuses.append(response.status_code)
            found[f"POST /api/v1/participants/{{id}}/randomization ({attempt})"] = _leaks(response.text, secrets)
        assert statuses == [201, 422]
        fresh = _enrolled(trial)
        form = {"csrf_token": csrf_of(client.get("/profile").text)}
        asked = client.post(f"/participants/{fresh}/randomize", data=form)  # the confirmation page
        assert asked.status_code == 200 and 'data-testid="what-will-happen"' in asked.text
        found["POST /participants/{id}/randomize (asked)"] = _leaks(asked.text, secrets)
        form["confirm"] = confirm_of(asked.text)
        for attempt in ("first", "again"):
            page = client.post(f"/participants/{fresh}/randomize", data=form, follow_redirects=True)
            assert page.status_code == (200 if attempt == "first" else 422) and "masked" in page.text
            found[f"POST /participants/{{id}}/randomize ({attempt})"] = _leaks(page.text, secrets)
    return {p: leaks for p, leaks in found.items() if leaks}


@pytest.mark.covers("REG-5")
@pytest.mark.parametrize("role", BLINDED, ids=[r.value for r in BLINDED])
def test_no_blinded_role_sees_an_arm_anywhere(client: TestClient, app, crawled, role: Role) -> None:  # type: ignore[no-untyped-def]
    assert _crawl(client, app, crawled, role) == {}


def test_the_dataset_holds_what_the_crawl_looks_for(crawled) -> None:  # type: ignore[no-untyped-def]
    _, _, secrets = crawled
    # Both arms' lots and volumes, the particle count only the exosome arm records, the old entry's lot.
    assert {"LOT-EXO-7731", "LOT-PBS-2290", "4.637", "2.713", "4.17e+11", LEGACY_LOT} <= set(secrets)


@pytest.mark.covers("REG-5")
def test_the_crawl_would_catch_a_leak(client: TestClient, app, crawled) -> None:  # type: ignore[no-untyped-def]
    leaks = _crawl(client, app, crawled, Role.UNBLINDED_STATISTICIAN)
    assert "EXO" in leaks["/"] and "/api/v1/trial" in leaks
    # The statistician's own pages do show arms: the list export and the balance report.
    assert "/randomization/list.csv" in leaks and "/api/v1/randomization/list" in leaks
    assert "/api/v1/randomization/balance" in leaks and "/randomization" in leaks
    # And the safety review by arm.
    assert {"/dsmb", "/safety/listing.csv", "/api/v1/safety/tables", "/api/v1/safety/listing"} <= set(leaks)
    assert "/adverse-events/AE-0001" in leaks and "/api/v1/adverse-events" in leaks
    # The statistician's exports (without arms, as the crawl makes them) hold none.
    assert not [p for p in leaks if p.startswith("export ")]


def test_the_crawl_would_catch_a_preparation_value(client: TestClient, app, crawled) -> None:  # type: ignore[no-untyped-def]
    leaks = _crawl(client, app, crawled, Role.UNBLINDED_PHARMACIST)
    code = crawled[1]["code"]
    assert {"LOT-EXO-7731", "4.637"} <= set(leaks[f"/pharmacy/{code}"])
    assert _renderings(PREPARED["EXO"]["particles"]) & set(leaks[f"/pharmacy/{code}"])
    assert "LOT-EXO-7731" in leaks[f"/api/v1/pharmacy/{code}"]


def test_the_crawl_would_catch_an_unmasked_audit_trail(  # type: ignore[no-untyped-def]
    client: TestClient, crawled, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trialwright.services import audit_trail

    monkeypatch.setattr(audit_trail, "present_entry", lambda viewer, entry: entry)
    trial, ids, secrets = crawled
    sign_in(client, Role.DATA_MANAGER)
    token, _ = issue_token(trial.engine, username(Role.DATA_MANAGER), name="crawl", actor="test")
    pid = ids["participant_id"]
    for path in (f"/admin/audit?participant={pid}", f"/api/v1/audit?participant={pid}&limit=500"):
        response = client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert {"LOT-EXO-7731", LEGACY_LOT} <= set(_leaks(response.text, secrets)), path


@pytest.mark.parametrize("role", [Role.STUDY_COORDINATOR, Role.MONITOR], ids=["study_coordinator", "monitor"])
def test_every_page_title_is_plain_words(client: TestClient, app, crawled, role: Role) -> None:  # type: ignore[no-untyped-def]
    """A page's title (the browser's tab, what a screen reader says first) is words, never a page's markup."""
    _, ids, _ = crawled
    sign_in(client, role)
    titles = {}
    for path in _get_paths(app, ids)[0]:
        response = client.get(path)
        title = re.search(r"<title>(.*?)</title>", response.text, re.S)
        if response.headers.get("content-type", "").startswith("text/html") and title:
            titles[path] = title.group(1)
    assert f"/participants/{ids['participant_id']}" in titles
    assert {p: t for p, t in titles.items() if "&lt;" in t or "<" in t or "\n" in t.strip()} == {}
