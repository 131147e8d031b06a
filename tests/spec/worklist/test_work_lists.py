"""Each role's work list and the status matrix (issue 24 item 1), on both databases.

One trial of the first protocol (double-blind), set up once: participants at RAZ and GOL whose infusion (the event
the follow-up visits count from) was held 0 to 9 days ago, one never infused, one withdrawn from follow-up, one
whose day-3 visit was recorded as missed; forms in each state; queries open and answered, raised by the monitor,
the data manager and the system. The lists are read in SQL; every expectation below is computed independently,
from each participant's schedule (``participant_schedule``, the visit rules in Python) and the stored forms and
queries, for the user's sites only.

- visits overdue / due today (investigator, study coordinator, outcome assessor): the schedule's overdue / due
  visits, not those of a participant withdrawn from follow-up;
- forms to enter (the same roles): a held visit's forms not started;
- forms to complete / verify / sign / lock (site staff / monitor / investigator / data manager): draft / complete /
  complete or verified / signed (the monitor's: complete, or signed and not yet verified);
- queries to answer (site staff): open; to close (monitor, data manager): answered, raised by the reader or the
  system; queries I raised (monitor): the reader's own, open or answered (not closed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from tests.spec.forms.conftest import ENROLLED_AT, NOW, TODAY, randomized_days_ago
from tests.spec.randomization.test_randomize_service import enrolled
from tests.trialfixtures import Trial, first_protocol, make_trial, username, who
from trialwright.domain.forms import FormState
from trialwright.domain.roles import SYSTEM_ACTOR, Role
from trialwright.domain.visits import VisitStatus
from trialwright.services.forms import participant_schedule
from trialwright.services.screening import NotFound
from trialwright.services.worklist import CellState, WorkKind, status_matrix, work_list, work_page
from trialwright.store.data_tables import form_records, queries, visit_records
from trialwright.store.engine import session_scope
from trialwright.store.screening_tables import participants, withdrawals

INFUSED_DAYS_AGO = {"RAZ": (0, 1, 2, 3, 4, 6, 8, 9), "GOL": (3, 8)}
SITE_ROLES = (Role.INVESTIGATOR, Role.STUDY_COORDINATOR, Role.OUTCOME_ASSESSOR)


def _visit(session: Any, pid: str, visit_id: str, day: dt.date | None, missed: str | None = None) -> int:
    return int(session.execute(insert(visit_records).values(
        participant_id=pid, visit_id=visit_id, visit_date=day, missed_reason=missed, unscheduled=False,
        created_at=NOW, created_by="setup",
    ).returning(visit_records.c.id)).scalar_one())  # fmt: skip


def _form(session: Any, pid: str, visit_row: int, form_id: str, state: str) -> int:
    return int(session.execute(insert(form_records).values(
        participant_id=pid, visit_record_id=visit_row, form_id=form_id, state=state, form_values="{}", version=1,
        protocol_version="1", updated_at=NOW, updated_by="setup",
    ).returning(form_records.c.id)).scalar_one())  # fmt: skip


def _query(session: Any, pid: str, site: str, form_row: int | None, status: str, raised_by: str) -> None:
    session.execute(insert(queries).values(
        participant_id=pid, site=site, form_record_id=form_row, origin="manual", text=f"check {pid}", status=status,
        raised_at=NOW, raised_by=raised_by,
    ))  # fmt: skip


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    made: dict[str, list[str]] = {}
    for site, days in INFUSED_DAYS_AGO.items():
        made[site] = [enrolled(t, site) for _ in (*days, "never", "withdrawn", "missed")]
    randomized_days_ago(t, made["RAZ"][0], 1)  # an allocation exists: nothing below may show its arm
    with session_scope(t.engine) as session:
        session.execute(update(participants).values(enrolled_at=ENROLLED_AT))
        for site, days in INFUSED_DAYS_AGO.items():
            pids = made[site]
            for pid, k in zip(pids, days, strict=False):
                _visit(session, pid, "infusion", TODAY - dt.timedelta(days=k))
            withdrawn, missed = pids[len(days) + 1], pids[len(days) + 2]
            _visit(session, withdrawn, "infusion", TODAY - dt.timedelta(days=3))
            session.execute(insert(withdrawals).values(
                participant_id=withdrawn, scope="follow_up", reason="moved away", cause="participant_decision",
                withdrawn_on=TODAY, recorded_at=NOW, recorded_by="setup",
            ))  # fmt: skip
            _visit(session, missed, "infusion", TODAY - dt.timedelta(days=5))
            _visit(session, missed, "day3", None, missed="transferred")
            # Forms at the participant infused 9 (RAZ) or 8 (GOL) days ago: baseline held, its forms in each state.
            held = _visit(session, pids[len(days) - 1], "baseline", TODAY - dt.timedelta(days=10))
            rows = {state: _form(session, pids[len(days) - 1], held, form_id, state) for state, form_id in
                    zip(("draft", "complete", "verified", "signed", "locked"),
                        ("demographics", "vitals", "blood_gas", "labs", "performance"), strict=True)}  # fmt: skip
            pid = pids[len(days) - 1]
            _query(session, pid, site, rows["complete"], "open", username(Role.MONITOR))
            _query(session, pid, site, rows["verified"], "answered", username(Role.MONITOR))
            _query(session, pid, site, rows["signed"], "answered", SYSTEM_ACTOR)
            _query(session, pid, site, None, "answered", username(Role.DATA_MANAGER))
            _query(session, pid, site, None, "closed", username(Role.MONITOR))
    yield t
    t.engine.dispose()


def _visible(trial: Trial, role: Role) -> list[str]:
    with session_scope(trial.engine) as session:
        query = select(participants.c.participant_id)
        if role.site_scoped:
            query = query.where(participants.c.site == "RAZ")  # the test accounts' site
        return list(session.execute(query).scalars())


def _following(trial: Trial) -> set[str]:
    with session_scope(trial.engine) as session:
        gone = set(session.execute(select(withdrawals.c.participant_id)).scalars())
    return {p for p in _visible(trial, Role.DATA_MANAGER) if p not in gone}


def _all(trial: Trial, role: Role, kind: WorkKind, limit: int = 2) -> tuple[list[Any], int]:
    """Every item of a list, read a page at a time (``limit`` small, so that paging is exercised), and its total."""
    items, cursor, totals = [], None, set()
    while True:
        page = work_page(trial.engine, who(trial, role), kind, limit=limit, cursor=cursor)
        items.extend(page.items)
        totals.add(page.total)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(totals) == 1
    return items, totals.pop()


def _schedules(trial: Trial, role: Role) -> dict[str, Any]:
    return {p: participant_schedule(trial.engine, who(trial, role), p) for p in _visible(trial, role)}


@pytest.mark.parametrize("role", SITE_ROLES)
@pytest.mark.parametrize(("kind", "status"), [(WorkKind.VISITS_OVERDUE, VisitStatus.OVERDUE),
                                              (WorkKind.VISITS_DUE, VisitStatus.DUE)])  # fmt: skip
def test_visits_due_and_overdue_are_the_schedules_at_the_users_sites(
    trial: Trial, role: Role, kind: WorkKind, status: VisitStatus
) -> None:
    following = _following(trial)
    expected = {
        (p, v.visit_id)
        for p, s in _schedules(trial, role).items()
        if p in following
        for v in s.visits
        if v.status is status
    }
    items, total = _all(trial, role, kind)
    got = [(i.participant_id, i.visit_id) for i in items]
    assert len(got) == len(set(got)) == total  # each once, the count the pages' rows
    assert set(got) == expected and expected  # RAZ's only, not the withdrawn participant's, not the missed visit
    assert {i.site for i in items} == {"RAZ"}
    windows = {(p, v.visit_id): (v.earliest, v.latest) for p, s in _schedules(trial, role).items() for v in s.visits}
    assert all((i.earliest, i.latest) == windows[(i.participant_id, i.visit_id)] for i in items)
    assert all(i.url == f"/participants/{i.participant_id}#visits" for i in items)


def test_forms_to_enter_are_a_held_visits_forms_not_started(trial: Trial) -> None:
    following = _following(trial)
    expected = {
        (p, v.visit_id, f)
        for p, s in _schedules(trial, Role.INVESTIGATOR).items()
        if p in following
        for v in s.visits
        if v.status in (VisitStatus.DONE, VisitStatus.OUT_OF_WINDOW)
        for f, state in s.forms[v.visit_id].items()
        if state is None
    }
    items, total = _all(trial, Role.INVESTIGATOR, WorkKind.FORMS_TO_ENTER, limit=7)
    got = {(i.participant_id, i.visit_id, i.form_id) for i in items}
    assert got == expected and total == len(expected) == len(items)
    assert all(i.url == f"/participants/{i.participant_id}/visits/{i.visit_id}/forms/{i.form_id}" for i in items)


@pytest.mark.parametrize(
    ("role", "kind", "states"),
    [
        (Role.STUDY_COORDINATOR, WorkKind.FORMS_TO_COMPLETE, {FormState.DRAFT}),
        # the signed form here was never verified: the monitor verifies it after the signature
        (Role.MONITOR, WorkKind.FORMS_TO_VERIFY, {FormState.COMPLETE, FormState.SIGNED}),
        (Role.INVESTIGATOR, WorkKind.FORMS_TO_SIGN, {FormState.COMPLETE, FormState.VERIFIED}),
        (Role.DATA_MANAGER, WorkKind.FORMS_TO_LOCK, {FormState.SIGNED}),
    ],
)
def test_forms_to_complete_verify_sign_and_lock(
    trial: Trial, role: Role, kind: WorkKind, states: set[FormState]
) -> None:
    reader = Role.DATA_MANAGER if role is Role.DATA_MANAGER else Role.INVESTIGATOR
    expected = {
        (p, visit_id, f)
        for p, s in _schedules(trial, reader).items()
        for visit_id, forms in s.forms.items()
        for f, state in forms.items()
        if state in states
    }
    items, total = _all(trial, role, kind)
    assert {(i.participant_id, i.visit_id, i.form_id) for i in items} == expected and total == len(expected) > 0
    assert role is Role.DATA_MANAGER or {i.site for i in items} == {"RAZ"}
    assert role is not Role.DATA_MANAGER or {i.site for i in items} == {"RAZ", "GOL"}


@pytest.mark.parametrize(
    ("role", "kind", "expected"),
    [  # (site, status, raised by) of the queries the list holds
        (Role.INVESTIGATOR, WorkKind.QUERIES_TO_ANSWER, {("RAZ", "open", "monitor")}),
        (Role.OUTCOME_ASSESSOR, WorkKind.QUERIES_TO_ANSWER, {("RAZ", "open", "monitor")}),
        (Role.MONITOR, WorkKind.QUERIES_TO_CLOSE, {("RAZ", "answered", "monitor"), ("RAZ", "answered", "system")}),
        # the monitor's own queries not yet closed, at their sites: awaiting the site, or an answer to read
        (Role.MONITOR, WorkKind.QUERIES_RAISED, {("RAZ", "open", "monitor"), ("RAZ", "answered", "monitor")}),
        (Role.DATA_MANAGER, WorkKind.QUERIES_TO_CLOSE, {(s, "answered", w) for s in ("RAZ", "GOL")
                                                        for w in ("data_manager", "system")}),
    ],
)  # fmt: skip
def test_my_queries(trial: Trial, role: Role, kind: WorkKind, expected: set[tuple[str, str, str]]) -> None:
    items, total = _all(trial, role, kind)
    with session_scope(trial.engine) as session:
        raisers = dict(session.execute(select(queries.c.id, queries.c.raised_by)).all())
    names = {username(Role.MONITOR): "monitor", username(Role.DATA_MANAGER): "data_manager", SYSTEM_ACTOR: "system"}
    got = [(i.site, i.state, names[raisers[i.query_id]]) for i in items]
    assert set(got) == expected and total == len(got) == len(expected)


def test_each_role_has_its_lists_and_no_other(trial: Trial) -> None:
    shown = {role: [s.kind for s in work_list(trial.engine, who(trial, role)).sections] for role in Role}
    assert (
        WorkKind.FORMS_TO_SIGN in shown[Role.INVESTIGATOR]
        and WorkKind.FORMS_TO_SIGN not in shown[Role.STUDY_COORDINATOR]
    )
    assert shown[Role.MONITOR] == [WorkKind.FORMS_TO_VERIFY, WorkKind.QUERIES_TO_CLOSE, WorkKind.QUERIES_RAISED]
    assert shown[Role.DATA_MANAGER] == [WorkKind.FORMS_TO_LOCK, WorkKind.QUERIES_TO_CLOSE]
    for role in (Role.ADMINISTRATOR, Role.UNBLINDED_PHARMACIST, Role.UNBLINDED_STATISTICIAN, Role.BLINDED_STATISTICIAN,
                 Role.DSMB_MEMBER):  # fmt: skip
        assert shown[role] == []
    with pytest.raises(NotFound):
        work_page(trial.engine, who(trial, Role.MONITOR), WorkKind.VISITS_DUE)
    home = work_list(trial.engine, who(trial, Role.INVESTIGATOR), limit=3)
    overdue = home.section(WorkKind.VISITS_OVERDUE)
    assert len(overdue.page.items) == 3 < overdue.total == _all(trial, Role.INVESTIGATOR, WorkKind.VISITS_OVERDUE)[1]
    pharmacist = work_list(trial.engine, who(trial, Role.UNBLINDED_PHARMACIST))
    assert pharmacist.to_prepare == 1  # the randomized participant's dose
    assert work_list(trial.engine, who(trial, Role.ADMINISTRATOR)).approvals == ()


def test_never_an_arm(trial: Trial) -> None:
    arms = [(a.code, a.name) for a in first_protocol().protocol.arms]
    for role in (*SITE_ROLES, Role.MONITOR, Role.DATA_MANAGER, Role.ADMINISTRATOR):
        seen = repr(work_list(trial.engine, who(trial, role)))
        if role is not Role.ADMINISTRATOR:
            seen += repr(status_matrix(trial.engine, who(trial, role)))
        for code, name in arms:
            assert f"'{code}'" not in seen and name not in seen


def test_the_matrix_cells_are_the_forms_states(trial: Trial) -> None:
    for role in (Role.MONITOR, Role.DATA_MANAGER):
        schedules = _schedules(trial, role)
        matrix = status_matrix(trial.engine, who(trial, role), limit=500)
        assert matrix.page.total == len(schedules) == len(matrix.page.items)
        for row in matrix.page.items:
            s = schedules[row.participant_id]
            missed = {v.visit_id for v in s.visits if v.status is VisitStatus.MISSED}
            for column, cell in zip(matrix.columns, row.cells, strict=True):
                state = s.forms[column.visit_id][column.form_id]
                want = CellState(state.value) if state else (
                    CellState.MISSED if column.visit_id in missed else CellState.NOT_STARTED)  # fmt: skip
                assert cell.state is want
        flagged = {(r.participant_id, c.visit_id, c.form_id, cell.open_queries)
                   for r in matrix.page.items for c, cell in zip(matrix.columns, r.cells, strict=True)
                   if cell.open_queries}  # fmt: skip
        # open or answered queries on forms: the complete, verified and signed forms of each site's participant
        assert {(f, n) for _, _, f, n in flagged} == {("vitals", 1), ("blood_gas", 1), ("labs", 1)}
        assert len(flagged) == (3 if role is Role.MONITOR else 6)


@pytest.mark.parametrize(
    ("filters", "matches"),
    [
        ({"status": "signed"}, lambda s: any(st is FormState.SIGNED for fs in s.forms.values() for st in fs.values())),
        ({"status": "missed"}, lambda s: any(v.status is VisitStatus.MISSED for v in s.visits)),
        ({"status": "not_started", "visit": "baseline"},
         lambda s: any(st is None for st in s.forms["baseline"].values())),
        ({"status": "complete", "visit": "day7"}, lambda s: False),
        ({"status": "queries"}, lambda s: s.open_queries > 0),
        ({"site": "GOL"}, lambda s: s.site == "GOL"),
    ],
)  # fmt: skip
def test_the_matrix_filters(trial: Trial, filters: dict[str, str], matches: Any) -> None:
    schedules = _schedules(trial, Role.DATA_MANAGER)
    expected = {p for p, s in schedules.items() if matches(s)}
    found = status_matrix(trial.engine, who(trial, Role.DATA_MANAGER), limit=3, **filters)
    rows, page = list(found.page.items), found.page
    while page.next_cursor:
        page = status_matrix(trial.engine, who(trial, Role.DATA_MANAGER), limit=3, cursor=page.next_cursor,
                             **filters).page  # fmt: skip
        rows.extend(page.items)
    assert {r.participant_id for r in rows} == expected and found.page.total == len(rows)
    if "visit" in filters:
        assert {c.visit_id for c in found.columns} == {filters["visit"]}


def test_the_matrix_search_and_site_scope(trial: Trial) -> None:
    monitor = who(trial, Role.MONITOR)
    assert {r.site for r in status_matrix(trial.engine, monitor, limit=500).page.items} == {"RAZ"}
    assert status_matrix(trial.engine, monitor, site="GOL").page.total == 0  # another site's: nothing
    one = _visible(trial, Role.MONITOR)[0]
    assert [r.participant_id for r in status_matrix(trial.engine, monitor, search=one).page.items] == [one]
    prefix = one[:4]
    assert status_matrix(trial.engine, monitor, search=prefix, limit=500).page.total == sum(
        p.startswith(prefix) for p in _visible(trial, Role.MONITOR)
    )
