"""The ODM import records the administered preparation codes a batch's records hold together (issue 22), on SQLite
and PostgreSQL: one read of who holds the batch's codes and one executemany, not a read and an insert per record.

| the file holds                                              | after the import (``administered_codes``)        |
|-------------------------------------------------------------|--------------------------------------------------|
| administration records, each with its participant's code    | one row per record, each claiming its code       |
| a later record holding an earlier participant's code        | its row too, unclaimed (the first record claims) |
| any number of such records in one batch                     | two statements on ``administered_codes`` in all  |

The rows are those ``store.administered.rebuild`` makes from the imported records (the independent reading).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, select, update

from tests.spec.exports.test_odm_queries import _export
from tests.spec.forms.test_kit_check import randomized, record_of
from tests.spec.logs.test_log_odm import target
from tests.trialfixtures import Trial, first_protocol, make_trial, who
from trialwright.domain.roles import Role
from trialwright.domain.treatment import kit_field
from trialwright.services.forms import save_form
from trialwright.services.odm_import import import_odm
from trialwright.services.randomization import generate_list
from trialwright.store.administered import rebuild
from trialwright.store.data_tables import administered_codes, form_records
from trialwright.store.engine import session_scope

__all__ = ["target"]


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    generate_list(t.engine, who(t, Role.UNBLINDED_STATISTICIAN), seed=20)
    yield t
    t.engine.dispose()


def _rows(trial: Trial) -> set[tuple[str, str, str | None]]:
    """The administered codes by participant: (participant, code, claim)."""
    with session_scope(trial.engine) as session:
        rows = session.execute(select(administered_codes)).all()
    return {(r.participant_id, r.preparation_code, r.claim) for r in rows}


def test_an_import_records_a_batchs_codes_with_two_statements(trial: Trial, target: Trial, tmp_path: Path) -> None:
    nurse = who(trial, Role.STUDY_COORDINATOR)
    given = [randomized(trial) for _ in range(5)]
    for pid, code in given:
        save_form(trial.engine, nurse, pid, "infusion", "administration", {"preparation_code": code})
    (_, first_code), (last, last_code) = given[0], given[-1]
    first_record, last_record = record_of(trial, given[0][0]), record_of(trial, last)
    with session_scope(trial.engine) as session:  # data from before the kit check: the last holds the first's code
        stored = {r.id: json.loads(r.form_values) for r in session.execute(select(form_records)).all()}
        values = {**stored[last_record], "preparation_code": stored[first_record]["preparation_code"]}
        session.execute(update(form_records).where(form_records.c.id == last_record)
                        .values(form_values=json.dumps(values)))  # fmt: skip
    path = _export(trial, tmp_path / "odm")

    statements: list[str] = []

    def counted(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "administered_codes" in statement:
            statements.append(statement)

    event.listen(target.engine, "before_cursor_execute", counted)
    try:
        import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
    finally:
        event.remove(target.engine, "before_cursor_execute", counted)
    assert len(statements) == 2  # who holds the batch's codes; their rows (5 records: 10 before, 2 per record)

    imported = _rows(target)
    assert imported == {(pid, code, code) for pid, code in given[:-1]} | {(last, first_code, None)}
    assert last_code not in {code for _, code, _ in imported}
    with target.engine.begin() as connection:  # the independent reading: the table made anew from the records
        rebuild(connection, kit_field(first_protocol().protocol))
    assert _rows(target) == imported
