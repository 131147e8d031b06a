"""Every query of one read sees the same snapshot of the database.

A page of a list is read by several queries in one ``read_scope`` (the rows, the total, the position of the
first row): if each query saw the rows committed up to its own start, a row committed in between would make the
page contradict itself ("51-100 of 99"). So a read is one snapshot: SQLite's deferred transaction in WAL mode
keeps the snapshot of its first read; PostgreSQL reads at REPEATABLE READ (its default, READ COMMITTED, takes a
new snapshot per query). A row committed by another connection meanwhile is seen by the next read, not this one.

Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from tests.trialfixtures import Trial, make_trial, screener
from trialwright.services.screening import screen
from trialwright.store.engine import read_scope
from trialwright.store.screening_tables import screenings


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


def _count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(screenings)).scalar_one())


def test_a_row_committed_during_a_read_is_not_seen_by_its_later_queries(trial: Trial) -> None:
    admin = screener(trial.engine)  # screening is a coordinator's (docs/roles.md)
    screen(trial.engine, admin, site="RAZ", screened_on=None, values={})
    with read_scope(trial.engine) as session:
        before = _count(session)
        ids_before = session.execute(select(screenings.c.id)).scalars().all()
        # Another connection commits a new row while this read is open.
        added = screen(trial.engine, admin, site="RAZ", screened_on=None, values={})
        assert _count(session) == before == len(ids_before)
        assert added.id not in session.execute(select(screenings.c.id)).scalars().all()
    with read_scope(trial.engine) as session:
        assert _count(session) == before + 1


def test_a_read_is_a_snapshot_that_cannot_write(trial: Trial, backend: str) -> None:
    with read_scope(trial.engine) as session:
        if backend == "sqlite":
            # The snapshot of a deferred read is WAL's: a reader keeps its view while a writer commits.
            assert session.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            return
        assert session.execute(text("SHOW transaction_isolation")).scalar_one() == "repeatable read"
        assert session.execute(text("SHOW transaction_read_only")).scalar_one() == "on"
