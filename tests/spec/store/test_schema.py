"""The migration tree and the table definitions agree, on both databases; times are always aware UTC."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, StatementError

from trialwright.store.engine import make_engine, session_scope
from trialwright.store.migrate import current_revision, head_revision, upgrade
from trialwright.store.tables import metadata, sites, trial


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


def test_an_upgrade_keeps_rows_that_other_rows_point_to(database_url: str) -> None:
    """Revision 0006 rebuilds the allocation tables on SQLite; a database holding a list, a randomized
    entry and a preparation upgrades with every row kept and foreign keys enforced again."""
    engine = make_engine(database_url)
    assert upgrade(engine, to="0005") == "0005"
    now = dt.datetime.now(dt.UTC)
    with session_scope(engine) as session:
        session.execute(
            text(
                "INSERT INTO allocation_lists (id, method, generator, seed_sha256, checksum, report, generated_at,"
                " generated_by) VALUES (1, 'm', 'g', 's', 'c', '{}', :now, 'stat')"
            ),
            {"now": now.isoformat()},
        )
        session.execute(
            text(
                "INSERT INTO allocation_entries (id, list_id, stratum, sequence, block, block_size, position, arm,"
                " preparation_code) VALUES (1, 1, 'site=RAZ', 1, 1, 2, 1, 'A', 'P-1')"
            )
        )
        session.execute(
            text(
                "INSERT INTO preparations (preparation_code, product_lot, volume_ml, prepared_at, prepared_by)"
                " VALUES ('P-1', 'L', '3', :now, 'pharm')"
            ),
            {"now": now.isoformat()},
        )
    assert upgrade(engine) == head_revision()
    with session_scope(engine) as session:
        assert session.execute(text("SELECT kind FROM allocation_lists")).scalar_one() == "generated"
        assert session.execute(text("SELECT preparation_code FROM preparations")).scalar_one() == "P-1"
        # Revision 0011 moved the three fixed columns into the declared attributes' JSON, still readable.
        moved = session.execute(text("SELECT attributes FROM preparations")).scalar_one()
        assert json.loads(moved) == {"product_lot": "L", "volume_ml": 3.0}
        with pytest.raises(IntegrityError):  # enforcement is back on
            session.execute(
                text(
                    "INSERT INTO allocation_entries (list_id, stratum, sequence, arm, preparation_code)"
                    " VALUES (99, 's', 1, 'A', 'P-2')"
                )
            )
    engine.dispose()
