"""Pages of the API lists and of the web list pages (both databases).

The API: every list endpoint answers ``{items, total, limit, next, prev}`` and a ``Link`` header; following
``next`` (or the header's ``rel="next"``) to the end returns every row once, with the filters kept; a
malformed cursor or a limit out of range answers 422 naming the parameter; OpenAPI documents the shape.
The pages: "Showing 1–50 of N" with next and previous links that keep the filters, every row reachable.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.spec.web.conftest import sign_in
from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, screener, username, who
from trialwright.domain.roles import Role
from trialwright.services.audit_trail import read_trail
from trialwright.services.forms import list_queries
from trialwright.services.randomization import PreparationState, participant_rows, preparation_queue
from trialwright.services.readiness import lock_readiness
from trialwright.services.safety import list_events
from trialwright.services.screening import list_screenings, screen
from trialwright.services.sharing import list_requests, record_request
from trialwright.services.simulation import simulate
from trialwright.services.users import issue_token
from trialwright.settings import Settings
from trialwright.web.app import create_app

EXTRA = 30  # screenings beyond the simulation's 40, so the log runs past one page of 50


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    simulate(t.engine, FIRST_PROTOCOL, 40, seed=21)
    for _ in range(EXTRA):
        screen(t.engine, screener(t.engine), site="RAZ", screened_on=None, values={})
    for n in range(3):
        record_request(t.engine, who(t, Role.DATA_MANAGER), requester=f"Researcher {n}", organisation="Uni",
                       email="r@uni.org", purpose="IPD meta-analysis", reasons="Pooling pilot trials.",
                       received_on=dt.date(2026, 1, 5))  # fmt: skip
    yield t
    t.engine.dispose()


@pytest.fixture(scope="module")
def client(trial: Trial) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as c:
        yield c


def _bearer(trial: Trial, role: Role) -> dict[str, str]:
    token, _ = issue_token(trial.engine, username(role), name="paging", actor="test")
    return {"Authorization": f"Bearer {token}"}


def _links(response: Any) -> dict[str, str]:
    return {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', response.headers.get("link", ""))}


def _follow(
    client: TestClient, headers: dict[str, str], path: str, key: str, *, by_header: bool = False
) -> tuple[list[Any], int]:
    """Every item of an API list, page by page along ``next`` (or the ``Link`` header); and the total."""
    got: list[Any] = []
    response = client.get(path, headers=headers)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"items", "total", "limit", "next", "prev"}
        got += [item[key] for item in body["items"]]
        links = _links(response)
        assert links.get("next") is None if body["next"] is None else f"cursor={body['next']}" in links["next"]
        if body["next"] is None:
            return got, body["total"]
        if by_header:
            response = client.get(links["next"], headers=headers)
        else:
            joiner = "&" if "?" in path else "?"
            response = client.get(f"{path}{joiner}cursor={body['next']}", headers=headers)


def test_every_api_list_pages_to_the_end(client: TestClient, trial: Trial) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    headers = _bearer(trial, Role.STUDY_COORDINATOR)
    expected = {
        "/api/v1/screenings?limit=7": ("id", [s.id for s in list_screenings(trial.engine, coordinator)]),
        "/api/v1/queries?limit=4": ("id", [q.id for q in list_queries(trial.engine, coordinator)]),
        "/api/v1/adverse-events?limit=2": ("ae_number", [e.ae_number for e in list_events(trial.engine, coordinator)]),
        "/api/v1/participants?limit=5": (
            "participant_id",
            [p.participant_id for p in participant_rows(trial.engine, coordinator)],
        ),
    }
    for path, (key, rows) in expected.items():
        assert len(rows) > 2
        for by_header in (False, True):
            got, total = _follow(client, headers, path, key, by_header=by_header)
            assert got == rows and total == len(rows), path


@pytest.mark.parametrize("role", [Role.DATA_MANAGER, Role.MONITOR])
def test_the_audit_api_pages_to_the_end_like_every_list(client: TestClient, trial: Trial, role: Role) -> None:
    reader = who(trial, role)
    headers = _bearer(trial, role)
    rows = [e.seq for e in read_trail(trial.engine, reader, action_prefix="form.", limit=10**9)]
    assert len(rows) > 100  # several pages of 40
    for by_header in (False, True):
        got, total = _follow(client, headers, "/api/v1/audit?limit=40&action=form.", "seq", by_header=by_header)
        assert got == rows and total == len(rows)


def test_api_filters_are_kept_in_the_links(client: TestClient, trial: Trial) -> None:
    admin = who(trial, Role.ADMINISTRATOR)
    headers = _bearer(trial, Role.ADMINISTRATOR)
    got, total = _follow(client, headers, "/api/v1/screenings?limit=3&site=GOL", "id", by_header=True)
    assert got == [s.id for s in list_screenings(trial.engine, admin, site="GOL")] and total == len(got) > 3
    first = client.get("/api/v1/screenings?limit=3&site=GOL", headers=headers)
    assert "site=GOL" in _links(first)["next"] and "limit=3" in _links(first)["next"]
    second = client.get(_links(first)["next"], headers=headers)
    assert "prev" in _links(second) and second.json()["prev"] is not None


def test_api_refuses_a_bad_cursor_and_a_limit_out_of_range(client: TestClient, trial: Trial) -> None:
    headers = _bearer(trial, Role.ADMINISTRATOR)
    for path in ("/api/v1/screenings", "/api/v1/queries", "/api/v1/adverse-events", "/api/v1/participants",
                 "/api/v1/audit"):  # fmt: skip
        bad = client.get(f"{path}?cursor=nonsense", headers=headers)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor", path
        for limit in (0, 501):
            refused = client.get(f"{path}?limit={limit}", headers=headers)
            assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "limit", path
        assert client.get(path, headers=headers).json()["limit"] == 50


def test_openapi_documents_the_pages(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json")
    if document.status_code == 404:
        document = client.get("/openapi.json")
    spec = document.json()
    for path in ("/api/v1/screenings", "/api/v1/queries", "/api/v1/adverse-events", "/api/v1/participants",
                 "/api/v1/audit"):  # fmt: skip
        get = spec["paths"][path]["get"]
        assert {"limit", "cursor"} <= {p["name"] for p in get["parameters"]}, path
        ref = get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert {"items", "total", "limit", "next", "prev"} <= set(schema["properties"]), path


def _range(text: str) -> str:
    found = re.search(r'data-testid="page-range">([^<]*)<', text)
    assert found, "the page has no pager"
    return html.unescape(found.group(1)).strip()


def _next(text: str) -> str | None:
    found = re.search(r'rel="next" data-testid="page-next" href="([^"]+)"', text)
    return html.unescape(found.group(1)) if found else None


def test_the_screening_log_says_what_it_shows_and_reaches_every_row(client: TestClient, trial: Trial) -> None:
    sign_in(client, Role.ADMINISTRATOR)
    labels = [s.label for s in list_screenings(trial.engine, who(trial, Role.ADMINISTRATOR))]
    total = len(labels)
    assert total > 50
    first = client.get("/screening")
    assert _range(first.text) == f"Showing 1–50 of {total}" and 'rel="prev"' not in first.text
    second_url = _next(first.text)
    assert second_url is not None
    second = client.get(second_url)
    assert _range(second.text) == f"Showing 51–{total} of {total}" and 'rel="prev"' in second.text
    assert _next(second.text) is None
    shown = re.findall(r'<a href="/screening/\d+">([^<]+)</a>', first.text + second.text)
    assert shown == labels  # every row once, in order
    # A filter is kept by the links; the count is the filter's.
    raz = [s.label for s in list_screenings(trial.engine, who(trial, Role.ADMINISTRATOR), site="RAZ")]
    filtered = client.get("/screening?site=RAZ")
    assert _range(filtered.text) == f"Showing 1–{min(50, len(raz))} of {len(raz)}"
    if len(raz) > 50:
        assert "site=RAZ" in (_next(filtered.text) or "")
    # A stale or edited cursor shows the first page.
    assert _range(client.get("/screening?cursor=nonsense").text) == f"Showing 1–50 of {total}"


@pytest.mark.parametrize(
    ("role", "path", "count"),
    [
        (Role.ADMINISTRATOR, "/participants", lambda t: len(participant_rows(t.engine, who(t, Role.ADMINISTRATOR)))),
        (Role.MONITOR, "/queries", lambda t: len(list_queries(t.engine, who(t, Role.MONITOR)))),
        (Role.ADMINISTRATOR, "/safety", lambda t: len(list_events(t.engine, who(t, Role.ADMINISTRATOR)))),
        (Role.UNBLINDED_PHARMACIST, "/pharmacy?state=done",  # the simulated doses were prepared on earlier days
         lambda t: len([q for q in preparation_queue(t.engine, who(t, Role.UNBLINDED_PHARMACIST))
                        if q.state is PreparationState.DONE])),
        (Role.DATA_MANAGER, "/data-access", lambda t: len(list_requests(t.engine, who(t, Role.DATA_MANAGER)))),
    ],
    ids=["participants", "queries", "adverse events", "pharmacy", "data access"],
)  # fmt: skip
def test_every_list_page_says_how_many_rows_there_are(trial: Trial, role: Role, path: str, count: Any) -> None:
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as c:
        sign_in(c, role)
        n = count(trial)
        assert n > 0
        assert _range(c.get(path).text) == f"Showing 1–{min(n, 50)} of {n}"


def test_the_lock_page_says_how_many_blockers_it_leaves_out(trial: Trial) -> None:
    blockers = len(lock_readiness(trial.engine, who(trial, Role.DATA_MANAGER)).blockers)
    assert blockers > 10  # the simulated trial has open queries, unsigned forms...
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as c:
        sign_in(c, Role.DATA_MANAGER)
        text = c.get("/data-management").text
    assert len(re.findall(r"<li[ >]", text.split('data-testid="first-blockers"', 1)[1].split("</ul>", 1)[0])) == 10
    assert f"The first 10 of {blockers}; every one is on the lock readiness page." in text
