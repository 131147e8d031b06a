"""A page of the safety page, the screening log, a role's home page (its work lists), a work list or the status
matrix costs the same number of SQL statements whatever the size of the trial (both databases).

Two simulated trials of the first protocol (the same seed; 12 and 36 patients screened; in each, one SAE reported
three days ago and not sent, so that both have an overdue report), each read through the
real app, signed in as the role that works with the page: every statement the request sends is counted with a
SQLAlchemy ``before_cursor_execute`` listener on the app's engine. The safety page (its tables, its overdue reports
and its page of events, also filtered to the serious or overdue ones), the screening log, their API lists, the home
pages, a work list's page and the status matrix (issue 24 item 1) send as many statements on the larger trial as on
the smaller: filtering, counting and paging happen in SQL, and a page's rows are read with one statement per kind of
row, never one per row or per event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from tests.conftest import fresh_database
from tests.spec.forms.conftest import NOW, TODAY
from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, username, who
from trialwright.domain.roles import Role
from trialwright.services.reauth import access_policy
from trialwright.services.safety import report_event
from trialwright.services.simulation import simulate
from trialwright.services.tokens import issue_token
from trialwright.services.users import get_user, start_session
from trialwright.settings import Settings
from trialwright.store.engine import read_scope
from trialwright.store.safety_tables import adverse_events
from trialwright.store.screening_tables import participants, withdrawals
from trialwright.web.app import create_app
from trialwright.web.security import SESSION_COOKIE

SIZES = (12, 36)
PAGES = [
    (Role.INVESTIGATOR, "/safety"),
    (Role.INVESTIGATOR, "/safety?serious=1"),
    (Role.INVESTIGATOR, "/safety?overdue=1"),
    (Role.DATA_MANAGER, "/safety"),
    (Role.UNBLINDED_STATISTICIAN, "/safety"),
    (Role.STUDY_COORDINATOR, "/screening"),
    (Role.STUDY_COORDINATOR, "/api/v1/screenings"),
    (Role.INVESTIGATOR, "/api/v1/adverse-events"),
    (Role.INVESTIGATOR, "/"),
    (Role.STUDY_COORDINATOR, "/"),
    (Role.MONITOR, "/"),
    (Role.DATA_MANAGER, "/"),
    (Role.INVESTIGATOR, "/work?list=forms_to_sign"),
    (Role.MONITOR, "/data/matrix"),
    (Role.DATA_MANAGER, "/data/matrix?status=complete&visit=day7"),
    (Role.DATA_MANAGER, "/data/matrix?status=not_started"),
]


def _statements(url: str) -> dict[str, int]:
    """Statements per request of each page (the second request of each: the first may fill caches)."""
    settings = Settings(database_url=url)
    app = create_app(settings)
    engine = app.state.engine
    sent: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    figures: dict[str, int] = {}
    with TestClient(app, follow_redirects=False) as client:
        for role, path in PAGES:
            user = get_user(engine, username(role))
            assert user is not None
            cookie, _ = start_session(engine, user, access_policy(settings))
            token, _ = issue_token(engine, username(role), name="statements", actor="test")
            client.cookies.set(SESSION_COOKIE, cookie)
            headers = {"Authorization": f"Bearer {token}"} if path.startswith("/api/") else {}
            assert client.get(path, headers=headers).status_code == 200
            event.listen(engine, "before_cursor_execute", count)
            try:
                sent.clear()
                answer = client.get(path, headers=headers)
            finally:
                event.remove(engine, "before_cursor_execute", count)
            assert answer.status_code == 200, answer.text
            figures[f"{role.value} {path}"] = len(sent)
    with engine.connect() as conn:
        figures["participants"] = conn.execute(select(func.count()).select_from(participants)).scalar_one()
        figures["events"] = conn.execute(select(func.count()).select_from(adverse_events)).scalar_one()
    engine.dispose()
    return figures


def _an_overdue_sae(trial: Trial) -> None:
    """An SAE known three days ago and not yet sent, so that both trials' overdue lists hold an event."""
    with read_scope(trial.engine) as session:
        pid = session.execute(
            select(participants.c.participant_id)
            .where(
                participants.c.site == "RAZ", participants.c.participant_id.not_in(select(withdrawals.c.participant_id))
            )
            .order_by(participants.c.participant_id)
            .limit(1)
        ).scalar_one()
    report_event(trial.engine, who(trial, Role.INVESTIGATOR), pid, {
        "term": "Acute kidney injury", "onset": (TODAY - dt.timedelta(days=5)).isoformat(), "grade": 3, "serious": True,
        "seriousness_criteria": ["hospitalisation"], "causality": "unlikely", "action_taken": "not_applicable",
        "outcome": "not_recovered", "aware_at": (NOW - dt.timedelta(days=3)).isoformat(),
    })  # fmt: skip


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def counted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, int]]]:
    reason = request.getfixturevalue("postgres_available") if request.param == "postgresql" else None
    out = []
    for size in SIZES:
        folder: Path = tmp_path_factory.mktemp(f"size{size}")
        with fresh_database(request.param, folder, reason) as url:
            trial = make_trial(url)
            simulate(trial.engine, FIRST_PROTOCOL, size, seed=21)
            _an_overdue_sae(trial)
            trial.engine.dispose()
            out.append(_statements(url))
    yield out


def test_the_larger_trial_has_more_participants_and_events(counted: list[dict[str, int]]) -> None:
    small, large = counted
    assert large["participants"] >= 2 * small["participants"] and large["events"] >= 2 * small["events"] > 0


@pytest.mark.parametrize("page", [f"{role.value} {path}" for role, path in PAGES])
def test_statements_per_page_do_not_grow_with_the_trial(counted: list[dict[str, int]], page: str) -> None:
    small, large = counted
    assert large[page] == small[page], (
        f"{page}: {small[page]} statements at {SIZES[0]} screened, {large[page]} at {SIZES[1]}"
    )
