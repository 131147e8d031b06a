"""A trial with one enrolled participant, on both databases."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from tests.spec.randomization.test_randomize_service import enrolled
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.services.randomization import generate_list, randomize
from trialwright.store.engine import session_scope
from trialwright.store.randomization_tables import allocation_entries
from trialwright.store.screening_tables import consents, participants

NOW = dt.datetime.now(dt.UTC)
TEHRAN = ZoneInfo("Asia/Tehran")
TODAY = NOW.astimezone(TEHRAN).date()  # the sites' date: from 20:30 UTC it is already tomorrow in Tehran
# Enrolled at noon in Tehran ten days ago, consented an hour before: never near the sites' midnight, so a
# spec about the consent's time is never answered by the (date) rule about the enrolment day instead.
ENROLLED_AT = dt.datetime.combine(TODAY - dt.timedelta(days=10), dt.time(12, 0), TEHRAN).astimezone(dt.UTC)
CONSENTED_AT = ENROLLED_AT - dt.timedelta(hours=1)


def earlier_today(minutes: int) -> dt.datetime:
    """``minutes`` before now, but not before the sites' ``TODAY`` began: a consent on a screening dated ``TODAY``
    (from 20:30 UTC, half an hour ago may still be yesterday in Tehran)."""
    began = dt.datetime.combine(TODAY, dt.time(0, 1), TEHRAN).astimezone(dt.UTC)
    return max(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes), began)


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


@pytest.fixture
def pid(trial: Trial) -> str:
    """An enrolled participant, consented and enrolled ten days ago."""
    return enrolled_ten_days_ago(trial)


def enrolled_ten_days_ago(trial: Trial) -> str:
    """A participant consented and enrolled ten days ago (so that earlier visit dates are allowed and nothing
    recorded since is before the consent)."""
    participant = enrolled(trial)
    with session_scope(trial.engine) as session:
        session.execute(
            update(participants)
            .where(participants.c.participant_id == participant)
            .values(enrolled_at=ENROLLED_AT)
        )
        screening = select(participants.c.screening_id).where(participants.c.participant_id == participant)
        session.execute(
            update(consents).where(consents.c.screening_id == screening.scalar_subquery())
            .values(obtained_at=CONSENTED_AT)
        )  # fmt: skip
    return participant


def randomized_days_ago(trial: Trial, participant: str, days: int) -> dt.datetime:
    """Randomize the participant (the list made first) and move the randomization ``days`` days back."""
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=7)
    randomize(trial.engine, who(trial, Role.INVESTIGATOR), participant)
    at = NOW - dt.timedelta(days=days)
    with session_scope(trial.engine) as session:
        session.execute(update(allocation_entries).where(allocation_entries.c.participant_id == participant)
                        .values(randomized_at=at))  # fmt: skip
    return at
