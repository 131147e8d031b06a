"""A session committed early (``commit_now``, as an API save answers only once its change is committed) and written
again starts a fresh transaction: its audit entries are chained after everything committed in between, in commit
order, and the trail verifies (both databases).

What a transaction keeps in its session (its pending entries' state and the commit hooks they need, the head of
the chain it appended to, the visits it locked) ends with its commit; kept, the second write's entries would be
left pending with no place in the commit order (PostgreSQL) or chained to a stale head (SQLite)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from tests.trialfixtures import Trial, make_trial
from trialwright.services import audit
from trialwright.store.engine import commit_now, session_scope
from trialwright.store.tables import audit_entries, audit_pending


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


def test_a_session_written_again_after_commit_now_chains_in_commit_order(trial: Trial) -> None:
    with session_scope(trial.engine) as session:
        audit.record(session, actor="coordinator", action="test.first")
        commit_now(session)
        with session_scope(trial.engine) as other:  # another writer commits in between
            audit.record(other, actor="monitor", action="test.between")
        audit.record(session, actor="coordinator", action="test.second")
    with session_scope(trial.engine) as session:
        assert session.execute(select(audit_pending.c.id)).all() == []
        actions = session.execute(
            select(audit_entries.c.action).where(audit_entries.c.action.like("test.%")).order_by(audit_entries.c.seq)
        ).scalars()
        assert list(actions) == ["test.first", "test.between", "test.second"]
    report = audit.verify(trial.engine)
    assert report.ok, report.message
