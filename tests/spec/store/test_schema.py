"""The migration tree and the table definitions agree, on both databases; times are always aware UTC."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from trialkit.store.engine import make_engine, session_scope
from trialkit.store.migrate import current_revision, head_revision, upgrade
from trialkit.store.tables import metadata, sites, trial


def test_migrated_schema_matches_the_table_definitions(database_url: str) -> None:
    engine = make_engine(database_url)
    assert current_revision(engine) is None
    assert upgrade(engine) == head_revision()
    assert upgrade(engine) == head_revision()  # idempotent
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_times_round_trip_as_aware_utc(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    tehran = dt.timezone(dt.timedelta(hours=3, minutes=30))
    moment = dt.datetime(2021, 5, 20, 9, 15, 30, 123456, tzinfo=tehran)
    with session_scope(engine) as session:
        session.execute(trial.insert().values(trial_id="T1", title="t", created_at=moment))
    with session_scope(engine) as session:
        stored = session.execute(select(trial.c.created_at)).scalar_one()
    assert stored == moment and stored.utcoffset() == dt.timedelta(0)


def test_naive_times_are_refused(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    with pytest.raises(StatementError, match="naive datetime refused"), session_scope(engine) as session:
        session.execute(trial.insert().values(trial_id="T1", title="t", created_at=dt.datetime(2021, 5, 20)))  # noqa: DTZ001


def test_foreign_keys_are_enforced(database_url: str) -> None:
    from sqlalchemy.exc import IntegrityError

    engine = make_engine(database_url)
    upgrade(engine)
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        session.execute(
            trial.insert().values(
                trial_id="T1", title="t", created_at=dt.datetime.now(dt.UTC), current_protocol_version_id=999
            )
        )
    with session_scope(engine) as session:
        assert session.execute(select(sites)).all() == []
