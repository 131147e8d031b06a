"""A consent recorded and a non-enrolment set read the screening's participant once (the lock check's read, passed
on to the change's own rule), on SQLite and PostgreSQL:

| the change                                 | reads of the participant for the lock and the rules | statements in all |
|--------------------------------------------|-----------------------------------------------------|-------------------|
| an initial consent recorded (not enrolled) | 1 (2 before: the lock's, the initial rule's)        | 20 (21 before)*   |
| a re-consent of an enrolled participant    | 1 (the initial consent rule reads nothing)          | 19 (as before)*   |
| the reason a patient was not enrolled      | 1 (2 before: the lock's, "the patient is enrolled") | 11 (12 before)*   |

(*) on SQLite; on PostgreSQL five more each (the transaction's settings), one fewer the same.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import event

from tests.spec.screening.test_screening_consent_enrolment import NOW, TODAY, TYPED, lar_consent
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.services.screening import enrol, screen, set_non_enrolment


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


#: The read of the participant a screening enrolled that the lock check and the change's rules share (the view the
#: service returns reads the participant's row again, for what it shows).
RULES_READ = "SELECT participants.participant_id FROM participants WHERE participants.screening_id ="


def counted(trial: Trial, change: Callable[[], object]) -> tuple[int, int]:
    """The statements ``change`` runs: in all, and the reads of the participant for the lock check and the rules."""
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        statements.append(" ".join(statement.split()))

    event.listen(trial.engine, "before_cursor_execute", seen)
    try:
        change()
    finally:
        event.remove(trial.engine, "before_cursor_execute", seen)
    by_screening = [s for s in statements if s.startswith(RULES_READ)]
    return len(statements), len(by_screening)


def test_a_consent_and_a_non_enrolment_read_the_participant_once(trial: Trial) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    first = screen(trial.engine, coordinator, site="RAZ", screened_on=TODAY, values=TYPED)
    second = screen(trial.engine, coordinator, site="RAZ", screened_on=TODAY, values=TYPED)
    initial = counted(trial, lambda: lar_consent(trial, first.id))
    enrol(trial.engine, coordinator, first.id)
    again = counted(trial, lambda: lar_consent(trial, first.id, kind="reconsent", form_version="1.0",
                                               obtained_at=NOW - dt.timedelta(minutes=1)))
    lar_consent(trial, second.id)
    refused = counted(trial, lambda: set_non_enrolment(trial.engine, coordinator, second.id, reason="declined"))
    assert (initial[1], again[1], refused[1]) == (1, 1, 1)
    in_all = {"sqlite": (20, 19, 11), "postgresql": (25, 24, 16)}  # 21, 19, 12 and 26, 24, 17 with the rules' reads
    assert (initial[0], again[0], refused[0]) == in_all[trial.engine.dialect.name]
