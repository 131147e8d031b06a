"""A statement run on the driver's cursor (``store.prepared.Prepared``: the randomization's hot path and the audit
trail's pending insert) belongs to the innermost transaction as ``session.execute`` would: first in a savepoint, it
is undone by the savepoint's rollback; inside a bulk ``deferring`` block it sees the rows still waiting to be
written. On both databases (both on the driver's cursor)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, select

from tests.conftest import fresh_database
from trialwright.services.bulk_writes import deferred_insert, deferring
from trialwright.store.engine import session_scope
from trialwright.store.prepared import Prepared

META = MetaData()
NOTES = Table("prepared_notes", META, Column("id", Integer, primary_key=True), Column("text", String(40)))
INSERT = Prepared(NOTES.insert())
COUNT = Prepared(select(NOTES.c.id, NOTES.c.text).order_by(NOTES.c.id))


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path, postgres_available: str | None) -> Iterator[object]:
    with fresh_database(request.param, tmp_path, postgres_available) as url:
        e = create_engine(url)
        META.create_all(e)
        yield e
        e.dispose()


def test_a_prepared_statement_first_in_a_savepoint_is_undone_by_its_rollback(engine: object) -> None:
    with session_scope(engine) as session:  # type: ignore[arg-type]
        INSERT.rows(session, {"id": 1, "text": "kept"})
        nested = session.begin_nested()
        INSERT.rows(session, {"id": 2, "text": "undone"})
        nested.rollback()
        INSERT.rows(session, {"id": 3, "text": "kept too"})
    with session_scope(engine) as session:  # type: ignore[arg-type]
        assert [r["text"] for r in COUNT.rows(session, {})] == ["kept", "kept too"]


def test_a_prepared_statement_in_a_deferring_block_sees_the_rows_waiting(engine: object) -> None:
    with session_scope(engine) as session, deferring(session):  # type: ignore[arg-type]
        deferred_insert(session, NOTES, {"text": "waiting"})
        assert [r["text"] for r in COUNT.rows(session, {})] == ["waiting"]
