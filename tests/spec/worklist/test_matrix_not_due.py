"""The status matrix says "not due" for the forms of a visit an amendment added after the window had closed, as the
schedule and the lock readiness do (SQLite and PostgreSQL).

The trial of ``tests/spec/lock/test_visits_added_by_an_amendment.py``: walk2 version 1.0, amended on 2026-07-01 to
version 1.1, which adds ``day14`` (window 12 to 16 days after randomization). None of the four participants held or
missed ``day14``:

| randomized | day14's window closed | the schedule | the matrix's day14 cells (before the fix: all "not started") |
|------------|-----------------------|--------------|----------------------------------------------------------------|
| 2026-03-02 | 2026-03-18            | not due      | not due: added by protocol version 1.1 after the window closed |
| 2026-06-14 | 2026-06-30            | not due      | not due: added by protocol version 1.1 after the window closed |
| 2026-06-15 | 2026-07-01            | overdue      | not started                                                    |
| 2026-06-25 | 2026-07-11            | overdue      | not started                                                    |

The status filter "not started" on ``day14`` finds the last two only; the page says the first two's cells in
English and in Persian.
"""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient

from tests.spec.lock.test_visits_added_by_an_amendment import RANDOMIZED, WALKS, _account, _randomized_on
from tests.spec.web.conftest import sign_in
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol
from trialwright.services import clock
from trialwright.services.forms import participant_schedule
from trialwright.services.randomization import generate_list
from trialwright.services.trial import init_trial
from trialwright.services.worklist import status_matrix
from trialwright.settings import Settings
from trialwright.store.engine import make_engine
from trialwright.web.app import create_app

NOT_DUE_WORDS = "not due: added by protocol version 1.1 after the window closed"


def test_the_matrix_says_not_due_where_the_schedule_does(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with clock.simulated_time(dt.datetime(2026, 2, 1, tzinfo=dt.UTC)):
            init_trial(engine, load_protocol(WALKS / "walk2.v1.yaml"))
            coordinator, manager = _account(engine, Role.STUDY_COORDINATOR), _account(engine, Role.DATA_MANAGER)
            _account(engine, Role.DATA_MANAGER, "fa")
            generate_list(engine, _account(engine, Role.UNBLINDED_STATISTICIAN), seed=7)
        made = {name: _randomized_on(engine, coordinator, day) for name, day in RANDOMIZED.items()}
        with clock.simulated_time(dt.datetime(2026, 7, 1, 6, 0, tzinfo=dt.UTC)):
            assert init_trial(engine, load_protocol(WALKS / "walk2.yaml")).status == "upgraded"
        with clock.simulated_time(dt.datetime(2026, 8, 10, 9, 0, tzinfo=dt.UTC)):
            schedule = {name: next(v.status.value for v in participant_schedule(engine, coordinator, pid).visits
                                   if v.visit_id == "day14") for name, pid in made.items()}  # fmt: skip
            matrix = status_matrix(engine, manager, visit="day14", limit=100)
            not_started = status_matrix(engine, manager, visit="day14", status="not_started", limit=100)
        with TestClient(create_app(Settings(database_url=database_url)), follow_redirects=False) as client:
            page = sign_in(client, manager.username).get("/data/matrix?visit=day14").text
        with TestClient(create_app(Settings(database_url=database_url)), follow_redirects=False) as client:
            persian = sign_in(client, "data-manager-fa").get("/data/matrix?visit=day14").text
    finally:
        engine.dispose()
    assert schedule == {"long_before": "not_due", "day_before": "not_due", "on_the_day": "overdue", "after": "overdue"}
    states = {r.participant_id: {c.state.value for c in r.cells} for r in matrix.page.items}
    assert states == {
        made["long_before"]: {"not_due"}, made["day_before"]: {"not_due"},
        made["on_the_day"]: {"not_started"}, made["after"]: {"not_started"},
    }  # fmt: skip
    assert {c.added_by.version for c in matrix.columns if c.added_by is not None} == {"1.1"}
    assert {r.participant_id for r in not_started.page.items} == {made["on_the_day"], made["after"]}
    # The page: the two rows not due say so with the version, the two owed "not started".
    rows = {pid: page.split(f'data-participant="{pid}"')[1].split("</tr>")[0] for pid in made.values()}
    for name in ("long_before", "day_before"):
        assert NOT_DUE_WORDS in rows[made[name]] and 'data-state="not_due"' in rows[made[name]]
        assert "not started" not in rows[made[name]]
    for name in ("on_the_day", "after"):
        assert "not started" in rows[made[name]] and "not due" not in rows[made[name]]
    assert persian.count("سررسید نیست: نسخهٔ") == 2 * len(matrix.columns)
    assert "not_due" not in page.split('id="m-status"')[1].split("</select>")[0]  # not a state to filter by
