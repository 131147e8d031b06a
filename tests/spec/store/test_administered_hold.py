"""Holding a preparation code (``store/administered.py`` ``hold``), on SQLite and PostgreSQL: only the code's claim
taken is read as "the code is held"; any other clash raises.

| the insert of a record's row                                     | ``hold``                                 |
|------------------------------------------------------------------|------------------------------------------|
| claiming a code no row claims                                    | True: the row written                    |
| claiming a code another row claims already                       | False: nothing written (the kit check's  |
|                                                                  |   refusal follows)                       |
| for a record that holds a row already (its primary key), with or | IntegrityError: a broken write, never    |
|   without a claim                                                |   read as "the kit is taken"             |
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tests.spec.forms.test_kit_check import randomized
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.services.forms import save_form
from trialwright.services.randomization import generate_list
from trialwright.store.administered import hold
from trialwright.store.data_tables import administered_codes, form_records
from trialwright.store.engine import session_scope


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    generate_list(t.engine, who(t, Role.UNBLINDED_STATISTICIAN), seed=20)
    yield t
    t.engine.dispose()


def _administered(trial: Trial, pid: str, code: str) -> int:
    """The participant's administration record, saved with ``code``: its id."""
    save_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "infusion", "administration",
              {"preparation_code": code})  # fmt: skip
    with session_scope(trial.engine) as session:
        return int(session.execute(select(form_records.c.id).where(form_records.c.participant_id == pid)).scalar_one())


def _rows(trial: Trial) -> set[tuple[int, str, str | None]]:
    with session_scope(trial.engine) as session:
        rows = session.execute(select(administered_codes)).all()
    return {(r.form_record_id, r.preparation_code, r.claim) for r in rows}


def test_only_a_taken_claim_reads_as_the_code_held(trial: Trial) -> None:
    first, first_code = randomized(trial)
    second, second_code = randomized(trial)
    first_record = _administered(trial, first, first_code)
    second_record = _administered(trial, second, second_code)
    before = _rows(trial)
    assert before == {(first_record, first_code, first_code), (second_record, second_code, second_code)}

    # The claim taken: False, nothing written.
    with session_scope(trial.engine) as session:
        session.execute(administered_codes.delete().where(administered_codes.c.form_record_id == second_record))
        assert hold(session, first_code, second, "administration", second_record, claim=True) is False
        session.rollback()
    assert _rows(trial) == before

    # The record's row written twice (its primary key), claiming a free code or none: raises.
    for claim in (True, False):
        with pytest.raises(IntegrityError), session_scope(trial.engine) as session:
            hold(session, "FREE-CODE", first, "administration", first_record, claim=claim)
        assert _rows(trial) == before
