"""A withdrawal from the intervention committed while a randomization of the same participant waits for them is
seen by it: the randomization is refused, not made (both databases).

On PostgreSQL a randomization locks the participant's row in its first statement; a withdrawal being written
holds a lock on that row too (its foreign key), so the randomization waits for it. The statement that waited
reads as of before the wait, so what decides the randomization is read again after its locks. On SQLite the
randomization's transaction starts only once the withdrawal's has committed (one writer)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from tests.spec.randomization.test_randomize_service import enrolled
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.services.randomization import RandomizationError, generate_list, randomize
from trialwright.services.screening import ScreeningError
from trialwright.store.engine import session_scope
from trialwright.store.randomization_tables import allocation_entries
from trialwright.store.screening_tables import withdrawals


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


def test_a_withdrawal_committed_while_the_randomization_waits_refuses_it(trial: Trial) -> None:
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=5)
    pid = enrolled(trial)
    outcome: dict[str, object] = {}

    def randomize_now() -> None:
        try:
            outcome["randomized"] = randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
        except (RandomizationError, ScreeningError) as exc:
            outcome["refused"] = str(exc)

    with session_scope(trial.engine) as session:  # the withdrawal as the service writes it, not committed yet
        session.execute(withdrawals.insert().values(
            participant_id=pid, scope="intervention", cause="adverse_event", reason="rash",
            withdrawn_on=dt.datetime.now(dt.UTC).date(), recorded_at=dt.datetime.now(dt.UTC), recorded_by="inv",
        ))  # fmt: skip
        waiting = threading.Thread(target=randomize_now)
        waiting.start()
        time.sleep(1.0)
        assert waiting.is_alive(), outcome  # it waits for the withdrawal's transaction
    waiting.join(30)
    assert not waiting.is_alive()
    assert "randomized" not in outcome, outcome
    assert f"participant: {pid} withdrew from intervention on" in str(outcome["refused"])
    with session_scope(trial.engine) as session:
        claimed = select(func.count()).where(allocation_entries.c.participant_id == pid)
        assert session.execute(claimed).scalar() == 0
