"""A randomization's statements cost the driver's work, not SQLAlchemy's per execution (issue 22 items 1 and 5).

Under 32 clients the Python CPU per randomization limits the rate (docs/benchmarks.md). SQLAlchemy's execution of
a statement (its cache key, the execution context, the result's metadata) costs about three times what psycopg's
own does, so the statements of a randomization's transaction on PostgreSQL are compiled once (``Prepared``,
``store/engine.py``) and sent on the driver's cursor of the session's connection, in the same transaction:

- every one of them is still seen by the engine's cursor events (counted, as the statement spec counts them),
  with no SQLAlchemy execution context (``context`` None): none went through ``session.execute``;
- a prepared statement gives the rows ``session.execute`` gives, its columns' types applied (an aware time read
  back in UTC), on both databases, and a refusal by the database arrives as SQLAlchemy's error (an
  ``IntegrityError``), as ``session.execute`` raises it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, event, select
from sqlalchemy.exc import IntegrityError

from tests.conftest import fresh_database
from tests.spec.randomization.test_randomize_service import enrolled
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.services.randomization import generate_list, randomize
from trialwright.store.engine import session_scope
from trialwright.store.prepared import Prepared
from trialwright.store.screening_tables import participants


@pytest.fixture
def postgresql_trial(tmp_path: Path, postgres_available: str | None) -> Iterator[Trial]:
    with fresh_database("postgresql", tmp_path, postgres_available) as url:
        t = make_trial(url)
        yield t
        t.engine.dispose()


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


def test_the_randomization_transaction_runs_on_the_driver_cursor(postgresql_trial: Trial) -> None:
    trial = postgresql_trial
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=5)
    investigator = who(trial, Role.INVESTIGATOR)
    first, second = enrolled(trial), enrolled(trial)
    randomize(trial.engine, investigator, first)  # warms what lasts for the process (the protocol, the key's check)
    seen: list[tuple[str, bool]] = []  # (statement, sent by SQLAlchemy's execution) until the first commit
    committed: list[bool] = []

    def statement(_conn: Any, _cursor: Any, sql: str, _params: Any, context: Any, _many: bool) -> None:
        if not committed:
            seen.append((" ".join(sql.split())[:100], context is not None))

    def commit(_conn: Any) -> None:
        committed.append(True)

    event.listen(trial.engine, "before_cursor_execute", statement)
    event.listen(trial.engine, "commit", commit)
    try:
        randomize(trial.engine, investigator, second)
    finally:
        event.remove(trial.engine, "before_cursor_execute", statement)
        event.remove(trial.engine, "commit", commit)
    # The participant and the lock; the checks, the entry and the number; the claim; the audit entry.
    assert len(seen) == 4, seen
    through_sqlalchemy = [sql for sql, executed in seen if executed]
    assert through_sqlalchemy == [], f"sent through session.execute: {through_sqlalchemy}"


_ENROLMENT = Prepared(
    select(participants.c.participant_id, participants.c.site, participants.c.enrolled_at).where(
        participants.c.participant_id == bindparam("participant_id")
    )
)
_RENUMBER = Prepared(
    participants.update()
    .where(participants.c.participant_id == bindparam("who"))
    .values(site=bindparam("site"), number=bindparam("number"))
)


def test_a_prepared_statement_reads_what_session_execute_reads(trial: Trial) -> None:
    pid = enrolled(trial)
    with session_scope(trial.engine) as session:
        (prepared,) = _ENROLMENT.rows(session, {"participant_id": pid})
        (plain,) = session.execute(_ENROLMENT.statement, {"participant_id": pid}).mappings()
    assert prepared == dict(plain)
    assert prepared["participant_id"] == pid
    enrolled_at = prepared["enrolled_at"]
    assert isinstance(enrolled_at, dt.datetime) and enrolled_at.utcoffset() == dt.timedelta(0)  # UTCDateTime's


def test_a_refusal_by_the_database_is_sqlalchemys_error(trial: Trial) -> None:
    one, other = enrolled(trial), enrolled(trial)
    with session_scope(trial.engine) as session:
        (taken,) = _ENROLMENT.rows(session, {"participant_id": one})
        number = session.execute(select(participants.c.number).where(participants.c.participant_id == one)).scalar()
    with pytest.raises(IntegrityError), session_scope(trial.engine) as session:
        # The other participant given the first one's site and number: uq_participants_site_number refuses it.
        _RENUMBER.rows(session, {"who": other, "site": taken["site"], "number": number})
