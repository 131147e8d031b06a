"""Allocation entries carry a keyed digest: an arm flipped in the database is never handed out, and is reported.

An insider with database rights flips arms in ``allocation_entries`` with raw SQL (there is no trigger to
drop on that table). Randomizing then refuses the tampered entry and records the refusal in the audit
trail; `audit verify` names the entry. Each test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from tests.spec.randomization.test_randomize_service import enrolled
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.analysis import analysis_data
from trialwright.services.audit_keys import AllocationsAltered, AllocationsMissing
from trialwright.services.exports import run_export
from trialwright.services.randomization import AllocationTampered, generate_list, randomize, what_to_prepare
from trialwright.services.safety import page_events, report_event, safety_tables
from trialwright.store.randomization_tables import allocation_entries

FLIP = "UPDATE allocation_entries SET arm = CASE WHEN arm = 'EXO' THEN 'PBO' ELSE 'EXO' END"


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    generate_list(t.engine, who(t, Role.UNBLINDED_STATISTICIAN), seed=2021)
    yield t
    t.engine.dispose()


def _sql(trial: Trial, statement: str) -> None:
    with trial.engine.begin() as conn:
        conn.execute(text(statement))


def test_every_allocation_entry_carries_a_digest_and_an_untouched_list_verifies(trial: Trial) -> None:
    randomize(trial.engine, who(trial, Role.INVESTIGATOR), enrolled(trial))
    with trial.engine.connect() as conn:
        digests = list(conn.execute(select(allocation_entries.c.digest)).scalars())
    assert digests and all(d is not None and len(d) == 64 for d in digests)
    report = audit.verify(trial.engine)
    assert report.ok, report.message
    assert report.allocations == len(digests)


def test_a_flipped_arm_is_refused_at_randomization_and_the_refusal_audited(trial: Trial) -> None:
    participant = enrolled(trial)
    _sql(trial, FLIP + " WHERE participant_id IS NULL")
    with pytest.raises(AllocationTampered, match="does not match its keyed digest"):
        randomize(trial.engine, who(trial, Role.INVESTIGATOR), participant)
    with trial.engine.connect() as conn:
        assert (
            conn.execute(
                select(allocation_entries.c.id).where(allocation_entries.c.participant_id.is_not(None))
            ).first()
            is None
        )
    (refusal,) = audit.entries(trial.engine, action_prefix="randomization.allocation_refused")
    assert refusal.participant == participant and refusal.actor == "investigator"
    assert not audit.entries(trial.engine, action_prefix="participant.randomized")


def test_a_flipped_arm_is_reported_by_verify(trial: Trial) -> None:
    randomize(trial.engine, who(trial, Role.INVESTIGATOR), enrolled(trial))
    _sql(trial, FLIP + " WHERE participant_id IS NOT NULL")
    report = audit.verify(trial.engine)
    assert (report.ok, report.problem) == (False, "allocation"), report
    with trial.engine.connect() as conn:
        flipped = conn.execute(
            select(allocation_entries.c.id).where(allocation_entries.c.participant_id.is_not(None))
        ).scalar_one()
    assert report.first_bad_seq == flipped and f"allocation entry {flipped}" in report.message


def test_two_participants_swapped_between_entries_are_reported(trial: Trial) -> None:
    investigator = who(trial, Role.INVESTIGATOR)
    first, second = enrolled(trial), enrolled(trial)
    randomize(trial.engine, investigator, first)
    randomize(trial.engine, investigator, second)
    _sql(trial, f"UPDATE allocation_entries SET participant_id = NULL WHERE participant_id = '{second}'")
    _sql(trial, f"UPDATE allocation_entries SET participant_id = '{second}' WHERE participant_id = '{first}'")
    _sql(
        trial,
        f"UPDATE allocation_entries SET participant_id = '{first}' WHERE participant_id IS NULL "
        "AND randomization_number = 2",
    )
    report = audit.verify(trial.engine)
    assert (report.ok, report.problem) == (False, "allocation"), report


def test_the_pharmacist_is_not_told_to_prepare_a_flipped_arm(trial: Trial) -> None:
    code = randomize(trial.engine, who(trial, Role.INVESTIGATOR), enrolled(trial)).preparation_code
    pharmacist = who(trial, Role.UNBLINDED_PHARMACIST)
    assert what_to_prepare(trial.engine, pharmacist, code).preparation_code == code
    _sql(trial, FLIP + f" WHERE preparation_code = '{code}'")
    with pytest.raises(AllocationTampered):
        what_to_prepare(trial.engine, pharmacist, code)
    assert audit.entries(trial.engine, action_prefix="randomization.allocation_refused")


def test_no_arm_altered_in_the_database_reaches_an_analysis_a_table_by_arm_or_an_export(
    trial: Trial, tmp_path: Path
) -> None:
    """Every reader of arms checks the entries first and refuses, naming the entry, rather than use a flipped arm."""
    randomize(trial.engine, who(trial, Role.INVESTIGATOR), enrolled(trial))
    _sql(trial, FLIP + " WHERE participant_id IS NOT NULL")
    with trial.engine.connect() as conn:
        flipped = conn.execute(
            select(allocation_entries.c.id).where(allocation_entries.c.participant_id.is_not(None))
        ).scalar_one()
    statistician = who(trial, Role.UNBLINDED_STATISTICIAN)
    readers = {
        "analysis": lambda: analysis_data(trial.engine, who(trial, Role.BLINDED_STATISTICIAN)),
        "safety tables by arm": lambda: safety_tables(trial.engine, who(trial, Role.DSMB_MEMBER)),
        "export with arms": lambda: run_export(trial.engine, statistician, "csv", tmp_path / "csv", with_arms=True),
    }
    for what, read in readers.items():
        with pytest.raises(AllocationsAltered, match=rf"do not match their keyed digest .*: {flipped}\b"):
            read()
            pytest.fail(f"{what} read a flipped arm")


def test_a_page_of_events_checks_the_entries_of_the_participants_it_shows(trial: Trial) -> None:
    """The adverse event list by arm reads and checks the allocation entries of the participants on the page, not
    the whole list: another participant's flipped entry does not stop it (the tables by arm, which count every
    participant, still refuse), while a flipped entry of a participant it shows does, naming the entry."""
    investigator = who(trial, Role.INVESTIGATOR)
    shown, other = enrolled(trial), enrolled(trial)
    for participant in (shown, other):
        randomize(trial.engine, investigator, participant)
    now = dt.datetime.now(dt.UTC)
    report_event(trial.engine, investigator, shown, {
        "term": "Headache", "onset": now.date().isoformat(), "grade": 1, "serious": False,
        "seriousness_criteria": [], "causality": "unlikely", "action_taken": "not_applicable",
        "outcome": "recovered", "aware_at": now.isoformat(),
    })  # fmt: skip
    dsmb = who(trial, Role.DSMB_MEMBER)
    with trial.engine.connect() as conn:
        entry = {
            r.participant_id: (r.id, r.arm)
            for r in conn.execute(select(allocation_entries).where(allocation_entries.c.participant_id.is_not(None)))
        }
    _sql(trial, FLIP + f" WHERE participant_id = '{other}'")
    (event,) = page_events(trial.engine, dsmb, participant_id=shown).items
    assert event.arm == entry[shown][1]
    with pytest.raises(AllocationsAltered, match=rf": {entry[other][0]}\b"):
        safety_tables(trial.engine, dsmb)
    _sql(trial, FLIP + f" WHERE participant_id = '{shown}'")
    with pytest.raises(AllocationsAltered, match=rf": {entry[shown][0]}\b"):
        page_events(trial.engine, dsmb, participant_id=shown)


def test_a_page_of_events_refuses_a_randomized_participant_whose_entry_was_moved_away(trial: Trial) -> None:
    """An entry moved from a shown participant to another in the database: the page does not show them as not
    randomized; the trail records their randomization, so the whole list is checked and the moved entry named."""
    investigator = who(trial, Role.INVESTIGATOR)
    shown, other = enrolled(trial), enrolled(trial)
    randomize(trial.engine, investigator, shown)
    now = dt.datetime.now(dt.UTC)
    report_event(trial.engine, investigator, shown, {
        "term": "Headache", "onset": now.date().isoformat(), "grade": 1, "serious": False,
        "seriousness_criteria": [], "causality": "unlikely", "action_taken": "not_applicable",
        "outcome": "recovered", "aware_at": now.isoformat(),
    })  # fmt: skip
    dsmb = who(trial, Role.DSMB_MEMBER)
    with trial.engine.connect() as conn:
        moved = conn.execute(
            select(allocation_entries.c.id).where(allocation_entries.c.participant_id == shown)
        ).scalar_one()
    _sql(trial, f"UPDATE allocation_entries SET participant_id = '{other}' WHERE id = {moved}")
    with pytest.raises(AllocationsAltered, match=rf": {moved}\b"):
        page_events(trial.engine, dsmb, participant_id=shown)
    _sql(trial, f"DELETE FROM allocation_entries WHERE id = {moved}")
    with pytest.raises(AllocationsMissing, match=rf"no allocation entry .*: {shown}\b"):
        page_events(trial.engine, dsmb, participant_id=shown)
    # the tables by arm read the whole list: a deleted entry is not a participant left out of them
    with pytest.raises(AllocationsMissing, match=rf"no allocation entry .*: {shown}\b"):
        safety_tables(trial.engine, dsmb)
