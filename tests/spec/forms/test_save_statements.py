"""A form save is a handful of statements: its audit entries in one INSERT, nothing re-read that it just wrote.

Counted with SQLAlchemy's ``before_cursor_execute`` event on the engine, on SQLite and PostgreSQL. (Speed itself is
measured by bench/form_saves.py, never here.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, event

from tests.spec.forms.conftest import enrolled_ten_days_ago
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services import forms as svc


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


class Statements:
    def __init__(self, engine: Engine) -> None:
        self.seen: list[str] = []
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        self.seen.append(" ".join(statement.split()))

    def inserts_into(self, table: str) -> int:
        return sum(1 for s in self.seen if s.startswith(f"INSERT INTO {table} "))


def test_a_save_of_several_values_writes_its_audit_entries_in_one_insert(trial: Trial) -> None:
    pid = enrolled_ten_days_ago(trial)
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    svc.save_form(trial.engine, coordinator, pid, "baseline", "vitals", {"spo2": 90})  # the visit is held
    before = audit.count(trial.engine)
    counted = Statements(trial.engine)
    view = svc.save_form(trial.engine, coordinator, pid, "baseline", "blood_gas", {"pao2": 80, "fio2": 0.5})
    event.remove(trial.engine, "before_cursor_execute", counted._seen)
    assert view.values["pao2"].value == 80
    assert audit.count(trial.engine) - before >= 3
    audit_table = "audit_pending" if trial.engine.dialect.name == "postgresql" else "audit_entries"
    # Two values entered and a derived P/F ratio: three entries, one statement.
    assert counted.inserts_into(audit_table) == 1, counted.seen
    assert counted.inserts_into("form_records") == 1
    # The visit and the form are not read back after they are written (the view is read once, at the end).
    form_reads = [s for s in counted.seen if s.startswith("SELECT form_records.id")]
    assert len(form_reads) <= 2, form_reads
    assert not [s for s in counted.seen if s.startswith("SELECT count(*)") and " WHERE " not in s]
