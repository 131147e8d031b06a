"""A forged cursor is refused as a bad cursor, never a server error (both databases).

A cursor is the client's to send back, so it may come back edited: a key of the wrong length, a value of the
wrong kind in a position (an int where the list's order key is a date, a date where it is a time), a time
without a time zone, a number no database column holds, text with a NUL, or not a cursor at all. Each is
checked against the list's order key before it reaches the database: the API answers 422 naming ``cursor``,
and a list page shows its first page, as for any stale or edited link. A cursor of the right kinds still pages.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from tests.spec.web.conftest import sign_in
from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, username
from trialwright.domain.roles import Role
from trialwright.services.simulation import simulate
from trialwright.services.users import issue_token
from trialwright.settings import Settings
from trialwright.web.app import create_app

#: A value of each kind an order key holds, as the cursor's JSON carries it.
GOOD: dict[str, Any] = {
    "time": {"t": "2026-01-01T00:00:00+00:00"},
    "date": {"d": "2026-01-01"},
    "int": 5,
    "str": "RAZ-001",
}
#: Values that fit no position of their kind's list, or only some: each is refused where it does not fit.
FORGED: list[Any] = [
    {"t": "2026-01-01T00:00:00"},  # a time without a time zone
    {"t": "not a time"},
    {"d": "2026-13-45"},
    True,
    None,
    2**70,  # beyond a 64-bit integer
    "RAZ\x00001",  # PostgreSQL text cannot hold NUL
    [1],
    {"x": 1},
    *GOOD.values(),
]
#: The order key of each API list, by kind.
API_KEYS = {
    "/api/v1/screenings": ("date", "int"),
    "/api/v1/queries": ("int", "int"),
    "/api/v1/adverse-events": ("int",),
    "/api/v1/participants": ("time", "str"),
    "/api/v1/audit": ("int",),
}
#: Not a cursor at all.
GARBAGE = ["nonsense", "!!!!", "e30", base64.urlsafe_b64encode(b"\xff\xfe").decode(), "W10", "bnVsbA"]


def _cursor(key: list[Any], forward: bool = True) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": key, "f": forward}).encode()).decode().rstrip("=")


def forged_cursors(kinds: tuple[str, ...]) -> list[str]:
    """Every way of getting a cursor of this order key wrong: each position given each value that is not of its
    kind, the key one value too short or too long, and text that is no cursor."""
    good = [GOOD[k] for k in kinds]
    cursors = []
    for n, kind in enumerate(kinds):
        for value in FORGED:
            if value != GOOD[kind] or isinstance(value, bool):
                cursors += [_cursor([*good[:n], value, *good[n + 1 :]], forward) for forward in (True, False)]
    cursors += [_cursor(good[:-1]), _cursor([*good, 5]), *GARBAGE]
    return cursors


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    simulate(t.engine, FIRST_PROTOCOL, 30, seed=21)
    yield t
    t.engine.dispose()


@pytest.fixture(scope="module")
def client(trial: Trial) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as c:
        yield c


def test_every_api_list_refuses_a_forged_cursor_naming_it(client: TestClient, trial: Trial) -> None:
    token, _ = issue_token(trial.engine, username(Role.ADMINISTRATOR), name="forged", actor="test")
    headers = {"Authorization": f"Bearer {token}"}
    for path, kinds in API_KEYS.items():
        # A cursor of the right kinds pages (so the refusals below are about the kinds, not the endpoint).
        for forward in (True, False):
            assert client.get(path, params={"cursor": _cursor([GOOD[k] for k in kinds], forward)},
                              headers=headers).status_code == 200, path  # fmt: skip
        for cursor in forged_cursors(kinds):
            answer = client.get(path, params={"cursor": cursor}, headers=headers)
            assert answer.status_code == 422, (path, cursor, answer.status_code, answer.text[:200])
            assert answer.json()["errors"] == [
                {"field": "cursor", "rule": "not a cursor of this list", "message": None}
            ], path


def test_the_adverse_events_filtered_to_serious_refuse_a_forged_cursor(client: TestClient, trial: Trial) -> None:
    # With the serious or overdue filter the events are filtered in SQL (services/safety/sql.py), by the same key.
    token, _ = issue_token(trial.engine, username(Role.ADMINISTRATOR), name="forged", actor="test")
    headers = {"Authorization": f"Bearer {token}"}
    listed = client.get("/api/v1/adverse-events", params={"serious": "true"}, headers=headers)
    assert listed.status_code == 200 and listed.json()["total"] > 0, "the simulated trial has serious events"
    for cursor in forged_cursors(("int",)):
        answer = client.get("/api/v1/adverse-events", params={"serious": "true", "cursor": cursor}, headers=headers)
        assert answer.status_code == 422, (cursor, answer.status_code, answer.text[:200])
        assert answer.json()["errors"][0]["field"] == "cursor"


def _range(text: str) -> str:
    found = re.search(r'data-testid="page-range">([^<]*)<', text)
    assert found, "the page has no pager"
    return html.unescape(found.group(1)).strip()


@pytest.mark.parametrize(
    ("role", "path", "kinds"),
    [
        (Role.ADMINISTRATOR, "/participants", ("time", "str")),
        (Role.ADMINISTRATOR, "/screening", ("date", "int")),
        (Role.MONITOR, "/queries", ("int", "int")),
        (Role.ADMINISTRATOR, "/safety", ("int",)),
        (Role.UNBLINDED_PHARMACIST, "/pharmacy", ("int", "time", "str")),
        (Role.DATA_MANAGER, "/data-access", ("int",)),
        (Role.DATA_MANAGER, "/admin/audit?action=form.", ("int",)),
    ],
    ids=["participants", "screening", "queries", "adverse events", "pharmacy", "data access", "audit trail"],
)  # fmt: skip
def test_every_list_page_shows_its_first_page_for_a_forged_cursor(
    trial: Trial, role: Role, path: str, kinds: tuple[str, ...]
) -> None:
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as c:
        sign_in(c, role)
        first = c.get(path)
        assert first.status_code == 200
        for cursor in forged_cursors(kinds):
            shown = c.get(f"{path}{'&' if '?' in path else '?'}{urlencode({'cursor': cursor})}")  # filters kept
            assert shown.status_code == 200, (path, cursor, shown.status_code)
            assert _range(shown.text) == _range(first.text), (path, cursor)
