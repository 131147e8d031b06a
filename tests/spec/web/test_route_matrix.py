"""Access by role, for every route of the web app and the API, against the table in docs/roles.md.

The routes are collected from the app (as the leak crawl does); each is requested as every role (pages
signed in with a session and the form's CSRF token, API routes with the role's bearer token), path ids
filled with placeholders. A cell is ``403`` when the role is refused, ``ok`` when it passes the role gate
(the answer may still be 400, 404 or 422 for the placeholder input). The test fails on any route the table
does not classify and on any cell that differs, so a new route must be classified in docs/roles.md.

Site scope: every route about one participant (its screening, participant id or adverse event) is read, and
written through the pages, by every site-scoped role, once about a participant at the role's site (RAZ) and
once about one at another site (GOL); the answers (ok / 403 / 404) must be docs/roles.md's second table.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.spec.eligibility.test_first_trial_criteria import ELIGIBLE
from tests.spec.web.conftest import csrf_of, sign_in
from tests.spec.web.test_blinded_crawl import _routes
from tests.trialfixtures import PASSWORD, Trial, make_trial, screener, username, who
from trialwright.domain.roles import Role
from trialwright.services.forms import save_form
from trialwright.services.randomization import generate_list, list_exists, randomize
from trialwright.services.safety import report_event
from trialwright.services.screening import enrol, record_consent, screen
from trialwright.services.users import create_user, issue_token
from trialwright.settings import Settings
from trialwright.web.app import create_app

ROLES = list(Role)
DOC = Path(__file__).resolve().parents[3] / "docs" / "roles.md"
_PLACEHOLDERS = {"token_id": "999999", "query_id": "999999", "number": "999999", "ae_number": "999999"}


SCOPED = [r for r in ROLES if r.site_scoped]
_PARTICIPANT_KEYS = ("{participant_id}", "{screening_id}", "{ae_number}")


def documented(section_title: str = "## Access by route\n") -> dict[tuple[str, str], dict[str, str]]:
    """A table of docs/roles.md: (method, path) -> column -> cell."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split(section_title, 1)[1]
    header: list[str] | None = None
    table: dict[tuple[str, str], dict[str, str]] = {}
    for line in section.splitlines():
        if not line.startswith("|"):
            if header is not None:
                break
            continue
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            continue
        if set(cells[0]) <= {"-", ":"}:
            continue
        table[(cells[0], cells[1])] = dict(zip(header[2:], cells[2:], strict=True))
    return table


def _path(template: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: _PLACEHOLDERS.get(m.group(1), "X-NONE"), template)


def observed(trial: Trial) -> dict[tuple[str, str], dict[str, str]]:
    """Every route as every role, as the app answers now (the matrix posts to /sign-in once per role with nothing
    in it: no limit on failed sign-ins here, as eleven roles would pass it; test_limits.py checks the limit)."""
    app = create_app(Settings(database_url=trial.url, rate_limit_sign_in=0))
    routes = sorted(
        {(m, p) for p, methods in _routes(app.routes) for m in methods if m != "HEAD"},
        key=lambda r: (r[1] in ("/sign-out",), r[1], r[0]),  # signing out ends the session: last
    )
    result: dict[tuple[str, str], dict[str, str]] = {r: {} for r in routes}
    for role in ROLES:
        token, _ = issue_token(trial.engine, username(role), name="matrix", actor="test")
        with TestClient(app, follow_redirects=False) as client:
            sign_in(client, role)
            csrf = csrf_of(client.get("/profile").text)
            for method, template in routes:
                path = _path(template)
                if path.startswith("/api/"):
                    headers = {"Authorization": f"Bearer {token}"}
                    body = {} if method in ("POST", "PUT", "PATCH") else None
                    response = client.request(method, path, headers=headers, json=body)
                else:
                    data = {"csrf_token": csrf} if method != "GET" else None
                    response = client.request(method, path, data=data)
                result[(method, template)][role.value] = "403" if response.status_code == 403 else "ok"
    assert who(trial, Role.ADMINISTRATOR)
    return result


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


def test_the_table_names_every_role() -> None:
    table = documented()
    assert table, "docs/roles.md has no access table"
    assert all(set(cells) == {r.value for r in ROLES} for cells in table.values())
    assert all(v in ("ok", "403") for cells in table.values() for v in cells.values())


def test_the_administrator_cannot_read_the_allocation_list() -> None:
    table = documented()
    assert table[("GET", "/randomization/list.csv")]["administrator"] == "403"
    assert table[("GET", "/api/v1/randomization/list")]["administrator"] == "403"
    assert table[("GET", "/randomization/list.csv")]["unblinded_statistician"] == "ok"


def test_every_route_answers_every_role_as_documented(trial: Trial) -> None:
    table = documented()
    seen = observed(trial)
    unclassified = sorted(set(seen) - set(table))
    assert not unclassified, f"routes not classified in docs/roles.md (## Access by route): {unclassified}"
    gone = sorted(set(table) - set(seen))
    assert not gone, f"docs/roles.md classifies routes the app no longer has: {gone}"
    wrong = [
        f"{method} {path} as {role}: documented {table[(method, path)][role]}, answered {cell}"
        for (method, path), cells in seen.items()
        for role, cell in cells.items()
        if table[(method, path)][role] != cell
    ]
    assert not wrong, "\n".join(wrong)


def _participant(trial: Trial, site: str) -> dict[str, str]:
    """A randomized participant at ``site`` with a saved form and a serious adverse event."""
    admin = screener(trial.engine)  # screening is a coordinator's (docs/roles.md)
    values = {k: v for k, v in ELIGIBLE.items() if k != "informed_consent"}
    s = screen(trial.engine, admin, site=site, screened_on=dt.datetime.now(dt.UTC).date(), values=values)
    at = dt.datetime.now(dt.UTC)
    record_consent(
        trial.engine, admin, s.id, form_version="1.0", given_by="participant", obtained_by="Dr K", obtained_at=at
    )
    s = enrol(trial.engine, admin, s.id)
    assert s.participant is not None
    pid = s.participant.participant_id
    if not list_exists(trial.engine):
        generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=1)
    name = f"investigator-{site.lower()}"
    investigator = create_user(
        trial.engine, username=name, password=PASSWORD, role=Role.INVESTIGATOR, sites=[site], actor="test"
    )
    randomize(trial.engine, investigator, pid)
    save_form(trial.engine, investigator, pid, "baseline", "labs", {"crp": 450})
    event = report_event(trial.engine, investigator, pid, {
        "term": "Pneumothorax", "onset": dt.datetime.now(dt.UTC).date().isoformat(), "grade": 3, "serious": True,
        "seriousness_criteria": ["hospitalisation"], "causality": "unlikely", "action_taken": "not_applicable",
        "outcome": "recovering", "aware_at": dt.datetime.now(dt.UTC).isoformat(),
    })  # fmt: skip
    return {
        "{participant_id}": pid,
        "{screening_id}": str(s.id),
        "{ae_number}": event.ae_number,
        "{visit_id}": "baseline",
        "{form_id}": "labs",
        "{log_id}": "conmeds",
        "{sequence}": "1",
    }


def observed_scope(trial: Trial) -> dict[tuple[str, str], dict[str, str]]:
    """Every participant route as every site-scoped role: ``own/other`` (at RAZ, at GOL)."""
    app = create_app(Settings(database_url=trial.url))
    routes = sorted(
        {
            (m, p)
            for p, methods in _routes(app.routes)
            for m in methods
            if m != "HEAD" and any(k in p for k in _PARTICIPANT_KEYS) and (m == "GET" or not p.startswith("/api/"))
        },
        key=lambda r: (r[1], r[0]),
    )
    sites = {"own": _participant(trial, "RAZ"), "other": _participant(trial, "GOL")}
    result: dict[tuple[str, str], dict[str, str]] = {r: {} for r in routes}
    for role in SCOPED:
        token, _ = issue_token(trial.engine, username(role), name="scope", actor="test")
        with TestClient(app, follow_redirects=False) as client:
            sign_in(client, role)
            csrf = csrf_of(client.get("/profile").text)
            for method, template in routes:
                answers = []
                for where in ("own", "other"):
                    path = template
                    for key, value in sites[where].items():
                        path = path.replace(key, value)
                    if path.startswith("/api/"):
                        response = client.get(path, headers={"Authorization": f"Bearer {token}"})
                    else:
                        # with a reason and the right password, so that a write reaches its site check
                        form = {"csrf_token": csrf, "reason": "route matrix", "password": PASSWORD}
                        response = client.request(method, path, data=form if method != "GET" else None)
                    code = response.status_code
                    answers.append(str(code) if code in (403, 404) else "ok")
                result[(method, template)][role.value] = "/".join(answers)
    return result


def test_every_participant_route_keeps_to_the_role_sites_as_documented(trial: Trial) -> None:
    table = documented("## Access by route: site scope\n")
    seen = observed_scope(trial)
    unclassified = sorted(set(seen) - set(table))
    assert not unclassified, f"participant routes not in docs/roles.md (## Access by route: site scope): {unclassified}"
    wrong = [
        f"{method} {path} as {role}: documented {table[(method, path)][role]}, answered {cell}"
        for (method, path), cells in seen.items()
        for role, cell in cells.items()
        if table[(method, path)][role] != cell
    ]
    assert not wrong, "\n".join(wrong)


def test_no_site_scoped_role_reaches_another_site() -> None:
    table = documented("## Access by route: site scope\n")
    assert table and all(set(cells) == {r.value for r in SCOPED} for cells in table.values())
    assert all(cell.split("/")[1] in ("403", "404") for cells in table.values() for cell in cells.values())


def markdown(seen: dict[tuple[str, str], dict[str, str]], roles: list[Role]) -> str:
    """A table as docs/roles.md holds it (to write a first draft; review every row)."""
    lines = ["| method | path | " + " | ".join(r.value for r in roles) + " |"]
    lines.append("|---|---|" + "---|" * len(roles))
    for (method, path), cells in sorted(seen.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        lines.append(f"| {method} | `{path}` | " + " | ".join(cells[r.value] for r in roles) + " |")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - drafting aid
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        t = make_trial(f"sqlite:///{d}/matrix.db")
        if "--scope" in sys.argv:
            sys.stdout.write(markdown(observed_scope(t), SCOPED) + "\n")
        else:
            sys.stdout.write(markdown(observed(t), ROLES) + "\n")
