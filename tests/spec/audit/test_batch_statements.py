"""A batch of audit entries is written with statements whose text does not depend on how many entries it holds.

A bulk import gathers the entries of hundreds of forms and writes them together. On PostgreSQL the pending
entries, the nonces the chainer keeps and the chained entries each go in one statement with the rows as one
parameter, so the statement is the same text for 3 entries or 1,500 (the driver converts and prepares it once);
an INSERT of many VALUES would be new text, thousands of parameters long, for every batch. SQLite's executemany
is one statement text already. Either way the entries read back are exactly those recorded, whatever their
characters, and the trail verifies.

Each test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from trialwright.services import audit
from trialwright.store.audit_keys import load_key
from trialwright.store.engine import make_engine, session_scope
from trialwright.store.migrate import upgrade


@pytest.fixture
def engine(database_url: str, tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(database_url, audit_key=load_key(tmp_path / "trial.key", create=True))
    upgrade(engine)
    yield engine
    engine.dispose()


def _statements_writing(engine: Engine, entries: int) -> list[str]:
    """The statements (their text) that write a batch of ``entries`` audit entries and chain them."""
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "audit_" in statement and not statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        with session_scope(engine) as session, audit.batched(session):
            for i in range(entries):
                audit.record(session, actor="importer", action="form.value_entered", form="vitals", field="pulse",
                             participant=f"P{i:05d}", new_value={"value": i, "status": "value"})  # fmt: skip
    finally:
        event.remove(engine, "before_cursor_execute", note)
    return seen


def test_a_batch_is_written_by_the_same_statements_whatever_its_size(engine: Engine) -> None:
    _statements_writing(engine, 1)  # the trail's first entry begins keying: a statement of its own, once
    few = _statements_writing(engine, 3)
    many = _statements_writing(engine, 1500)
    assert many == few  # the same statements, the same number of them
    assert audit.verify(engine).ok
    assert audit.count(engine) == 1504


AWKWARD = [
    'quote " and backslash \\ and slash /',
    "new\nline, tab\t, carriage\rreturn",
    "فارسی ۱۲۳ and emoji 🩺",
    "",
    "  spaces kept  ",
]


def test_values_are_stored_exactly_as_recorded(engine: Engine) -> None:
    at = dt.datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=3, minutes=30)))
    changes = [
        {"actor": "importer", "action": "form.value_entered", "role": "study_coordinator", "site": "RAZ",
         "participant": "RAZ-001", "form": "labs", "field": f"f{i}", "old_value": {"typed": text, "n": 1.5},
         "new_value": text, "reason": text or None, "detail": {"visit": "baseline", "note": text}, "at": at}
        for i, text in enumerate(AWKWARD)
    ]  # fmt: skip
    with session_scope(engine) as session, audit.batched(session):
        audit.record_many(session, changes)
    stored = list(reversed(audit.entries(engine)))
    assert [(e.field, e.old_value, e.new_value, e.reason, e.detail, e.at) for e in stored] == [
        (c["field"], audit._json(c["old_value"]), audit._json(c["new_value"]), c["reason"], audit._json(c["detail"]),
         at.astimezone(dt.UTC))
        for c in changes
    ]  # fmt: skip
    assert [(e.role, e.site, e.participant, e.form, e.action) for e in stored] == [
        ("study_coordinator", "RAZ", "RAZ-001", "labs", "form.value_entered")
    ] * len(AWKWARD)
    assert audit.verify(engine).ok
