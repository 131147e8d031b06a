"""A trial with one enrolled participant, on both databases."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import update

from tests.spec.randomization.test_randomize_service import enrolled
from tests.trialfixtures import Trial, make_trial
from trialwright.store.engine import session_scope
from trialwright.store.screening_tables import participants

NOW = dt.datetime.now(dt.UTC)
TODAY = (NOW + dt.timedelta(hours=3, minutes=30)).date()  # Tehran's date (no summer time since 2022)


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


@pytest.fixture
def pid(trial: Trial) -> str:
    """An enrolled participant, enrolled ten days ago (so that earlier visit dates are allowed)."""
    participant = enrolled(trial)
    with session_scope(trial.engine) as session:
        session.execute(
            update(participants)
            .where(participants.c.participant_id == participant)
            .values(enrolled_at=NOW - dt.timedelta(days=10))
        )
    return participant
