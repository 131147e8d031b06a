"""The tests' own trials: a test's first trial, copied from its process's template, is the trial ``init`` and
``user add`` make, byte for byte where it matters (the stored protocol text, every table's rows) and working on
(its trail verifies, its sequences continue: new rows take new keys).

The copy is a test fixture (tests.trialfixtures.make_trial): a SQLite file copied with its key, or on PostgreSQL
the template schema's ``pg_dump`` replayed into the test's schema. A copy that lost or changed anything would let
every spec that uses it pass or fail on the wrong data."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, MetaData, func, select, text

from tests.conftest import fresh_database
from tests.trialfixtures import PASSWORD, _initialised, first_protocol, make_trial
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.users import create_user
from trialwright.store.tables import protocol_versions


def _rows(engine: Engine) -> dict[str, int]:
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return {name: conn.execute(select(func.count()).select_from(t)).scalar_one() for name, t in meta.tables.items()}


def test_a_copied_trial_is_the_trial_init_makes(
    database_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    copied = make_trial(database_url)  # the test's first trial: a copy of the template
    kind = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    (tmp_path / "afresh").mkdir()
    reason = request.getfixturevalue("postgres_available") if kind == "postgresql" else None
    with fresh_database(kind, tmp_path / "afresh", reason) as other:
        afresh = _initialised(other, first_protocol())
        try:
            assert _rows(copied.engine) == _rows(afresh.engine)
        finally:
            afresh.engine.dispose()

    with copied.engine.connect() as conn:
        stored = conn.execute(select(protocol_versions.c.source_text)).scalars().all()
    assert stored == [first_protocol().source_text]  # exact: blank lines and every character kept
    assert audit.verify(copied.engine).ok

    create_user(
        copied.engine, username="one-more", password=PASSWORD, role=Role.DATA_MANAGER, sites=[],
        full_name="One More", actor="test",
    )  # fmt: skip
    assert audit.verify(copied.engine).ok
    with copied.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM users WHERE username = 'one-more'")).scalar_one() == 1
