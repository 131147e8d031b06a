"""What one randomization costs the database, counted (issue 22): every statement it sends, its audit trail's
chaining included, is counted with a SQLAlchemy ``before_cursor_execute`` listener on the trial's engine.

A randomization from a sealed list is one transaction: the participant's row locked and read with their
screening values, their withdrawal from the intervention and the protocol version in one statement; on
PostgreSQL the randomization lock (shared); what decides whether they may be randomized now (the safety pause,
randomized already, an imported randomization, the list's first record; on PostgreSQL the first free entry of
the stratum, locked, and its randomization number from the sequence when nothing it read refuses) in one
statement; the entry and its number (SQLite); the claim; the audit entry (on PostgreSQL written pending, and
numbered in commit order by the same INSERT, since it is the transaction's last write). On PostgreSQL the
chainer's pass after the commit takes the pending entries, records their nonces, reads the head and writes the
chained entries: one more transaction (shared by the randomizations that committed meanwhile in the same process).

Not counted: the chainer's look at its advisory lock and at whether its entries are still pending, which repeat
only while another process's pass holds that lock (the number then depends on others, not on this code).

Runs on SQLite (where the ``BEGIN IMMEDIATE`` the store sends counts too) and PostgreSQL; the second participant
is counted, after the first has warmed the caches that last for the process (the parsed protocol, the audit key's
check).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from tests.spec.randomization.test_randomize_service import enrolled
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.services.randomization import generate_list, randomize

#: At most this many statements per randomization, by database.
LIMIT = {"sqlite": 8, "postgresql": 8}

#: The chainer's polling of its lock, which depends on other writers (see the module's docstring).
_POLLING = ("SELECT pg_try_advisory_xact_lock(", "SELECT audit_pending.id FROM audit_pending WHERE audit_pending.id IN")


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


def _statements(trial: Trial, participant_id: str) -> list[str]:
    investigator = who(trial, Role.INVESTIGATOR)  # the request's user, read before (the web app's session does)
    sent: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statement = " ".join(statement.split())
        if not statement.startswith(_POLLING):
            sent.append(statement)

    event.listen(trial.engine, "before_cursor_execute", count)
    try:
        randomize(trial.engine, investigator, participant_id)
    finally:
        event.remove(trial.engine, "before_cursor_execute", count)
    return sent


def test_a_randomization_sends_at_most_a_fixed_number_of_statements(trial: Trial) -> None:
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=5)
    first, second = enrolled(trial), enrolled(trial)
    _statements(trial, first)
    sent = _statements(trial, second)
    limit = LIMIT[trial.engine.dialect.name]
    listing = "\n".join(f"  {s[:160]}" for s in sent)
    assert len(sent) <= limit, f"{len(sent)} statements for one randomization (at most {limit}):\n{listing}"
