"""How a bulk import hands its rows to the database, on both databases: the audit entries and the batch's new
records are converted to the driver's parameters in one loop per executemany (``store.prepared.insert_many``: the
INSERT compiled once per table, each column's conversion taken once), not through SQLAlchemy's per-row parameter
building, and what that stores is, byte for byte, what SQLAlchemy's own executemany stores:

- an import of fifteen rows (three participants, derived values across forms, a correction) builds SQLAlchemy's
  INSERT parameters for fewer rows than a quarter of the audit entries it writes (SQLite: none; before, at least
  one per audit entry, each chained by an executemany; PostgreSQL: one per new visit or form record, its
  entries going as one JSON parameter, ``tests/spec/audit/test_batch_statements.py``);
- the same rows inserted by ``insert_many`` and by ``connection.execute(table.insert(), rows)`` read back the same
  from the driver: times in other zones and with or without microseconds, NULLs, Persian text, large integers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text, create_engine
from sqlalchemy.sql.compiler import SQLCompiler

from tests.spec.forms.conftest import enrolled_ten_days_ago
from tests.spec.forms.test_bulk_import import head, rows_for
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.services import forms as svc
from trialwright.store.coltypes import UTCDateTime
from trialwright.store.prepared import insert_many


@contextmanager
def parameters_built(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the rows of INSERTs SQLAlchemy builds parameters for (``SQLCompiler.construct_params``: once per row of
    an executemany)."""
    built = [0]
    original = SQLCompiler.construct_params

    def counting(self: SQLCompiler, *args: Any, **kwargs: Any) -> Any:
        built[0] += bool(self.isinsert)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SQLCompiler, "construct_params", counting)
    yield built
    monkeypatch.setattr(SQLCompiler, "construct_params", original)


def test_an_import_builds_sqlalchemys_parameters_for_fewer_rows_than_it_audits(
    trial: Trial, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = [enrolled_ten_days_ago(trial) for _ in range(3)]
    since = head(trial)
    with parameters_built(monkeypatch) as built:
        report = svc.import_forms(
            trial.engine, who(trial, Role.STUDY_COORDINATOR), [r for p in people for r in rows_for(p)]
        )
    assert report == svc.ImportReport(15, ())
    entries = head(trial) - since
    assert entries >= 90  # every value entered, derived or corrected has its entry
    assert built[0] < entries / 4, (built[0], entries)


def test_insert_many_stores_what_sqlalchemys_executemany_stores(database_url: str) -> None:
    metadata = MetaData()

    def table(name: str) -> Table:
        return Table(
            name, metadata,
            Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
            Column("at", UTCDateTime(), nullable=True), Column("who", String(32), nullable=True),
            Column("text", Text, nullable=True),
        )  # fmt: skip

    ours, theirs = table("ours_insert_many"), table("theirs_insert_many")
    tehran = dt.timezone(dt.timedelta(hours=3, minutes=30))
    rows = [
        {"id": 1, "at": dt.datetime(2026, 12, 6, 5, 0, tzinfo=dt.UTC), "who": "a", "text": '{"v":1}'},
        {"id": 2, "at": dt.datetime(2026, 3, 20, 23, 59, 59, 123456, tzinfo=tehran), "who": None, "text": "تب ۳۸"},
        {"id": 2**40, "at": None, "who": "", "text": None},
    ]
    engine = create_engine(database_url)
    try:
        metadata.create_all(engine)
        with engine.begin() as connection:
            insert_many(connection, ours, rows)
            connection.execute(theirs.insert(), rows)
        with engine.connect() as connection:  # as the driver reads them: the very text SQLite holds
            read = [connection.exec_driver_sql(f"SELECT id, at, who, text FROM {t.name} ORDER BY id").all()
                    for t in (ours, theirs)]  # fmt: skip
        assert read[0] == read[1]
        assert len(read[0]) == 3 and read[0][1][3] == "تب ۳۸"
    finally:
        metadata.drop_all(engine)
        engine.dispose()


def test_insert_many_refuses_a_row_without_every_column(database_url: str) -> None:
    metadata = MetaData()
    t = Table("partial_insert_many", metadata, Column("id", Integer, primary_key=True, autoincrement=False),
              Column("who", String(8)))  # fmt: skip
    engine = create_engine(database_url)
    try:
        metadata.create_all(engine)
        with pytest.raises(KeyError, match="who"), engine.begin() as connection:
            insert_many(connection, t, [{"id": 1}])
    finally:
        metadata.drop_all(engine)
        engine.dispose()
