"""How the bulk form import writes its records, on both databases: a batch's new visits and forms go to the
database with one INSERT per table (an executemany), not one INSERT ... RETURNING each, and a record changed again
while it waits (a later row of the same form, a derived value rewriting another form of the visit) is written once,
as it was left. What is written is what one-by-one saves write:

- every column of the visit and form records, but ids and times (who made them, the state, the version, the
  protocol version, the values), and the same values, queries and audit entries (``stored``, as in
  ``test_bulk_import.py``);
- a query (it names its form record) has the records waiting written before it (``test_bulk_import.py``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, select

from tests.spec.forms.conftest import enrolled_ten_days_ago
from tests.spec.forms.test_bulk_import import head, rows_for, save_one_by_one, stored
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.services import forms as svc
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.engine import session_scope


def records(trial: Trial, pid: str) -> dict[str, Any]:
    """A participant's visit and form records, every column but ids and times."""
    with session_scope(trial.engine) as session:
        visits = session.execute(
            select(visit_records).where(visit_records.c.participant_id == pid).order_by(visit_records.c.visit_id)
        ).all()
        forms = session.execute(
            select(form_records).where(form_records.c.participant_id == pid).order_by(form_records.c.form_id)
        ).all()
    keep = lambda row: {k: v for k, v in row._mapping.items() if k not in {"id", "visit_record_id", "participant_id",  # noqa: E731
                                                                           "created_at", "updated_at"}}  # fmt: skip
    return {"visits": [keep(v) for v in visits], "forms": [keep(f) for f in forms]}


def quiet_rows(pid: str) -> list[dict[str, Any]]:
    """``rows_for`` with the first CRP within its soft limits: no query (a query names its form record, so the
    records waiting are written before it)."""
    rows = rows_for(pid)
    rows[2] = {**rows[2], "values": {**rows[2]["values"], "crp": 45}}
    return rows


def test_a_batch_writes_its_new_visits_and_forms_with_one_insert_each(trial: Trial) -> None:
    """Three participants' five rows each (three new forms, two corrections, derived values across forms) in one
    batch: one INSERT of visits, one of forms, no UPDATE of a form; the records as one by one."""
    slow = enrolled_ten_days_ago(trial)
    fast = [enrolled_ten_days_ago(trial) for _ in range(3)]
    since = head(trial)
    save_one_by_one(trial, quiet_rows(slow))
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()[:3]))

    event.listen(trial.engine, "before_cursor_execute", seen)
    try:
        report = svc.import_forms(
            trial.engine, who(trial, Role.STUDY_COORDINATOR), [r for p in fast for r in quiet_rows(p)]
        )
    finally:
        event.remove(trial.engine, "before_cursor_execute", seen)
    assert report == svc.ImportReport(15, ())
    assert statements.count("INSERT INTO visit_records") == 1
    assert statements.count("INSERT INTO form_records") == 1
    assert statements.count("UPDATE form_records SET") == 0
    for pid in fast:
        assert stored(trial, pid, since) == stored(trial, slow, since)
        assert records(trial, pid) == records(trial, slow)
    one = records(trial, slow)  # not equal by being empty: a visit, three forms, one corrected twice over
    assert len(one["visits"]) == 1 and [f["form_id"] for f in one["forms"]] == ["blood_gas", "labs", "vitals"]
    assert [f["version"] for f in one["forms"]] == [1, 2, 2] and not stored(trial, slow, since)["queries"]
