"""The day of death is said one way everywhere: a scheduled visit not held whose day is the day of death is "not done:
died", not overdue (SQLite and PostgreSQL).

The trial: ``tests/data/simulation/WALK2.yaml`` simulated with every hospital stay lasting 7 days (as in
``test_no_values_after_death.py``), so each death falls on the day of the ``day7`` visit (7 days after randomization,
window 6 to 8 days). The simulator holds no visit on the day of death but the death record's (``day30``, held that
day), so ``day7`` is not held. The trial is read 60 days after its last visit:

| a participant who dies on day 7           | before the fix           | now                                      |
|-------------------------------------------|--------------------------|------------------------------------------|
| their schedule's ``day7``                 | overdue                  | not done: died                           |
| the lock readiness                        | a blocker: visit day7    | no blocker for day7                      |
| the work list of overdue visits           | lists day7               | does not list it                         |
| the status matrix's ``day7`` cell         | not started              | died                                     |
| the analysis at ``day7`` (CONSORT cause,  | died (on or before the   | died: the schedule and the analysis      |
| why a value is missing)                   | visit's day)             | agree                                    |

A participant who lives holds ``day7`` (done) and the analysis does not call them dead there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from trialwright.analysis.estimands.common import cause_of, died_by, not_due_of, planned_day, why_missing
from trialwright.domain.visits import VisitStatus
from trialwright.protocol import load_protocol
from trialwright.services import clock
from trialwright.services.analysis import analysis_data
from trialwright.services.forms import participant_schedule
from trialwright.services.readiness import BlockerKind, lock_readiness
from trialwright.services.simulation import simulate
from trialwright.services.trial import init_trial
from trialwright.services.users import UserView, get_user
from trialwright.services.worklist import CellState, WorkKind, status_matrix, work_page
from trialwright.store.data_tables import visit_records
from trialwright.store.engine import make_engine, session_scope

PROTOCOL = Path(__file__).parents[2] / "data" / "simulation" / "WALK2.yaml"


def _user(engine: Any, name: str) -> UserView:
    found = get_user(engine, name)
    assert found is not None
    return found


def _day(value: Any) -> dt.date:
    """A stored visit date as a date (a string on SQLite, a date on PostgreSQL)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


@pytest.fixture(scope="module")
def read(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The trial simulated (30 screened, seed 5) and read once per database by every place that says a visit's state."""
    folder = tmp_path_factory.mktemp("seven-day-stays")
    protocol = folder / "WALK2.yaml"
    protocol.write_text(PROTOCOL.read_text(encoding="utf-8"), encoding="utf-8")
    plan = PROTOCOL.with_name("WALK2.simulation.yaml").read_text(encoding="utf-8")
    seven_days = plan.replace("length_of_stay: {uniform: [3, 28], round: 0}", "length_of_stay: {uniform: [7, 7]}")
    assert seven_days != plan
    (folder / "WALK2.simulation.yaml").write_text(seven_days, encoding="utf-8")
    engine = make_engine(module_database_url)
    try:
        init_trial(engine, load_protocol(protocol))
        summary = simulate(engine, protocol, 30, seed=5)
        with session_scope(engine) as session:
            visits = list(session.execute(select(visit_records.c.participant_id, visit_records.c.visit_id,
                                                 visit_records.c.visit_date)).all())  # fmt: skip
        investigator, manager = _user(engine, "sim-investigator"), _user(engine, "sim-data-manager")
        after = max(_day(v.visit_date) for v in visits if v.visit_date is not None) + dt.timedelta(days=60)
        with clock.simulated_time(dt.datetime.combine(after, dt.time(12), dt.UTC)):
            pids = sorted({v.participant_id for v in visits})
            day7 = {pid: next(v for v in participant_schedule(engine, investigator, pid).visits if v.visit_id == "day7")
                    for pid in pids}  # fmt: skip
            report = lock_readiness(engine, manager)
            overdue = work_page(engine, investigator, WorkKind.VISITS_OVERDUE, limit=500)
            matrix = status_matrix(engine, investigator, visit="day7", limit=500)
        data = analysis_data(engine, _user(engine, "sim-unblinded-statistician"), unblinded=False)
        yield {"summary": summary, "visits": visits, "day7": day7, "report": report, "overdue": overdue,
               "matrix": matrix, "subjects": {s.participant_id: s for s in data.subjects},
               "protocol": load_protocol(protocol).protocol}  # fmt: skip
    finally:
        engine.dispose()


def _died(read: dict[str, Any]) -> set[str]:
    """The participants who died on the day of their day-7 visit, by the analysis' reading of the records."""
    died = {pid for pid, s in read["subjects"].items() if s.death_day is not None}
    assert read["summary"].deaths == len(died) > 0
    assert {read["subjects"][pid].death_day for pid in died} == {7}  # every death on the day of day7
    return died


def test_a_visit_on_the_day_of_death_is_not_done_died_not_overdue(read: dict[str, Any]) -> None:
    died = _died(read)
    assert not any(v.visit_id == "day7" and v.participant_id in died for v in read["visits"])  # not held
    states = {pid: v.status for pid, v in read["day7"].items()}
    # Before the fix: each death's day7 overdue.
    assert {pid for pid, s in states.items() if s is VisitStatus.DIED} == died
    assert {s for pid, s in states.items() if pid not in died} <= {VisitStatus.DONE, VisitStatus.OUT_OF_WINDOW}
    # The lock readiness: no blocker for a death's day7 (before: one for each).
    blocking = {b.participant_id for b in read["report"].blockers if b.kind is BlockerKind.VISIT and b.visit == "day7"}
    assert blocking & died == set()
    # The work list of overdue visits and the status matrix say the same.
    assert {i.participant_id for i in read["overdue"].items if i.visit_id == "day7"} & died == set()
    cells = {r.participant_id: {c.state for c in r.cells} for r in read["matrix"].page.items}
    assert {pid for pid, s in cells.items() if s == {CellState.DIED}} == died


def test_the_analysis_and_the_schedule_agree_on_the_day_of_death(read: dict[str, Any]) -> None:
    died = _died(read)
    day = planned_day(read["protocol"], "day7")
    for pid, s in read["subjects"].items():
        at_day7 = day(s)
        assert at_day7 == 7
        # The analysis calls the participant dead at day7 exactly where the schedule says "not done: died".
        assert died_by(s, at_day7) is (read["day7"][pid].status is VisitStatus.DIED) is (pid in died)
        if pid in died:
            assert cause_of(s, at_day7, not_due_of(read["protocol"], "day7")(s)) == "died"
            assert why_missing(s, "day7", "function.barthel", False, at_day7) == (
                "no function.barthel at day7 (died on day 7 after randomization)"
            )
