"""A dead participant has no further visits due (issue 24 item 1), on both databases.

The visits due and overdue are read in SQL; a participant's recorded death is read in SQL too
(``services.deaths.death_days``) by the rules ``death_of`` applies in Python to one participant's records. The
expectation is each participant's schedule (``participant_schedule``: the visit rules and ``death_of`` in Python),
which says "died" for a visit not held whose day is on or after the day of death: such a visit is neither due
nor overdue, nor does it hold up the database lock, and the status matrix says "died" for its forms (not "not
started").

Two trials of the first protocol:

- as written (visits counted from the infusion, a date): participants alive, dead by the death record (the
  hospital course ended in death), dead by a fatal adverse event, an adverse event first reported fatal and then
  corrected (its current report is not fatal: alive), a hospital course ended alive, and a death record whose
  status is "unknown" rather than a value (alive: only a value says a death);
- with the follow-up visits counted from randomization (an instant, its day on the site's clock) and a
  vital-status field: a participant randomized half an hour after Tehran's midnight (the day before in UTC) who
  died two days later by the vital-status field; had the day been read in UTC, the day-3 visit would still be due.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import insert, update

from tests.spec.forms.conftest import ENROLLED_AT, NOW, TEHRAN, TODAY
from tests.spec.randomization.test_randomize_service import enrolled
from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.domain.visits import VisitStatus
from trialwright.protocol.loader import load_protocol_text
from trialwright.services.forms import participant_schedule
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.readiness import BlockerKind, lock_readiness
from trialwright.services.worklist import CELL_STATES, CellState, WorkKind, status_matrix, work_page
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.engine import session_scope
from trialwright.store.randomization_tables import allocation_entries
from trialwright.store.safety_tables import adverse_events, ae_reports
from trialwright.store.screening_tables import participants

INFUSED = TODAY - dt.timedelta(days=9)  # day 1, day 3 and day 7 are all overdue by now


def _visit(session: Any, pid: str, visit_id: str, day: dt.date | None) -> int:
    return int(session.execute(insert(visit_records).values(
        participant_id=pid, visit_id=visit_id, visit_date=day, unscheduled=False, created_at=NOW, created_by="setup",
    ).returning(visit_records.c.id)).scalar_one())  # fmt: skip


def _course(session: Any, pid: str, visit_row: int, status: dict[str, Any], ended_on: dt.date) -> None:
    values = {"status": status, "ended_on": {"value": ended_on.isoformat(), "status": "value"}}
    session.execute(insert(form_records).values(
        participant_id=pid, visit_record_id=visit_row, form_id="hospital_course", state="complete",
        form_values=json.dumps(values), version=1, protocol_version="1", updated_at=NOW, updated_by="setup",
    ))  # fmt: skip


def _event(session: Any, pid: str, number: str, outcomes: list[str], died_on: dt.date) -> None:
    event = int(session.execute(insert(adverse_events).values(
        ae_number=number, number=int(number.removeprefix("AE-")), participant_id=pid, site="RAZ", created_at=NOW,
        created_by="setup",
    ).returning(adverse_events.c.id)).scalar_one())  # fmt: skip
    for sequence, outcome in enumerate(outcomes):
        assessment = {"onset": INFUSED.isoformat(), "outcome": outcome, "term": "Respiratory failure",
                      "death_date": died_on.isoformat() if outcome == "fatal" else None}  # fmt: skip
        session.execute(insert(ae_reports).values(
            event_id=event, sequence=sequence, assessment=json.dumps(assessment), aware_at=NOW, serious=True,
            related=False, expected=False, susar=False, reported_at=NOW, reported_by="setup", protocol_version="1",
            grade=5, causality="unrelated", expected_event=None, criteria=" death ",
        ))  # fmt: skip


def _site_lists(trial: Trial) -> dict[WorkKind, set[tuple[str, str]]]:
    out = {}
    for kind in (WorkKind.VISITS_OVERDUE, WorkKind.VISITS_DUE):
        page = work_page(trial.engine, who(trial, Role.INVESTIGATOR), kind, limit=100)
        assert page.next_cursor is None
        out[kind] = {(i.participant_id, i.visit_id) for i in page.items}
    return out


def _scheduled(trial: Trial, pids: list[str]) -> dict[VisitStatus, set[tuple[str, str]]]:
    out: dict[VisitStatus, set[tuple[str, str]]] = {}
    for p in pids:
        for v in participant_schedule(trial.engine, who(trial, Role.INVESTIGATOR), p).visits:
            out.setdefault(v.status, set()).add((p, v.visit_id))
    return out


@pytest.fixture(scope="module")
def infused(module_database_url: str) -> Iterator[tuple[Trial, dict[str, str]]]:
    t = make_trial(module_database_url)
    names = ("alive", "death_record", "fatal_event", "corrected_event", "discharged", "status_unknown")
    made = {name: enrolled(t) for name in names}
    with session_scope(t.engine) as session:
        session.execute(update(participants).values(enrolled_at=ENROLLED_AT))
        for pid in made.values():
            _visit(session, pid, "infusion", INFUSED)
        died = {"value": "died", "status": "value"}
        ended = _visit(session, made["death_record"], "discharge", INFUSED + dt.timedelta(days=1))
        _course(session, made["death_record"], ended, died, INFUSED + dt.timedelta(days=1))
        _event(session, made["fatal_event"], "AE-0001", ["fatal"], INFUSED + dt.timedelta(days=5))
        _event(session, made["corrected_event"], "AE-0002", ["fatal", "recovered"], INFUSED + dt.timedelta(days=2))
        discharged = _visit(session, made["discharged"], "discharge", INFUSED + dt.timedelta(days=2))
        _course(session, made["discharged"], discharged, {"value": "discharged", "status": "value"},
                INFUSED + dt.timedelta(days=2))  # fmt: skip
        unknown = _visit(session, made["status_unknown"], "discharge", INFUSED + dt.timedelta(days=2))
        _course(session, made["status_unknown"], unknown, {"value": "died", "status": "unknown"},
                INFUSED + dt.timedelta(days=2))  # fmt: skip
    yield t, made
    t.engine.dispose()


def test_visits_after_a_death_are_neither_due_nor_overdue(infused: tuple[Trial, dict[str, str]]) -> None:
    trial, made = infused
    lists = _site_lists(trial)
    schedules = _scheduled(trial, list(made.values()))
    assert lists[WorkKind.VISITS_OVERDUE] == schedules[VisitStatus.OVERDUE]
    assert lists[WorkKind.VISITS_DUE] == schedules.get(VisitStatus.DUE, set())
    # Read one by one: died the day after the infusion (death record), the day of day 1: baseline still due, day 1
    # (the day of death, not held), day 3 and 7 not; died on day 5 (fatal adverse event): baseline, day 1 and day 3
    # overdue, day 7 not.
    overdue = lists[WorkKind.VISITS_OVERDUE]
    assert {v for p, v in overdue if p == made["death_record"]} == {"baseline"}
    assert {v for p, v in overdue if p == made["fatal_event"]} == {"baseline", "day1", "day3"}
    assert schedules[VisitStatus.DIED] == {
        (made["death_record"], "day1"), (made["death_record"], "day3"), (made["death_record"], "day7"),
        (made["fatal_event"], "day7"),
    }  # fmt: skip


@pytest.mark.parametrize("name", ["alive", "corrected_event", "discharged", "status_unknown"])
def test_no_death_recorded_leaves_every_visit_overdue(infused: tuple[Trial, dict[str, str]], name: str) -> None:
    trial, made = infused
    overdue = _site_lists(trial)[WorkKind.VISITS_OVERDUE]
    assert {v for p, v in overdue if p == made[name]} == {"baseline", "day1", "day3", "day7"}


def test_the_lock_is_not_held_up_by_visits_after_a_death(infused: tuple[Trial, dict[str, str]]) -> None:
    trial, made = infused
    report = lock_readiness(trial.engine, who(trial, Role.DATA_MANAGER))
    blocking = {(b.participant_id, b.where) for b in report.blockers if b.kind is BlockerKind.VISIT}
    schedules = _scheduled(trial, list(made.values()))
    expected = {(p, f"visit {v}") for p, v in schedules[VisitStatus.OVERDUE] | schedules.get(VisitStatus.DUE, set())}
    assert blocking == expected
    assert (made["death_record"], "visit day3") not in blocking and (made["alive"], "visit day3") in blocking


def _matrix(trial: Trial, **filters: str) -> dict[str, Any]:
    found = status_matrix(trial.engine, who(trial, Role.INVESTIGATOR), limit=100, **filters)
    return {r.participant_id: r for r in found.page.items}


def test_the_matrix_says_died_for_a_visits_forms_after_the_death(infused: tuple[Trial, dict[str, str]]) -> None:
    trial, made = infused
    found = status_matrix(trial.engine, who(trial, Role.INVESTIGATOR), limit=100)
    rows = {r.participant_id: r for r in found.page.items}
    schedules = _scheduled(trial, list(made.values()))
    died = schedules[VisitStatus.DIED]
    for pid in made.values():
        for column, cell in zip(found.columns, rows[pid].cells, strict=True):
            if (pid, column.visit_id) in died:
                assert cell.state is CellState.DIED, (pid, column)
            else:
                assert cell.state is not CellState.DIED, (pid, column)
    assert {c.state for c, col in zip(rows[made["death_record"]].cells, found.columns, strict=True)
            if col.visit_id in ("day3", "day7")} == {CellState.DIED}  # fmt: skip
    # the "not started" filter: a participant whose only forms not started are after the death is not listed
    day7 = _matrix(trial, visit="day7", status="not_started")
    assert made["fatal_event"] not in day7 and made["death_record"] not in day7 and made["alive"] in day7
    assert "died" not in CELL_STATES  # not a filter: "not started" leaves them out


# --- visits counted from randomization; a vital-status field --------------------------------------------------

VITAL_STATUS = """  vital_status:
    - {field: hospital_course.status, died_values: [died], date_field: hospital_course.ended_on}
"""


def _randomized_protocol() -> Any:
    text = FIRST_PROTOCOL.read_text(encoding="utf-8")
    for visit in ("day1", "day3", "day7"):
        head = f"  - id: {visit}\n"
        start = text.index(head)
        at = text.index("    reference: infusion\n", start)
        text = text[:at] + "    reference: randomization\n" + text[at + len("    reference: infusion\n") :]
    anchor = "    cause_field: death_cause\n"
    text = text.replace(anchor, anchor + VITAL_STATUS, 1)
    return load_protocol_text(text, "randomized-follow-up.yaml")


@pytest.fixture
def randomized(database_url: str) -> Iterator[tuple[Trial, dict[str, str], dt.date]]:
    t = make_trial(database_url, _randomized_protocol())
    generate_list(t.engine, who(t, Role.UNBLINDED_STATISTICIAN), seed=7)
    day = TODAY - dt.timedelta(days=6)  # day 3's window (days 2 to 4) closed; day 7's (6 to 8) open today
    at = dt.datetime.combine(day, dt.time(0, 30), TEHRAN).astimezone(dt.UTC)  # the day before, in UTC
    assert at.date() == day - dt.timedelta(days=1)
    made = {name: enrolled(t) for name in ("alive", "vital_status")}
    with session_scope(t.engine) as session:
        session.execute(update(participants).values(enrolled_at=ENROLLED_AT))
    for pid in made.values():
        randomize(t.engine, who(t, Role.INVESTIGATOR), pid)
    with session_scope(t.engine) as session:
        session.execute(update(allocation_entries).values(randomized_at=at))
        pid = made["vital_status"]
        row = _visit(session, pid, "day1", day + dt.timedelta(days=1))
        _course(session, pid, row, {"value": "died", "status": "value"}, day + dt.timedelta(days=2))
    yield t, made, day
    t.engine.dispose()


def test_a_death_counts_against_the_randomization_day_on_the_sites_clock(
    randomized: tuple[Trial, dict[str, str], dt.date],
) -> None:
    trial, made, _ = randomized
    lists = _site_lists(trial)
    schedules = _scheduled(trial, list(made.values()))
    assert lists[WorkKind.VISITS_OVERDUE] == schedules[VisitStatus.OVERDUE]
    assert lists[WorkKind.VISITS_DUE] == schedules[VisitStatus.DUE]
    alive, dead = made["alive"], made["vital_status"]
    assert {(p, v) for p, v in lists[WorkKind.VISITS_OVERDUE] if v != "baseline"} == {(alive, "day1"), (alive, "day3")}
    assert lists[WorkKind.VISITS_DUE] == {(alive, "day7")}
    assert schedules[VisitStatus.DIED] == {(dead, "day3"), (dead, "day7")}
    matrix = status_matrix(trial.engine, who(trial, Role.INVESTIGATOR), visit="day3")
    (row,) = [r for r in matrix.page.items if r.participant_id == dead]
    assert {c.state for c in row.cells} == {CellState.DIED}
